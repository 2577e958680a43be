"""Reference profiles and window sketches: the two sides every drift test compares.

Why sketches and not rows: the server cannot keep every request (at 10,000 req/s the prediction
log's cap holds about a minute), so a window of traffic is summarised as counts over the
reference's own bins (numbers: quantile bins with the sum of the values in each; categories:
counts per training category plus one bucket for the rest) with missing, out-of-range and
unseen counts. Sketches add up, so a window is the sum of its minutes, and a report computed
offline on a file uses the very same sketch: live and offline figures agree by construction.
"""

from __future__ import annotations

from typing import Any

PROFILE_FORMAT = "haj-profile/1"
NUMERIC_BINS = 20  # quantile bins of a numeric feature (edges are the 19 inner quantiles)
MAX_CATEGORIES = 200  # categories kept by name; the rest share the "other" bucket
SAMPLE_ROWS = 1000  # the seeded sample of training rows kept for inspection


def reference_profile(
    X: Any,
    spec: list[dict[str, str]],
    *,
    target: Any = None,
    target_kind: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """What the training data looked like, per feature (spec order), plus the target's
    distribution and a bounded seeded sample of rows. Predictions are added per run
    (with_predictions), since each model predicts differently."""
    import numpy as np

    features = [_reference_column(X[:, j], f["name"], f["kind"]) for j, f in enumerate(spec)]
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(X), size=min(SAMPLE_ROWS, len(X)), replace=False))
    sample = [[_plain(v) for v in row] for row in X[take].tolist()]
    profile: dict[str, Any] = {
        "format": PROFILE_FORMAT,
        "rows": len(X),
        "features": features,
        "sample": {"columns": [f["name"] for f in spec], "rows": sample},
        "target": None,
        "prediction": None,
    }
    if target is not None and target_kind is not None:
        profile["target"] = _reference_column(np.asarray(target), "target", target_kind)
    return profile


def with_predictions(profile: dict[str, Any], predictions: Any, kind: str) -> dict[str, Any]:
    """The profile with the distribution of one model's own predictions on its training rows."""
    import numpy as np

    return {**profile, "prediction": _reference_column(np.asarray(predictions), "prediction", kind)}


def _reference_column(values: Any, name: str, kind: str) -> dict[str, Any]:
    import numpy as np

    if kind == "numeric":
        numbers = _as_float(values)
        finite = numbers[np.isfinite(numbers)]
        edges = (
            np.unique(np.quantile(finite, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))
            if finite.size
            else np.empty(0)
        )
        column: dict[str, Any] = {
            "name": name,
            "kind": "numeric",
            "edges": edges.tolist(),
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std()) if finite.size else None,
        }
    else:
        labels = _as_labels(values)
        present = labels[labels != None]  # noqa: E711 - elementwise on an object array
        names, counts = np.unique(present.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
        column = {"name": name, "kind": "categorical", "categories": names[order].tolist()}
    sketch = ColumnSketch(column)
    sketch.add(values)
    column["counts"] = sketch.to_dict()
    return column


def _as_float(values: Any) -> Any:
    import numpy as np

    if values.dtype == np.float64:
        return values
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        import pandas as pd

        return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _as_labels(values: Any) -> Any:
    """Object array of str labels, None where missing (NaN, None)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind in "iuU":  # no missing value possible: one vectorised conversion
        return values.astype(str).astype(object)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            out[i] = None
        elif isinstance(value, float) and value.is_integer():
            out[i] = str(int(value))  # class labels 0.0/1.0 read back as "0"/"1"
        else:
            out[i] = str(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value


class ColumnSketch:
    """Counts of one column over its reference's buckets; adds batches, merges, serialises.

    Numeric buckets are the reference's quantile bins (len(edges) + 1), each with the sum of
    its values, so a distribution can be rebuilt as weighted points at the bins' means;
    categorical buckets are the reference's categories plus "other" (last)."""

    def __init__(self, reference: dict[str, Any]) -> None:
        import numpy as np

        self.kind = reference["kind"]
        if self.kind == "numeric":
            self.edges = np.asarray(reference["edges"], dtype=np.float64)
            self.low = reference["min"]
            self.high = reference["max"]
            size = len(self.edges) + 1
            self.sums = np.zeros(size, dtype=np.float64)
        else:
            self.index = {name: i for i, name in enumerate(reference["categories"])}
            size = len(self.index) + 1
        self.counts = np.zeros(size, dtype=np.int64)
        self.rows = 0
        self.missing = 0
        self.outside = 0  # numbers outside the reference's [min, max]; categories it never saw
        self.minimum: float | None = None
        self.maximum: float | None = None

    def add(self, values: Any) -> None:
        import numpy as np

        self.rows += len(values)
        if self.kind == "numeric":
            numbers = _as_float(np.asarray(values))
            finite = numbers[np.isfinite(numbers)]
            self.missing += int(len(numbers) - finite.size)
            if not finite.size:
                return
            bins = np.searchsorted(self.edges, finite, side="right")
            self.counts += np.bincount(bins, minlength=len(self.counts))
            self.sums += np.bincount(bins, weights=finite, minlength=len(self.counts))
            low, high = float(finite.min()), float(finite.max())
            self.minimum = low if self.minimum is None else min(self.minimum, low)
            self.maximum = high if self.maximum is None else max(self.maximum, high)
            if self.low is not None:
                self.outside += int(((finite < self.low) | (finite > self.high)).sum())
            return
        other = len(self.index)
        for label in _as_labels(np.asarray(values, dtype=object)).tolist():
            if label is None:
                self.missing += 1
            else:
                bucket = self.index.get(label, other)
                self.counts[bucket] += 1
                if bucket == other:
                    self.outside += 1

    def merge(self, other: ColumnSketch) -> None:
        self.counts += other.counts
        self.rows += other.rows
        self.missing += other.missing
        self.outside += other.outside
        if self.kind == "numeric":
            self.sums += other.sums
            for bound in ("minimum", "maximum"):
                mine, theirs = getattr(self, bound), getattr(other, bound)
                pick = min if bound == "minimum" else max
                setattr(
                    self,
                    bound,
                    theirs if mine is None else mine if theirs is None else pick(mine, theirs),
                )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "missing": self.missing,
            "outside": self.outside,
            "counts": self.counts.tolist(),
        }
        if self.kind == "numeric":
            out.update(sums=self.sums.tolist(), minimum=self.minimum, maximum=self.maximum)
        return out

    @classmethod
    def from_dict(cls, reference: dict[str, Any], data: dict[str, Any]) -> ColumnSketch:
        import numpy as np

        sketch = cls(reference)
        sketch.rows = int(data["rows"])
        sketch.missing = int(data["missing"])
        sketch.outside = int(data.get("outside", 0))
        sketch.counts = np.asarray(data["counts"], dtype=np.int64)
        if sketch.kind == "numeric":
            sketch.sums = np.asarray(data["sums"], dtype=np.float64)
            sketch.minimum, sketch.maximum = data.get("minimum"), data.get("maximum")
        return sketch


class WindowSketch:
    """A window of rows (a file, a log, a minute of traffic) summarised against a profile:
    one ColumnSketch per feature, and for the predictions and the target when given."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.features = [ColumnSketch(f) for f in profile["features"]]
        self.prediction = ColumnSketch(profile["prediction"]) if profile.get("prediction") else None
        self.target = ColumnSketch(profile["target"]) if profile.get("target") else None
        self.rows = 0
        self.duplicates = 0
        self.refused: dict[str, int] = {}

    def add(self, X: Any, predictions: Any = None, target: Any = None) -> None:
        """Add a batch: X in the model's feature order (as features.to_matrix gives it)."""
        import numpy as np

        self.rows += len(X)
        for j, sketch in enumerate(self.features):
            sketch.add(X[:, j])
        if predictions is not None and self.prediction is not None:
            self.prediction.add(np.asarray(predictions))
        if target is not None and self.target is not None:
            self.target.add(np.asarray(target))

    def merge(self, other: WindowSketch) -> None:
        self.rows += other.rows
        self.duplicates += other.duplicates
        for name, count in other.refused.items():
            self.refused[name] = self.refused.get(name, 0) + count
        for mine, theirs in zip(self.features, other.features, strict=True):
            mine.merge(theirs)
        for part in ("prediction", "target"):
            mine, theirs = getattr(self, part), getattr(other, part)
            if mine is not None and theirs is not None:
                mine.merge(theirs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "duplicates": self.duplicates,
            "refused": dict(self.refused),
            "features": [s.to_dict() for s in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "target": self.target.to_dict() if self.target else None,
        }

    @classmethod
    def from_dict(cls, profile: dict[str, Any], data: dict[str, Any]) -> WindowSketch:
        sketch = cls(profile)
        sketch.rows = int(data["rows"])
        sketch.duplicates = int(data.get("duplicates", 0))
        sketch.refused = dict(data.get("refused") or {})
        sketch.features = [
            ColumnSketch.from_dict(ref, part)
            for ref, part in zip(profile["features"], data["features"], strict=True)
        ]
        for part in ("prediction", "target"):
            if profile.get(part) and data.get(part):
                setattr(sketch, part, ColumnSketch.from_dict(profile[part], data[part]))
            elif not data.get(part):
                setattr(sketch, part, None)
        return sketch


def reference_sketch(profile: dict[str, Any], part: str, index: int | None = None) -> ColumnSketch:
    """The reference's own counts for a feature (index) or for "prediction" / "target"."""
    column = profile["features"][index] if part == "features" else profile[part]
    return ColumnSketch.from_dict(column, column["counts"])
