"""Cron expressions: checked, explained and iterated with cronsim.

A project's schedule (`[pipeline] schedule` in config.toml) is a 5-field cron expression
(minute hour day-of-month month day-of-week) or one of cron's @-words (@hourly, @daily...).
The same text goes into the user's crontab (`haj schedule install`) and drives haj's own
scheduler (`haj schedule run`), so only what the cron daemon itself understands is accepted:
cronsim's extensions (seconds, `L`, `W`, `#`) are refused here. Times are the machine's local
wall-clock time, as cron reads them.

cronsim (https://github.com/cuu508/cronsim) follows Debian's cron exactly, DST included; it is
imported inside the functions, so `import engine.cron` (and config validation of a project
without a schedule) costs nothing. This module imports only engine.errors: engine.project
validates the schedule through it.
"""

from __future__ import annotations

import re
from datetime import datetime

from engine.errors import UsageError

OFF_WORDS = ("", "off", "none")
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
EXAMPLE = '"0 3 * * *" (03:00 every day), "*/15 * * * *" (every 15 minutes), "@hourly"'
# cronsim's names for its fields in its errors ("Bad minute"), and what cron reads there
_RANGES = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31",
    "month": "1-12 or jan-dec",
    "day-of-week": "0-7 or sun-sat",
}
_EXTENSION = re.compile(r"[LW#?]")  # Quartz/cronsim syntax that cron does not understand


def is_off(text: str | None) -> bool:
    """True for no schedule: empty, "off" or "none"."""
    return text is None or text.strip().lower() in OFF_WORDS


def expand(expr: str) -> str:
    """The 5 fields an expression stands for (an @-word is expanded; spaces normalised)."""
    text = " ".join(expr.split())
    return MACROS.get(text.lower(), text)


def check(expr: str) -> str:
    """The expression as stored (white space normalised; an @-word in lower case), or a
    UsageError saying in one line what is wrong with it."""
    from cronsim import CronSim, CronSimError

    text = " ".join(str(expr).split())
    if text.startswith("@"):
        word = text.lower()
        if word == "@reboot":
            raise UsageError('"@reboot" runs at boot, not on a schedule: give times instead')
        if word not in MACROS:
            raise UsageError(
                f"{text!r} is not a cron @-word ({', '.join(MACROS)}), nor 5 fields: e.g. {EXAMPLE}"
            )
        return word
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise UsageError(
            f"a schedule is 5 fields (minute hour day-of-month month day-of-week), "
            f"{text!r} has {len(fields)}: e.g. {EXAMPLE}"
        )
    for name, value in zip(FIELDS, fields, strict=True):
        upper = value.upper()
        if name == "month":  # month names (JUL) hold an L: only names there
            continue
        if name == "day-of-week":  # WED holds a W
            upper = re.sub(r"SUN|MON|TUE|WED|THU|FRI|SAT", "", upper)
        if _EXTENSION.search(upper):
            raise UsageError(
                f"{text!r}: the {name} field {value!r} uses L, W, # or ?, which cron does not "
                f"understand (a {name} is {_RANGES[name]}, with * , - /)"
            )
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise UsageError(f"{text!r}: {_say(str(exc))}") from None
    return text


def _say(message: str) -> str:
    """cronsim's "Bad minute" as a sentence that says what the field takes."""
    match = re.match(r"Bad (minute|hour|day-of-month|month|day-of-week)", message)
    if match:
        name = match.group(1)
        if name == "day-of-month":  # 31 in February is as bad as 32
            return "bad day-of-month field (1-31, on a day the months given have)"
        return f"bad {name} field (a {name} is {_RANGES[name]}, with * , - /)"
    return message[:1].lower() + message[1:]


def next_times(expr: str, after: datetime | None = None, count: int = 3) -> list[datetime]:
    """The next `count` times (local, naive) strictly after `after` (default: now)."""
    from cronsim import CronSim

    start = (after or datetime.now()).replace(microsecond=0)
    found: list[datetime] = []
    iterator = CronSim(expand(expr), start)
    for _ in range(count):
        try:
            found.append(next(iterator))
        except StopIteration:  # no match within 50 years (31 February...)
            break
    return found


def next_time(expr: str, after: datetime) -> datetime | None:
    """The first time strictly after `after`, or None when there is none."""
    times = next_times(expr, after, 1)
    return times[0] if times else None


def explain(expr: str) -> str:
    """The expression in words ("At 03:00 every day"), or "" if cronsim cannot say it."""
    from cronsim import CronSim

    try:
        return CronSim(expand(expr), datetime(2000, 1, 1)).explain()
    except Exception:  # explain() is a convenience: never let it fail a command
        return ""
