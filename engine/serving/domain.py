"""Values the model never saw: categories absent from training and numbers outside its range.

The model's pipeline one-hot encodes an unseen category as all zeros and extrapolates past the
training range, and answers with confidence either way. The server therefore checks every
scored row against what training saw (engine.features.value_domain, kept in the bundle), counts
the findings per feature for /metrics, marks them in the prediction log and, with
`[serving] unknown_categories = "reject"`, refuses a row with an unseen category (422).
"""

from __future__ import annotations

from typing import Any

from engine.serving.inputs import InputError

POLICIES = ("accept", "reject")


class Domain:
    """The training domain of each feature, checked over a scored batch in one pass."""

    def __init__(self, domain: list[dict[str, Any]] | None, names: list[str]) -> None:
        import numpy as np

        self.names = names
        numeric: list[tuple[int, float, float]] = []
        self.categorical: list[tuple[int, str, frozenset[str]]] = []
        for j, (name, known) in enumerate(zip(names, domain or [], strict=False)):
            if "categories" in known and known["categories"] is not None:
                self.categorical.append((j, name, frozenset(known["categories"])))
            elif known.get("min") is not None and known.get("max") is not None:
                numeric.append((j, float(known["min"]), float(known["max"])))
        self.numeric_index = np.array([j for j, _, _ in numeric], dtype=np.intp)
        self.low = np.array([lo for _, lo, _ in numeric], dtype=np.float64)
        self.high = np.array([hi for _, _, hi in numeric], dtype=np.float64)

    @property
    def empty(self) -> bool:
        return not self.categorical and not len(self.numeric_index)

    def check(self, X: Any) -> list[dict[str, dict[str, Any]] | None] | None:
        """Per row, {"unseen": {feature: value}, "out_of_range": {feature: value}} or None;
        None for the whole batch when every value is within what training saw."""
        import numpy as np

        flags: list[dict[str, dict[str, Any]] | None] | None = None
        if len(self.numeric_index):
            values = X[:, self.numeric_index]
            if values.dtype != np.float64:
                values = values.astype(np.float64)
            with np.errstate(invalid="ignore"):
                outside = (values < self.low) | (values > self.high)
            if outside.any():
                flags = [None] * len(X)
                for i, k in zip(*np.nonzero(outside), strict=True):
                    name = self.names[int(self.numeric_index[k])]
                    _flag(flags, int(i), "out_of_range", name, float(values[i, k]))
        for j, name, known in self.categorical:
            for i, value in enumerate(X[:, j].tolist()):
                if type(value) is str and value not in known:
                    if flags is None:
                        flags = [None] * len(X)
                    _flag(flags, i, "unseen", name, value)
        return flags

    def counts(self, X: Any) -> dict[str, int]:
        """Per "feature (unseen|out_of_range)", how many rows of X hold such a value: the batch
        form of check(), vectorized (a million rows must not cost a Python loop per value)."""
        import numpy as np

        found: dict[str, int] = {}
        if len(self.numeric_index):
            values = X[:, self.numeric_index]
            if values.dtype != np.float64:
                values = values.astype(np.float64)
            with np.errstate(invalid="ignore"):
                outside = ((values < self.low) | (values > self.high)).sum(axis=0)
            for k in np.flatnonzero(outside):
                found[f"{self.names[int(self.numeric_index[k])]} (out_of_range)"] = int(outside[k])
        for j, name, known in self.categorical:
            unseen = int(self.unseen_mask(X, j, known).sum())
            if unseen:
                found[f"{name} (unseen)"] = unseen
        return found

    def first_unseen(self, X: Any) -> list[tuple[int, str, Any]]:
        """(row, feature, value) of each row holding a category training never saw (the first
        such feature of the row), in row order."""
        import numpy as np

        seen_rows: dict[int, tuple[str, Any]] = {}
        for j, name, known in self.categorical:
            for i in np.flatnonzero(self.unseen_mask(X, j, known)):
                seen_rows.setdefault(int(i), (name, X[int(i), j]))
        return [(i, name, value) for i, (name, value) in sorted(seen_rows.items())]

    @staticmethod
    def unseen_mask(X: Any, j: int, known: frozenset[str]) -> Any:
        import numpy as np

        column = X[:, j]
        return np.fromiter(
            (type(v) is str and v not in known for v in column.tolist()),
            dtype=bool,
            count=len(column),
        )


def _flag(flags: list[Any], i: int, kind: str, name: str, value: Any) -> None:
    row = flags[i]
    if row is None:
        row = flags[i] = {}
    row.setdefault(kind, {})[name] = value


def refuse_unseen(flags: list[dict[str, dict[str, Any]] | None]) -> None:
    """The 422 of `unknown_categories = "reject"`, naming the first unseen field and value."""
    for i, row in enumerate(flags):
        if row and "unseen" in row:
            name, value = next(iter(row["unseen"].items()))
            raise InputError(
                f"record {i}: field {name!r} has the value {value!r}, a category the model "
                'never saw in training ([serving] unknown_categories = "reject")',
                field=name,
            )
