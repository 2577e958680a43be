"""Turn raw data into a table haj can train on. This file is yours: adapt it to your data.

`haj process` loads a raw data version as a pandas DataFrame and calls
`process(raw, target, prediction)`, where `target` is data.target and `prediction` is
project.prediction from config.toml. Return a DataFrame of feature columns plus the target
column; haj stores it as a new processed data version, which `haj train` learns from.

Leave categorical and numeric columns as they are, missing values included: haj's training pipeline
fills in missing numbers (median) and categories (most frequent), scales numbers and one-hot encodes
categories itself. This file only decides which rows and columns are worth learning from, and puts
values in a usable form. Out of the box it works on most tables:

1. strips spaces from column names and checks that the target column exists;
2. reads text columns that hold numbers as numbers ("42", " 1,234 ", "$145,309", "-€5.50",
   "(300)", "5%" is 5) when most of their values parse; strips spaces around category values;
3. replaces date columns with numeric <col>_year, <col>_month, <col>_day and <col>_dayofweek;
4. drops identifier columns: a distinct value on every row that is named like one (id, *_id,
   uuid, key, index, CustomerID) or, in text that is not numbers, looks like one (uuids, emails,
   codes such as "C1042" or "ORD-2023-0001");
5. prepares the target (see `prepare_target`: class labels for classification, numbers for
   regression) and drops exact duplicate rows;
6. drops empty and constant columns, and free text (too many distinct values to be categories,
   or a distinct text on every row).

It prints what it changed; the lines appear in haj's log.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

MIN_ROWS = 10  # fewer usable rows than this is an error
MOSTLY = 0.95  # share of values that must parse for a text column to become numbers or dates
ID_MIN_ROWS = 20  # "a distinct value on every row" only means identifier from this many rows
FREE_TEXT_SHARE = 0.5  # text with more distinct values than this share of its rows...
FREE_TEXT_MIN_UNIQUE = 50  # ...and more than this many distinct values is free text
MAX_FLOAT_CLASSES = 50  # a float target is accepted as class labels up to this many values

ID_NAME = re.compile(
    r"^(id|uuid|guid|key|index|unnamed: ?\d+)$|[_\- ](id|uuid|guid|key)$", re.IGNORECASE
)
CAMEL_ID_NAME = re.compile(r"[a-z](Id|ID|Key|Uuid|UUID)$")  # PassengerId, customerID
# Values that name a row: a uuid, an email, or a code (one token of letters and digits, possibly
# joined by - _ . / : #, with at least one digit): C1042, ORD-2023-0001, 9f86d081884c7d65.
ID_VALUE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|[^@\s]+@[^@\s]+\.[^@\s]+"
    r"|(?=[^\s]*\d)[A-Za-z0-9]+([-_./:#][A-Za-z0-9]+)*",
    re.IGNORECASE,
)
# Numbers as people write them: "1,234.5", "$145,309", "-€5.50", "€ 12", "12 $", "5%", "(300)".
THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")  # 1,234 or 1,234,567.89
CURRENCY_BEFORE = re.compile(r"^([-+]?)\s*[$€£¥₹]\s*")
CURRENCY_AFTER = re.compile(r"\s*[$€£¥₹]$")
PERCENT = re.compile(r"\s*%$")
ACCOUNTING_NEGATIVE = re.compile(r"\(\s*([^()]*?)\s*\)")
# Written in place of a missing value; with pandas' own (NA, n/a, null, ...) they count as missing.
MISSING_TEXT = {"", "-", "--", "?", "na", "n/a", "nan", "null", "none", "missing"}
# Date-shaped text: 6-40 characters with a digit and a separator or letter, but not a plain number.
# New column suffix -> pandas' .dt attribute (.dt.dayofweek is deprecated in pandas 3).
DATE_PARTS = {"year": "year", "month": "month", "day": "day", "dayofweek": "day_of_week"}
DATE_LIKE = re.compile(r"(?![-+]?\d+(\.\d+)?$)(?=.*\d)(?=.*[-/.:, A-Za-z]).{6,40}")


def process(raw: pd.DataFrame, target: str, prediction: str = "classification") -> pd.DataFrame:
    """Feature columns plus the target column, ready for `haj train`.

    `prediction` is "classification" or "regression" (project.prediction in config.toml).
    """
    target = target.strip()
    frame = tidy_columns(raw, target)
    frame = numbers_from_text(frame, target)
    frame = dates_to_numbers(frame, target)
    frame = drop_columns(frame, identifier_columns(frame, target), "identifier")
    frame = prepare_target(frame, target, prediction)
    before = len(frame)
    frame = frame.drop_duplicates(ignore_index=True)
    if len(frame) < before:
        note(f"dropped {rows(before - len(frame))} (exact duplicates)")
    frame = drop_columns(frame, empty_or_constant_columns(frame, target), "empty or constant")
    frame = drop_columns(frame, free_text_columns(frame, target), "free-text")
    check_trainable(frame, target)
    return frame


def prepare_target(frame: pd.DataFrame, target: str, prediction: str) -> pd.DataFrame:
    """The only step that depends on the prediction type (config.toml's project.prediction)."""
    if prediction == "regression":
        return prepare_numeric_target(frame, target)
    return prepare_class_target(frame, target)


def prepare_numeric_target(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Regression: the target as numbers; rows where it is missing or not a number are dropped.

    Text targets are read like numeric text columns ("1,234" is 1234); infinities count as missing.
    """
    values = frame[target]
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        values = as_numbers(values)
    if pd.api.types.is_float_dtype(values.dtype):
        values = values.replace([np.inf, -np.inf], np.nan)
    keep = values.notna()
    if not keep.any():
        examples = ", ".join(map(repr, frame[target].dropna().astype(str).unique()[:3]))
        raise ValueError(
            f"target {target!r} has no numeric values"
            + (f" (e.g. {examples})" if examples else "")
            + ": regression needs a numeric target; classification projects predict categories"
        )
    missing = int(frame[target].isna().sum())
    if missing:
        note(f"dropped {rows(missing)} without a {target!r} value")
    if int((~keep).sum()) > missing:
        note(f"dropped {rows(int((~keep).sum()) - missing)} whose {target!r} is not a number")
    frame = frame.loc[keep].copy()
    frame[target] = values[keep]
    return frame


def prepare_class_target(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Classification: keep the rows that have a label, and make sure the labels are classes.

    Text labels lose surrounding spaces (an empty label counts as missing). A float target whose
    values are all whole numbers (0.0, 1.0, ...) becomes integer labels; a float target with
    fractions or many values is continuous, which a regression project predicts instead.
    """
    labels = frame[target]
    if is_text(labels):
        labels = labels.str.strip() if is_string(labels) else labels.map(strip_if_text)
        labels = labels.replace("", np.nan)
    keep = labels.notna()
    if not keep.all():
        note(f"dropped {rows(int((~keep).sum()))} without a {target!r} value")
    frame = frame.loc[keep].copy()
    labels = labels[keep]
    if pd.api.types.is_float_dtype(labels) and len(labels):
        fractional = labels[labels != labels.round()]
        distinct = labels.nunique()
        if len(fractional) or distinct > MAX_FLOAT_CLASSES:
            example = (fractional if len(fractional) else labels).tolist()[0]
            raise ValueError(
                f"target {target!r} looks continuous ({distinct} distinct values, "
                f"e.g. {example:g}): use a regression project, or turn it into classes "
                "in processor.py"
            )
        labels = labels.astype("int64")
    frame[target] = labels
    if len(frame) and labels.nunique() < 2:
        raise ValueError(
            f"target {target!r} has a single class ({labels.tolist()[0]!r}): "
            "classification needs at least two"
        )
    return frame


def strip_if_text(value: object) -> object:
    """A text value without surrounding spaces; anything else unchanged."""
    return value.strip() if isinstance(value, str) else value


def note(message: str) -> None:
    """Report a change; haj shows printed lines in its log."""
    print(f"processor: {message}")


def rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def is_string(values: pd.Series) -> bool:
    """A pandas string column (pandas' own text dtype)."""
    return isinstance(values.dtype, pd.StringDtype)


def is_text(values: pd.Series) -> bool:
    """A column of text (object or string dtype), as opposed to numbers, dates or categories."""
    return pd.api.types.is_object_dtype(values.dtype) or is_string(values)


def tidy_columns(raw: pd.DataFrame, target: str) -> pd.DataFrame:
    """A copy with stripped column names and nested JSON values (lists, dicts) as text."""
    frame = raw.copy()
    frame.columns = [str(column).strip() for column in frame.columns]
    repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if repeated:
        raise ValueError(f"column names repeat once spaces are stripped: {', '.join(repeated)}")
    if target not in frame.columns:
        names = ", ".join(map(repr, list(frame.columns)[:20]))
        more = f" (and {len(frame.columns) - 20} more)" if len(frame.columns) > 20 else ""
        raise ValueError(f"target column {target!r} not found; columns are: {names}{more}")
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_object_dtype(values.dtype):
            nested = values.map(lambda v: isinstance(v, list | dict | set | tuple))
            if nested.any():
                frame[column] = values.where(~nested, values.astype(str))
    return frame


def as_numbers(values: pd.Series) -> pd.Series:
    """Numbers parsed from text ("1,234" is 1234, "$5.50" 5.5, "5%" 5, "(300)" -300); values that
    are not numbers become NaN."""
    present = values.dropna()
    text = present.astype(str).str.strip()
    negative = text.str.fullmatch(ACCOUNTING_NEGATIVE)
    text = text.where(~negative, text.str.slice(1, -1).str.strip())
    text = text.str.replace(CURRENCY_BEFORE, r"\1", regex=True)
    text = text.str.replace(CURRENCY_AFTER, "", regex=True)
    text = text.str.replace(PERCENT, "", regex=True)
    text = text.where(~text.str.fullmatch(THOUSANDS), text.str.replace(",", "", regex=False))
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    numbers = numbers.where(~negative, -numbers)
    return numbers.reindex(values.index)


def written(values: pd.Series) -> pd.Series:
    """True where a value is really there: not missing, and not text that stands for missing."""
    return values.notna() & ~values.astype(str).str.strip().str.lower().isin(MISSING_TEXT)


def numbers_from_text(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Text feature columns whose written values are mostly numbers become numeric (the rest,
    missing); infinities become missing. Other text columns lose the spaces around values."""
    converted, stripped = [], []
    for column in frame.columns:
        values = frame[column]
        if column == target:
            continue
        if is_text(values) and values.notna().any():
            numbers = as_numbers(values)
            there = written(values)
            if there.any() and numbers[there].notna().sum() >= MOSTLY * there.sum():
                frame[column] = numbers
                converted.append(column)
            else:
                tidy = values.map(strip_if_text)
                tidy = tidy.where(tidy != "", np.nan)
                if not tidy.equals(values):
                    frame[column] = tidy
                    stripped.append(column)
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].replace([np.inf, -np.inf], np.nan)
    if converted:
        note(f"read as numbers: {', '.join(converted)}")
    if stripped:
        note(f"stripped spaces around values: {', '.join(stripped)}")
    return frame


def parse_dates(values: pd.Series) -> pd.Series | None:
    """The column as timestamps if it holds dates (or mostly date text), else None."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    if not is_text(values):
        return None
    present = values.dropna().astype(str).str.strip()
    if present.empty:
        return None
    sample = present.drop_duplicates().head(500)
    if sample.str.fullmatch(DATE_LIKE).mean() < MOSTLY:
        return None
    if to_timestamps(sample).notna().mean() < MOSTLY:
        return None
    distinct = present.drop_duplicates()
    lookup = pd.Series(to_timestamps(distinct).to_numpy(), index=distinct.to_numpy())
    stamps = present.map(lookup)  # each distinct text parsed once: fast on long columns
    if stamps.notna().sum() < MOSTLY * len(present):
        return None
    return stamps.reindex(values.index)


def to_timestamps(text: pd.Series) -> pd.Series:
    """Each value parsed as a date on its own (formats may mix); failures become NaT."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):
            return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")


def dates_to_numbers(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Replace each date column with its year, month, day and day of the week, as numbers."""
    converted = []
    for column in list(frame.columns):
        if column == target:
            continue
        stamps = parse_dates(frame[column])
        if stamps is None:
            continue
        position = frame.columns.get_loc(column)
        frame = frame.drop(columns=column)
        for offset, part in enumerate(("year", "month", "day", "dayofweek")):
            name = f"{column}_{part}"
            if name not in frame.columns:
                frame.insert(
                    position + offset, name, getattr(stamps.dt, DATE_PARTS[part]).astype("float64")
                )
        converted.append(column)
    if converted:
        note(f"dates split into year, month, day and day of week: {', '.join(converted)}")
    return frame


def identifier_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Columns that name rows rather than describe them (they would only teach the model noise):
    a distinct value on every row, and a name that says so or, for text, values that look like
    ids. Numbers (income, prices) are never dropped for being distinct: only for an id name."""
    found = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if not (len(frame) >= 2 and values.notna().all() and values.is_unique):
            continue
        named_like_id = bool(ID_NAME.search(column) or CAMEL_ID_NAME.search(column))
        if named_like_id or (
            len(frame) >= ID_MIN_ROWS and is_text(values) and looks_like_ids(values)
        ):
            found.append(column)
    return found


def looks_like_ids(values: pd.Series) -> bool:
    """Text whose values are (mostly) uuids, emails or codes such as C1042 or ORD-2023-0001."""
    text = values.astype(str).str.strip()
    return bool(text.str.fullmatch(ID_VALUE).mean() >= MOSTLY)


def empty_or_constant_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Columns with no values at all, or the same value on every row."""
    return [
        column
        for column in frame.columns
        if column != target and frame[column].nunique(dropna=False) <= 1
    ]


def free_text_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Text columns with so many distinct values that they are not categories (names, notes):
    a category seen on one row only teaches nothing."""
    found = []
    for column in frame.columns:
        values = frame[column]
        if column == target or not is_text(values):
            continue
        distinct = values.nunique()
        present = int(values.notna().sum())
        many = distinct > FREE_TEXT_MIN_UNIQUE and distinct > FREE_TEXT_SHARE * present
        if many or (present >= ID_MIN_ROWS and distinct == present):
            found.append(column)
    return found


def drop_columns(frame: pd.DataFrame, columns: list[str], why: str) -> pd.DataFrame:
    if columns:
        note(f"dropped {why} columns: {', '.join(columns)}")
    return frame.drop(columns=columns)


def check_trainable(frame: pd.DataFrame, target: str) -> None:
    """Fail with a clear message when too little is left to train on."""
    if frame.shape[1] < 2:
        raise ValueError(
            "no feature column remains after cleaning: every other column was empty, constant, "
            "an identifier or free text (adapt processor.py to keep the ones you need)"
        )
    if len(frame) < MIN_ROWS:
        raise ValueError(
            f"only {len(frame)} usable rows remain after cleaning; at least {MIN_ROWS} are needed "
            f"(check the data and that {target!r} is the right target)"
        )
