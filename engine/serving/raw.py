"""Rows in the data's own shape -> the model's input array, through the processing fitted at
training (engine.intake).

Why two paths: most processors change values (numbers written as text, dates, category
spellings), so the rows become a DataFrame, go through the fitted `transform` and then through
engine.features.to_matrix exactly as at training. A processor that only selects columns says so
(`passthrough`): then the request skips pandas and takes the array path of engine.serving.inputs,
with the raw columns it drops accepted and ignored.
"""

from __future__ import annotations

import math
from typing import Any

from engine.serving import inputs
from engine.serving.inputs import InputError


class RawIntake:
    """What a request may send (the raw columns) and how it becomes the model's input."""

    def __init__(self, meta: dict[str, Any], features: list[dict[str, str]]) -> None:
        from engine import intake

        self.target: str = meta["target"]
        self.columns: list[dict[str, str]] = list(meta["inputs"])
        self.names = [c["name"] for c in self.columns]
        self.kinds = [c["kind"] for c in self.columns]
        self.kind_of = dict(zip(self.names, self.kinds, strict=True))
        self.required = [name for name in meta.get("required", self.names) if name in self.kind_of]
        self.required_set = frozenset(self.required)
        self.example: dict[str, Any] = dict(meta.get("example") or {})
        self.style: str = meta.get("style", "processor")
        self.processor = intake.loads(meta["processor"])
        self.features = features
        self.feature_names = [f["name"] for f in features]
        self.feature_kinds = [f["kind"] for f in features]
        self.all_numeric = all(kind == "numeric" for kind in self.feature_kinds)
        # the array path needs every feature to be a raw column of the same kind
        self.passthrough = bool(meta.get("passthrough")) and all(
            self.kind_of.get(f["name"]) == f["kind"] for f in features
        )
        self.ignored = frozenset([*self.names, self.target]) - frozenset(self.feature_names)
        self.accepted = frozenset([*self.names, self.target])
        self.missing_text = frozenset(meta.get("missing_text") or ())

    def matrix(self, rows: list[Any]) -> Any:
        """The model's input for these rows (a 422 InputError names what is wrong)."""
        if self.passthrough:
            records = [
                self._record(row, i) if type(row) is list else row for i, row in enumerate(rows)
            ]
            return inputs.to_matrix(
                records, self.feature_names, self.feature_kinds, self.all_numeric, self.ignored
            )
        return self._through_processor(rows)

    def _record(self, row: list[Any], i: int) -> dict[str, Any]:
        """A row of values in the raw column order, as a record."""
        if len(row) != len(self.names):
            shown = ", ".join(self.names[:5]) + (", ..." if len(self.names) > 5 else "")
            raise InputError(
                f"record {i} has {len(row)} values: expected {len(self.names)} in the order {shown}"
            )
        return dict(zip(self.names, row, strict=True))

    def _through_processor(self, rows: list[Any]) -> Any:
        import numpy as np
        import pandas as pd

        from engine.features import to_matrix

        columns: dict[str, list[Any]] = {name: [] for name in self.names}
        for i, row in enumerate(rows):
            if type(row) is list:
                row = self._record(row, i)
            elif type(row) is not dict:
                raise InputError(f"record {i} must be an object of column: value")
            self._check_fields(row, i)
            for name in self.names:
                columns[name].append(self._value(row.get(name), name, i))
        frame = pd.DataFrame(
            {
                name: pd.Series(
                    values, dtype="float64" if self.kind_of[name] == "numeric" else object
                )
                for name, values in columns.items()
            }
        )
        try:
            with np.errstate(all="ignore"):
                processed = self.processor.transform(frame)
        except Exception as exc:  # the user's processing may raise anything: a 422 that says so
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            raise InputError(f"processor.py could not process these records: {text}") from None
        if len(processed) != len(rows):
            raise InputError(
                f"processor.py gave {len(processed)} rows for {len(rows)} records: its "
                "transform must keep every row"
            )
        missing = [name for name in self.feature_names if name not in processed.columns]
        if missing:
            raise InputError(
                f"processor.py gave no {missing[0]!r} for these records (a feature the model "
                "was trained on)"
            )
        return to_matrix(processed, self.features)

    def _check_fields(self, row: dict[str, Any], i: int) -> None:
        for name in row:
            if name not in self.accepted:
                shown = ", ".join(repr(n) for n in self.names[:5])
                raise InputError(
                    f"record {i}: unknown field {name!r} (the data's columns are {shown}"
                    f"{', ...' if len(self.names) > 5 else ''})",
                    field=str(name),
                )
        for name in self.required:
            if name not in row:
                raise InputError(
                    f"record {i}: missing field {name!r} (send null for a missing value)",
                    field=name,
                )

    def _value(self, value: Any, name: str, i: int) -> Any:
        """A JSON value as the raw column held it at training: a number for a numeric column,
        text otherwise (a number sent for a text column becomes its text)."""
        if value is None or (type(value) is str and value in self.missing_text):
            return None
        if self.kind_of[name] == "numeric":
            if type(value) is str:  # a number as a CSV file writes it: "35", "" (missing)
                value = _number_text(value)
                if value is None:
                    return None
            if type(value) not in (int, float):
                raise InputError(
                    f"record {i}: field {name!r} must be a number or null, got "
                    f"{inputs._json_type(value)}",
                    field=name,
                )
            if math.isinf(value):
                raise InputError(f"record {i}: field {name!r} must be a finite number", field=name)
            return value
        if type(value) in (int, float, bool):
            return inputs.category_text(value)
        return value


def _number_text(text: str) -> Any:
    """A number written as text ("35", " 1.5e3 ") as a float, "" as missing; other text is
    returned as it is (and refused, naming the field)."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        number = float(stripped)
    except ValueError:
        return text
    return None if math.isnan(number) else number
