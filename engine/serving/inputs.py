"""Request bodies -> the model's input array, validated by hand against the feature spec.

Why by hand and not with a pydantic model: a single-row request must cost microseconds, and the
feature spec is only known when the model loads. Checks are done in one pass that also fills the
array in the trained column order; every rejection names the offending field.

Accepted shapes:
- /predict: one record `{"feature": value, ...}` or `{"records": [record, ...]}`.
- /invocations (MLflow / SageMaker scoring): `dataframe_split` {columns, data},
  `dataframe_records`, `instances` and `inputs` (records, rows in feature order, or columns), or
  a CSV body (text/csv), with a header row of the feature names or without one (SageMaker's batch
  transform and most clients send none): then each row is the values in the trained order.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection
from typing import Any

from engine.intake import CSV_MISSING_TEXT

MAX_RECORDS = 10_000

_NUMBER_TYPES = (int, float)


class InputError(Exception):
    """A client error: status 400 (unreadable body), 413 (too large) or 422 (invalid fields)."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def too_large(limit: int) -> InputError:
    """413 for a body over `limit` bytes ([serving] max_body_mb)."""
    size = f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:.0f} KB"
    return InputError(f"the body is over the {size} limit ([serving] max_body_mb)", 413)


# Before a 413 the server reads and drops what the client is still sending, so clients that send
# the whole body before reading (urllib, requests) read the answer instead of a reset connection.
# Bounded: at most this many bytes, for at most this long; past that the connection is closed.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0


async def drain(receive: Any, more: bool = True) -> None:
    """Read and drop the rest of a request body (see DRAIN_BYTES); `more` is False when the
    last message read said the body was complete."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    dropped = 0
    while more and dropped < DRAIN_BYTES:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), left)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        more = bool(message.get("more_body"))


def parse_json(raw: bytes) -> Any:
    """orjson, and the stdlib's parser as a fallback for the NaN / Infinity literals that
    Python's json.dumps writes and MLflow's server accepts (NaN = missing, Infinity = 422)."""
    import orjson

    if not raw:
        raise InputError("the request body is empty: send a JSON object", status=400)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    if b"NaN" in raw or b"Infinity" in raw:
        import json

        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    raise InputError(f"malformed JSON: {error}", status=400) from None


def predict_records(body: Any, features: Collection[str] = ()) -> list[Any]:
    """The records of a /predict body. "records" is the batch key unless the model has a
    feature of that name: then it is a value of one record."""
    if not isinstance(body, dict):
        raise InputError('the body must be a JSON object: one record or {"records": [...]}')
    if "records" in body and "records" not in features and not isinstance(body["records"], list):
        raise InputError(
            '"records" must be a list of records: {"records": [{...}, {...}]}', field="records"
        )
    if "records" in body and isinstance(body["records"], list):
        for key in body:
            if key != "records":
                raise InputError(f'unknown key {key!r} beside "records"', field=str(key))
        return _check_count(body["records"])
    return [body]


def invocation_rows(body: Any) -> list[Any]:
    """Records (dicts) or rows (lists in feature order) from an MLflow / SageMaker JSON body."""
    if isinstance(body, list):
        return _check_count(body)
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object or array")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    if len(keys) != 1:
        raise InputError(
            "the body must hold exactly one of dataframe_split, dataframe_records, instances, "
            "inputs"
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InputError("dataframe_split must be an object with columns and data", field=key)
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(data, list):
            raise InputError("dataframe_split.data must be a list of rows", field=key)
        if columns is None:
            return _check_count(data)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("dataframe_split.columns must be a list of names", field=key)
        rows = _check_count(data)
        records = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise InputError(
                    f"dataframe_split.data[{i}] must be a list of {len(columns)} values", field=key
                )
            records.append(dict(zip(columns, row, strict=True)))
        return records
    if key == "inputs" and isinstance(value, dict):
        return _columns_to_records(value, key)
    if not isinstance(value, list):
        raise InputError(f"{key} must be a list of records", field=key)
    return _check_count(value)


def csv_rows(raw: bytes, names: list[str], kinds: list[str] | None = None) -> list[Any]:
    """The rows of a text/csv body for a model with features `names` (of `kinds`).

    A first row made of exactly the feature names (in any order) is a header, and the rows are
    records; otherwise every row must hold one value per feature, in the trained column order
    (SageMaker's batch transform and most clients send CSV without a header). A value is read
    as its feature was at training: a number for a numeric feature, the text as it stands for a
    categorical one (so the category `100` stays "100"); an empty cell is missing."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the CSV body is not UTF-8", status=400) from None
    if text.lstrip()[:1] in ("{", "["):
        raise InputError(
            "the body looks like JSON, not CSV: send it with Content-Type: application/json",
            status=400,
        )
    reader = csv.reader(io.StringIO(text))
    try:
        lines = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise InputError(f"unreadable CSV (line {reader.line_num}): {exc}", status=400) from None
    if not lines:
        raise InputError("the CSV body is empty", status=400)
    width = len(names)
    kind_of = dict(zip(names, kinds or ["numeric"] * width, strict=True))
    first = lines[0][1]
    if len(first) == width and set(first) == set(names):
        header = first
        readers = [_csv_reader(kind_of[name]) for name in header]
        records = []
        for line, row in lines[1:]:
            if len(row) != width:
                raise InputError(f"CSV line {line} has {len(row)} values, the header {width}")
            records.append(
                {name: read(v) for name, read, v in zip(header, readers, row, strict=True)}
            )
        return _check_count(records)
    readers = [_csv_reader(kind_of[name]) for name in names]
    for line, row in lines:
        if len(row) != width:
            order = ", ".join(names[:5]) + (", ..." if width > 5 else "")
            raise InputError(
                f"CSV line {line} has {len(row)} values: expected {width} per row, in the order "
                f"{order} (or a first row of exactly the feature names, as a header)"
            )
    return _check_count(
        [[read(v) for read, v in zip(readers, row, strict=True)] for _, row in lines]
    )


def _csv_reader(kind: str) -> Any:
    return _csv_number if kind == "numeric" else _csv_text


_CSV_MISSING = frozenset(CSV_MISSING_TEXT)  # "NA", "null", ...: missing, as pandas reads CSV


def _csv_text(text: str) -> Any:
    return None if text in _CSV_MISSING else text


def _csv_number(text: str) -> Any:
    if text in _CSV_MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        return text  # rejected by to_matrix as not a number, naming the column
    if math.isnan(value):
        return None
    if math.isinf(value):
        return text  # rejected by to_matrix as not a number, naming the column
    return value


def _columns_to_records(columns: dict[str, Any], key: str) -> list[Any]:
    if columns and not any(isinstance(v, list) for v in columns.values()):
        return [columns]  # {"inputs": {name: value, ...}}: one record
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InputError(
            f"{key} as columns must map each name to a list of equal length", field=key
        )
    n = lengths.pop()
    names = list(columns)
    return _check_count([{name: columns[name][i] for name in names} for i in range(n)])


def _check_count(items: list[Any]) -> list[Any]:
    if not items:
        raise InputError("no records: send at least one")
    if len(items) > MAX_RECORDS:
        raise InputError(f"too many records: {len(items)} (at most {MAX_RECORDS:,} per request)")
    return items


def to_matrix(
    rows: list[Any],
    names: list[str],
    kinds: list[str],
    all_numeric: bool,
    ignored: frozenset[str] = frozenset(),
) -> Any:
    """The model's input: float64 when every feature is numeric, else an object array with str
    categories and NaN for missing values (as engine.features.to_matrix builds at training).
    Fields in `ignored` (raw columns the processing drops, the target) may be sent and are not
    used."""
    import numpy as np

    width = len(names)
    table = []
    append = table.append
    for i, row in enumerate(rows):
        if type(row) is dict:
            if len(row) == width:
                try:
                    values = [row[name] for name in names]
                except KeyError:
                    _explain_record(row, names, i, ignored)
                    raise
            else:
                _explain_record(row, names, i, ignored)
                values = [row[name] for name in names]  # extra fields, all of them ignored
        elif type(row) is list:
            if len(row) != width:
                raise InputError(
                    f"record {i} has {len(row)} values: expected {width} in the order "
                    f"{', '.join(names[:5])}{', ...' if width > 5 else ''}"
                )
            values = row
        else:
            raise InputError(f"record {i} must be an object of feature: value")
        append(values)
    if all_numeric:
        for i, values in enumerate(table):
            for value in values:
                if type(value) not in _NUMBER_TYPES and value is not None:
                    _explain_numeric(values, names, kinds, i)
        matrix = np.array(table, dtype=np.float64)
        if np.isinf(matrix).any():
            i, j = (int(k) for k in np.argwhere(np.isinf(matrix))[0])
            raise InputError(
                f"record {i}: field {names[j]!r} must be a finite number", field=names[j]
            )
        return matrix
    for i, values in enumerate(table):
        for j, kind in enumerate(kinds):
            value = values[j]
            if value is None:
                values[j] = np.nan
            elif kind == "numeric":
                if type(value) not in _NUMBER_TYPES:
                    _explain_numeric(values, names, kinds, i)
                number = float(value)
                if math.isinf(number):
                    raise InputError(
                        f"record {i}: field {names[j]!r} must be a finite number", field=names[j]
                    )
                values[j] = number
            elif type(value) is str:
                if value == "":
                    values[j] = np.nan  # as an empty cell was at training: missing
            elif type(value) in (int, float, bool):
                values[j] = category_text(value)
            else:
                raise InputError(
                    f"record {i}: field {names[j]!r} must be a string, got {_json_type(value)}",
                    field=names[j],
                )
    matrix = np.empty((len(table), width), dtype=object)
    matrix[:] = table
    return matrix


def category_text(value: bool | int | float) -> Any:
    """A JSON number or boolean sent for a categorical feature, as training saw it: the column's
    text (pandas read `100` in a text column as "100", so 100.0 must be "100" too); NaN is
    missing."""
    import numpy as np

    if type(value) is float:
        if math.isnan(value):
            return np.nan
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def _explain_record(
    row: dict[str, Any], names: list[str], i: int, ignored: frozenset[str] = frozenset()
) -> None:
    known = set(names)
    for name in row:
        if name not in known and name not in ignored:
            raise InputError(
                f"record {i}: unknown field {name!r} (the model's features are "
                f"{', '.join(repr(n) for n in names[:5])}{', ...' if len(names) > 5 else ''})",
                field=str(name),
            )
    for name in names:
        if name not in row:
            raise InputError(
                f"record {i}: missing field {name!r} (send null for a missing value)", field=name
            )


def _explain_numeric(values: list[Any], names: list[str], kinds: list[str], i: int) -> None:
    for name, kind, value in zip(names, kinds, values, strict=True):
        if kind == "numeric" and value is not None and type(value) not in _NUMBER_TYPES:
            raise InputError(
                f"record {i}: field {name!r} must be a number, got {_json_type(value)}",
                field=name,
            )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
