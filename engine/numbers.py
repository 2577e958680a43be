"""Numbers as both faces print them: a metric's score, a data column's values, a duration.

The rules, so a value reads the same in `haj runs`, the app's tables, its charts and messages:

- **A metric's precision is the metric's.** Scores bounded by 1 (acc, precision, recall, f1,
  roc_auc, r2) always show 4 decimals (`0.9825`). Error metrics (rmse, mae, mse) are in the
  target's unit, so they show 4 significant digits (`52.94`, `2887`, `0.1234`), and scientific
  notation outside 0.001..10^7 (`6.903e-06`). The same value is the same text everywhere.
- **A data column has one precision**, chosen from its largest magnitude: integers stay
  integers, other values get 4 significant digits of the largest (so 0.0381 beside 0.1107), and
  a value far below that precision is zero (float noise such as -2.5e-19 reads `0.0000`, never
  `-0.0000`). Very large or very small columns are written in scientific notation.
- **Missing is said**: `NA`, never a blank cell.
- **A number is never cut**: `fit()` drops decimals, then switches to scientific notation, to
  make a value fit a width; it never truncates digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

MISSING = "NA"
BOUNDED = frozenset({"acc", "precision", "recall", "f1", "roc_auc", "r2"})  # |score| <= 1
_SIGNIFICANT = 4
_MAX_DECIMALS = 4
_LOW, _HIGH = 1e-3, 1e7  # outside this magnitude: scientific notation


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA/NaT
    except (TypeError, ValueError):
        return False


def _decimals_for(magnitude: float) -> int:
    """Decimals that give `_SIGNIFICANT` significant digits to a value of this magnitude."""
    if magnitude <= 0:
        return _MAX_DECIMALS
    exponent = math.floor(math.log10(magnitude))
    return max(0, min(_MAX_DECIMALS, _SIGNIFICANT - 1 - exponent))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:  # -0.0000 is noise around zero
        text = text[1:]
    return text


def _scientific(value: float, digits: int = _SIGNIFICANT) -> str:
    return f"{value:.{max(0, digits - 1)}e}"


def metric_decimals(metric: str, value: float) -> int | None:
    """The decimals `metric_text` uses for `value`; None: scientific notation."""
    if metric in BOUNDED:
        return _MAX_DECIMALS
    magnitude = abs(value)
    if magnitude and not _LOW <= magnitude < _HIGH:
        return None
    return _decimals_for(magnitude)


def metric_text(metric: str, value: float | None, std: float | None = None) -> str:
    """A metric's value as every face shows it (`0.9825`, `52.94`, `0.9650 ± 0.0120`);
    NA when missing."""
    if is_missing(value):
        return MISSING
    value = float(value)  # type: ignore[arg-type]
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    decimals = metric_decimals(metric, value)
    text = _scientific(value) if decimals is None else _fixed(value, decimals)
    if std is None or is_missing(std):
        return text
    spread = _scientific(std) if decimals is None else _fixed(float(std), decimals)
    return f"{text} ± {spread}"


def column_format(values: Iterable[Any]) -> Callable[[Any], str]:
    """How every value of one data column is written: one precision for the whole column,
    chosen from its largest magnitude (see the module's rules). Text is kept as it is."""
    numbers: list[float] = []
    for value in values:
        if isinstance(value, bool) or is_missing(value):
            continue
        if isinstance(value, int | float) or hasattr(value, "dtype"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                numbers.append(number)
    integral = bool(numbers) and all(n == int(n) and abs(n) < 1e15 for n in numbers)
    scale = max((abs(n) for n in numbers), default=0.0)
    scientific = not integral and scale > 0 and not _LOW <= scale < _HIGH
    decimals = 0 if integral else _decimals_for(scale)

    def write(value: Any) -> str:
        if is_missing(value):
            return MISSING
        if isinstance(value, bool) or not (
            isinstance(value, int | float) or hasattr(value, "dtype")
        ):
            return str(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if not math.isfinite(number):
            return "inf" if number > 0 else "-inf" if number < 0 else MISSING
        if integral and number == int(number):
            return str(int(number))
        if scientific:
            return _scientific(number)
        return _fixed(number, decimals)

    return write


def fit(text: str, width: int) -> str:
    """A number's text made to fit `width` columns without cutting it: fewer decimals, then
    scientific notation with fewer digits. Text that is not a number, or cannot fit, is
    returned as it is (the caller widens the column)."""
    if len(text) <= width:
        return text
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return text
    if "." in text and "e" not in text.lower():
        decimals = len(text.split(".", 1)[1])
        for fewer in range(decimals - 1, -1, -1):
            candidate = _fixed(value, fewer)
            if len(candidate) <= width:
                return candidate
    for digits in range(_SIGNIFICANT, 0, -1):
        candidate = _scientific(value, digits)
        if len(candidate) <= width:
            return candidate
    return text


def duration_text(seconds: float | None) -> str:
    """A duration as people say it: `0.42s`, `12.3s`, `4m05s`, `1h02m`; blank when unknown."""
    if seconds is None or is_missing(seconds):
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def summary_texts(entry: dict[str, Any]) -> dict[str, str]:
    """A data column's min, mean and max (engine.data.summarize) at one precision, the
    column's; NA for a numeric column without values; {} for a text column (it has "top")."""
    if "top" in entry:
        return {}
    keys = ("min", "mean", "max")
    write = column_format(entry.get(key) for key in keys)
    return {key: write(entry.get(key)) for key in keys}


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float | None]) -> str:
    """A one-line chart of a series (min to max), a blank where a value is missing: the trend
    of a stored figure in a terminal table."""
    points = list(values)
    present = [v for v in points if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    out = []
    for value in points:
        if value is None:
            out.append(" ")
        elif span == 0:
            out.append(_BLOCKS[0] if high == 0 else _BLOCKS[len(_BLOCKS) // 2])
        else:
            out.append(_BLOCKS[round((value - low) / span * (len(_BLOCKS) - 1))])
    return "".join(out)
