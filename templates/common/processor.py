"""Turn raw data into a table haj can train on, and every later row the same way. This file is
yours: adapt it to your data.

haj uses the `Processor` class below the way scikit-learn uses a transformer:

- `haj process` calls `Processor(target, prediction).fit(raw)` on a raw data version (a pandas
  DataFrame in the shape retriever.py returns), then `transform(raw)` and `training_rows(...)`,
  and stores the result as a processed data version, which `haj train` learns from;
- the fitted object travels inside every model trained on that data, and the server calls its
  `transform(rows)` on each request: clients send rows in the data's own shape (the target
  absent) and get exactly the processing the model was trained with.

So `fit` learns (which columns to drop, which text holds numbers or dates, how categories are
spelled), `transform` only replays what fit learned, one output row per input row, and
`training_rows` holds what applies at training only (dropping unlabelled and duplicate rows,
preparing the target). `target` is data.target and `prediction` is project.prediction in
config.toml. A processor.py that defines only a `process(raw, target, prediction)` function
still works: haj runs it at `haj process`, and per request when it can (see the README).

Leave categorical and numeric columns as they are, missing values included: haj's training pipeline
fills in missing numbers (median) and categories (most frequent), scales numbers and one-hot encodes
categories itself. Out of the box this processor works on most tables:

1. strips spaces from column names and checks that the target column exists;
2. reads text columns that hold numbers as numbers ("42", " 1,234 ", "$145,309", "-€5.50",
   "(300)", "5%" is 5) when most of their values parse; strips spaces around category values
   and spells each category as training saw it most ("female" and " FEMALE" are "FEMALE");
3. replaces date columns with numeric <col>_year, <col>_month, <col>_day and <col>_dayofweek
   (only <col>_year when every date is a January 1st: a year written as a date);
4. drops identifier columns: a distinct value on every row that is named like one (id, *_id,
   uuid, key, index, CustomerID), counts the rows (1, 2, 3, ...) or, in text that is not
   numbers, looks like one (uuids, emails, codes such as "C1042" or "ORD-2023-0001");
5. drops empty and constant columns, and free text (too many distinct values to be categories,
   or a distinct text on every row);
6. at training only: prepares the target (see `prepare_target`: class labels for classification,
   numbers for regression) and drops exact duplicate rows.

It prints what it changed; the lines appear in haj's log.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

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


class Processor:
    """What processing learns from the training data, replayed on every row the model sees."""

    def __init__(self, target: str, prediction: str = "classification") -> None:
        self.target = target.strip()
        self.prediction = prediction

    # ---- learning ------------------------------------------------------------------------------
    def fit(self, raw: pd.DataFrame) -> Processor:
        """Learn the column plan from a raw data version; returns self."""
        target = self.target
        check_columns(raw, target)
        frame = raw.rename(columns=clean_name)
        self.nested_ = nested_columns(frame)
        frame = nested_as_text(frame, self.nested_)
        self.numeric_text_ = numeric_text_columns(frame, target)
        if self.numeric_text_:
            note(f"read as numbers: {', '.join(self.numeric_text_)}")
        for column in self.numeric_text_:
            frame[column] = as_numbers(frame[column])
        text = [c for c in frame.columns if c != target and is_text(frame[c])]
        stripped = [c for c in text if not frame[c].map(strip_if_text).equals(frame[c])]
        frame = strip_text(frame, text)
        self.dates_ = {}
        for column in text:
            stamps = parse_dates(frame[column])
            if stamps is not None:
                self.dates_[column] = date_parts(stamps)
        if self.dates_:
            note(f"dates split into {describe_dates(self.dates_)}")
        frame = split_dates(frame, self.dates_)
        stripped = [c for c in stripped if c not in self.dates_]
        if stripped:
            note(f"stripped spaces around values: {', '.join(stripped)}")
        dropped = identifier_columns(frame, target)
        report_dropped(dropped, "identifier")
        labelled = self.training_rows(frame.drop(columns=dropped), quiet=True)
        for why, find in (
            ("empty or constant", empty_or_constant_columns),
            ("free-text", free_text_columns),
        ):
            found = find(labelled, target)
            report_dropped(found, why)
            labelled = labelled.drop(columns=found)
            dropped += found
        self.columns_ = list(labelled.columns)
        self.features_ = [c for c in self.columns_ if c != target]
        self.spellings_ = {
            column: spellings(labelled[column], column)
            for column in self.features_
            if column in text and column not in self.dates_
        }
        self.inputs_ = self._inputs(raw)
        self.passthrough = not (
            any(clean_name(c) != c for c in raw.columns)
            or self.nested_
            or self.numeric_text_
            or self.spellings_
            or self.dates_
        )
        return self

    def _inputs(self, raw: pd.DataFrame) -> list[str]:
        """The raw columns the features come from (a request needs only these)."""
        used = set(self.features_)
        for column, parts in self.dates_.items():
            if any(f"{column}_{part}" in used for part in parts):
                used.add(column)
        return [
            str(c) for c in raw.columns if clean_name(c) in used and clean_name(c) != self.target
        ]

    # ---- replaying -----------------------------------------------------------------------------
    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The features (and the target, when the rows have it) of every row, as fit learned
        them: no row is dropped or reordered. A feature whose source column is absent is
        missing (imputed by the model's pipeline)."""
        frame = raw.rename(columns=clean_name)
        frame = nested_as_text(frame, [c for c in self.nested_ if c in frame.columns])
        for column in self.numeric_text_:
            if column in frame.columns:
                frame[column] = as_numbers(frame[column])
        for column, canonical in self.spellings_.items():
            if column in frame.columns:
                frame[column] = respell(frame[column], canonical)
        for column in self.dates_:
            if column in frame.columns:
                frame[column] = strip_text(frame[[column]], [column])[column]
        frame = split_dates(frame, {c: p for c, p in self.dates_.items() if c in frame.columns})
        for column in self.features_:
            if column not in frame.columns:
                frame[column] = np.nan
            elif pd.api.types.is_float_dtype(frame[column]):
                frame[column] = frame[column].replace([np.inf, -np.inf], np.nan)
        return frame[[c for c in self.columns_ if c in frame.columns]]

    def training_rows(self, frame: pd.DataFrame, quiet: bool = False) -> pd.DataFrame:
        """Training only: the rows with a usable target, that target prepared, no duplicates."""
        report = (lambda message: None) if quiet else note
        frame = prepare_target(frame, self.target, self.prediction, report)
        before = len(frame)
        frame = frame.drop_duplicates(ignore_index=True)
        if len(frame) < before:
            report(f"dropped {rows(before - len(frame))} (exact duplicates)")
        if not quiet:
            check_trainable(frame, self.target)
        return frame


def process(raw: pd.DataFrame, target: str, prediction: str = "classification") -> pd.DataFrame:
    """Feature columns plus the target column, ready for `haj train`: what `haj process` does
    with the Processor above (handy in a notebook)."""
    processor = Processor(target, prediction).fit(raw)
    return processor.training_rows(processor.transform(raw))


def prepare_target(
    frame: pd.DataFrame, target: str, prediction: str, report: Any = None
) -> pd.DataFrame:
    """The only step that depends on the prediction type (config.toml's project.prediction).
    `report` says what was dropped (default: printed)."""
    report = report or note
    if frame[target].isna().all() or (
        is_text(frame[target])
        and not frame[target].map(strip_if_text).replace("", np.nan).notna().any()
    ):
        raise ValueError(
            f"every row lacks a {target!r} value: there is nothing to learn from (is {target!r} "
            "the right target column?)"
        )
    if prediction == "regression":
        return prepare_numeric_target(frame, target, report)
    return prepare_class_target(frame, target, report)


def prepare_numeric_target(frame: pd.DataFrame, target: str, report: Any = None) -> pd.DataFrame:
    """Regression: the target as numbers; rows where it is missing or not a number are dropped.

    Text targets are read like numeric text columns ("1,234" is 1234); infinities count as missing.
    """
    report = report or note
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
        report(f"dropped {rows(missing)} without a {target!r} value")
    if int((~keep).sum()) > missing:
        report(f"dropped {rows(int((~keep).sum()) - missing)} whose {target!r} is not a number")
    frame = frame.loc[keep].copy()
    frame[target] = values[keep]
    return frame


def prepare_class_target(frame: pd.DataFrame, target: str, report: Any = None) -> pd.DataFrame:
    """Classification: keep the rows that have a label, and make sure the labels are classes.

    Text labels lose surrounding spaces (an empty label counts as missing). A float target whose
    values are all whole numbers (0.0, 1.0, ...) becomes integer labels; a float target with
    fractions or many values is continuous, which a regression project predicts instead.
    """
    report = report or note
    labels = frame[target]
    if is_text(labels):
        labels = labels.str.strip() if is_string(labels) else labels.map(strip_if_text)
        labels = labels.replace("", np.nan)
    keep = labels.notna()
    if not keep.all():
        report(f"dropped {rows(int((~keep).sum()))} without a {target!r} value")
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


def clean_name(column: Any) -> str:
    """A column name as the model knows it: text without surrounding spaces."""
    return str(column).strip()


def check_columns(raw: pd.DataFrame, target: str) -> None:
    """Column names must stay distinct once cleaned, and the target must be one of them."""
    names = [clean_name(c) for c in raw.columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"column names repeat once spaces are stripped: {', '.join(repeated)}")
    if target not in names:
        shown = ", ".join(map(repr, names[:20]))
        more = f" (and {len(names) - 20} more)" if len(names) > 20 else ""
        raise ValueError(f"target column {target!r} not found; columns are: {shown}{more}")


def nested_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding nested JSON values (lists, dicts): the model sees them as text."""
    return [
        column
        for column in frame.columns
        if pd.api.types.is_object_dtype(frame[column].dtype)
        and frame[column].map(lambda v: isinstance(v, list | dict | set | tuple)).any()
    ]


def nested_as_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        values = frame[column]
        nested = values.map(lambda v: isinstance(v, list | dict | set | tuple))
        frame[column] = values.where(~nested, values.astype(str))
    return frame


def as_numbers(values: pd.Series) -> pd.Series:
    """Numbers parsed from text ("1,234" is 1234, "$5.50" 5.5, "5%" 5, "(300)" -300); values that
    are not numbers become NaN."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
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


def numeric_text_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Text feature columns whose written values are mostly numbers (the rest: missing)."""
    found = []
    for column in frame.columns:
        values = frame[column]
        if column == target or not is_text(values) or not values.notna().any():
            continue
        there = written(values)
        if there.any() and as_numbers(values)[there].notna().sum() >= MOSTLY * there.sum():
            found.append(column)
    return found


def strip_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Text columns without spaces around values; an empty value is missing."""
    frame = frame.copy()
    for column in columns:
        tidy = frame[column].map(strip_if_text)
        frame[column] = tidy.where(tidy != "", np.nan)
    return frame


def spellings(values: pd.Series, column: str) -> dict[str, str]:
    """Each category's spelling key (case and spaces ignored) -> the spelling training saw most.
    Says which spellings it merges."""
    counts = values.dropna().astype(str).value_counts()
    canonical: dict[str, str] = {}
    for spelling in counts.index:  # most frequent first
        canonical.setdefault(spelling.strip().casefold(), spelling)
    merged = [s for s in counts.index if canonical[s.strip().casefold()] != s]
    if merged:
        shown = ", ".join(f"{s!r} as {canonical[s.strip().casefold()]!r}" for s in merged[:5])
        note(f"{column}: categories spelled as training saw them most: {shown}")
    return canonical


def respell(values: pd.Series, canonical: dict[str, str]) -> pd.Series:
    """Categories in the spelling training saw (see `spellings`); a category training never saw
    keeps its own (haj counts it as unseen); an empty one is missing."""

    def one(value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        return canonical.get(text.casefold(), text) if text else np.nan

    return values.map(one)


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
    stamps = to_timestamps(present)
    if stamps.notna().sum() < MOSTLY * len(present):
        return None
    return stamps.reindex(values.index)


def to_timestamps(text: pd.Series) -> pd.Series:
    """Each value parsed as a date on its own (formats may mix); failures become NaT. Each
    distinct text is parsed once: fast on long columns."""
    distinct = text.dropna().astype(str).str.strip().drop_duplicates()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(distinct, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):
            parsed = pd.Series(pd.NaT, index=distinct.index, dtype="datetime64[ns, UTC]")
    lookup = pd.Series(parsed.to_numpy(), index=distinct.to_numpy())
    stamps = text.map(lambda v: lookup.get(str(v).strip(), pd.NaT) if pd.notna(v) else pd.NaT)
    return pd.to_datetime(stamps, utc=True)


def date_parts(stamps: pd.Series) -> list[str]:
    """The parts of a date column worth keeping: a year written as a date (every value a
    January 1st) keeps only its year, a month (every value a 1st) no day."""
    present = stamps.dropna()
    if present.empty:
        return ["year", "month", "day", "dayofweek"]
    first_of_month = bool((present.dt.day == 1).all())
    if first_of_month and bool((present.dt.month == 1).all()):
        return ["year"]
    if first_of_month:
        return ["year", "month"]
    return ["year", "month", "day", "dayofweek"]


def describe_dates(dates: dict[str, list[str]]) -> str:
    groups: dict[str, list[str]] = {}
    for column, parts in dates.items():
        label = {1: "year only", 2: "year and month"}.get(
            len(parts), "year, month, day and day of week"
        )
        groups.setdefault(label, []).append(column)
    return "; ".join(f"{label}: {', '.join(columns)}" for label, columns in groups.items())


def split_dates(frame: pd.DataFrame, dates: dict[str, list[str]]) -> pd.DataFrame:
    """Replace each date column with the numeric parts fit chose, in its place."""
    for column, parts in dates.items():
        stamps = to_timestamps(frame[column])
        position = frame.columns.get_loc(column)
        frame = frame.drop(columns=column)
        for offset, part in enumerate(parts):
            name = f"{column}_{part}"
            if name not in frame.columns:
                values = getattr(stamps.dt, DATE_PARTS[part]).astype("float64")
                frame.insert(position + offset, name, values.to_numpy())
    return frame


def identifier_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Columns that name rows rather than describe them (they would only teach the model noise):
    a distinct value on every row, and a name that says so, values that count the rows
    (1, 2, 3, ... as in "Sample Number") or, for text, values that look like ids. Other numbers
    (income, prices, years) are never dropped for being distinct."""
    found = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if not (len(frame) >= 2 and values.notna().all() and values.is_unique):
            continue
        named_like_id = bool(ID_NAME.search(column) or CAMEL_ID_NAME.search(column))
        if named_like_id or (
            len(frame) >= ID_MIN_ROWS
            and (counts_rows(values) or (is_text(values) and looks_like_ids(values)))
        ):
            found.append(column)
    return found


def counts_rows(values: pd.Series) -> bool:
    """Whole numbers 0, 1, 2, ... or 1, 2, 3, ... in row order: a row counter."""
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = values.to_numpy(dtype="float64")
    start = numbers[0]
    return start in (0.0, 1.0) and bool(
        np.array_equal(numbers, np.arange(start, start + len(numbers)))
    )


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


def report_dropped(columns: list[str], why: str) -> None:
    if columns:
        note(f"dropped {why} columns: {', '.join(columns)}")


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
