"""Finding runs: `haj runs NAME --filter "model=random_forest tag.owner=ana acc>0.9"`.

A filter is terms separated by spaces, all of which a run must match (AND). A term is
FIELD OP VALUE:

- FIELD: a metric by name (`acc`, `rmse`, a custom one), `param.NAME`, `tag.KEY`, or one of
  `model`, `status`, `data` (its data version), `run` (its id or MODEL-#), `duration` (seconds);
- OP: `=` `!=` `>` `>=` `<` `<=` or `~` (contains, ignoring case);
- VALUE: a number for `>` `>=` `<` `<=`; quote it when it holds spaces (`"tag.note~two words"`).
  `tag.KEY=` (nothing after `=`) matches the runs without the tag, `tag.KEY!=` those with it.

A run without the field (no such metric, parameter or tag) matches only `!=`. Numbers compare as
numbers (`param.max_depth>=5`, `acc=0.95`), everything else as text. Both faces (the CLI and the
app's Runs tab) use this module through the engine's leaderboard, so a filter means the same
everywhere; a bad term is a one-line UsageError naming it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.errors import UsageError

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")
ORDERING = (">", ">=", "<", "<=")
FIELDS = ("model", "status", "data", "run", "duration")
STATUSES = ("running", "finished", "failed", "cancelled")
_TERM = re.compile(r"^(?P<field>[A-Za-z0-9_.\-]*)(?P<op>>=|<=|!=|=|>|<|~)(?P<value>.*)$", re.S)
_HOW = "write FIELD OP VALUE, OP one of = != > >= < <= ~ (e.g. acc>0.9, model=knn, tag.owner=ana)"


@dataclass(frozen=True)
class Term:
    field: str  # as written, lowercased: "acc", "param.max_depth", "tag.owner", "model"
    op: str
    value: str
    text: str  # the term as written, for messages

    @property
    def kind(self) -> str:
        """The kind of field: "param", "tag", one of FIELDS, or "metric"."""
        if self.field.startswith("param."):
            return "param"
        if self.field.startswith("tag."):
            return "tag"
        return self.field if self.field in FIELDS else "metric"

    @property
    def name(self) -> str:
        """The parameter's, tag's or metric's name (the field without its prefix)."""
        return self.field.split(".", 1)[1] if self.kind in ("param", "tag") else self.field


@dataclass(frozen=True)
class RunFilter:
    """Parsed terms (all must match). Empty: every run matches."""

    text: str
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def mentions(self, kind: str) -> bool:
        return any(term.kind == kind for term in self.terms)

    def check_metrics(self, known: Iterable[str]) -> None:
        """A metric term must name a metric the runs can have: a typo is said, not a filter
        that silently matches nothing."""
        names = list(dict.fromkeys(known))
        for term in self.terms:
            if term.kind == "metric" and term.field not in names:
                raise UsageError(
                    f"filter term {term.text!r}: no metric or field {term.field!r} (metrics: "
                    f"{', '.join(names) or 'none'}; fields: {', '.join(FIELDS)}, param.NAME, "
                    "tag.KEY)"
                )

    def matches(self, run: dict[str, Any]) -> bool:
        """Whether `run` (a leaderboard run: Run.to_dict() plus "label" and "tags") matches."""
        return all(_matches(term, run) for term in self.terms)

    def apply(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [run for run in runs if self.matches(run)] if self.terms else list(runs)


def parse(text: str | None) -> RunFilter:
    """The filter written in `text` (UsageError, one line, for a bad term)."""
    text = (text or "").strip()
    if not text:
        return RunFilter("")
    try:
        words = shlex.split(text)
    except ValueError:
        raise UsageError(f"the filter {text!r} has an unclosed quote") from None
    return RunFilter(text, tuple(_term(word) for word in words))


def _term(word: str) -> Term:
    match = _TERM.match(word)
    if match is None:
        raise UsageError(f"bad filter term {word!r}: {_HOW}")
    field, op, value = match.group("field").lower(), match.group("op"), match.group("value")
    if not field:
        raise UsageError(f"filter term {word!r} names no field: {_HOW}")
    if value[:1] in ("=", ">", "<", "~") or (value[:1] == "!" and value[1:2] == "="):
        raise UsageError(f"bad filter term {word!r}: one operator per term ({_HOW})")
    term = Term(field, op, value, word)
    kind = term.kind
    if kind in ("param", "tag") and not re.fullmatch(r"[a-z0-9_.\-]+", term.name):
        raise UsageError(f"filter term {word!r}: {kind}.NAME needs a name after {kind}.")
    if value == "" and not (kind in ("param", "tag") and op in ("=", "!=")):
        raise UsageError(f"filter term {word!r} has no value: {_HOW}")
    if op in ORDERING:
        if kind in ("model", "status", "data", "run"):
            raise UsageError(f"filter term {word!r}: {kind} takes = != or ~, not {op}")
        if _number(value) is None:
            raise UsageError(f"filter term {word!r}: {value!r} is not a number")
    if kind == "metric" and op in ("=", "!=") and _number(value) is None:
        raise UsageError(f"filter term {word!r}: {value!r} is not a number")
    if kind == "duration" and op in ("=", "!=", "~"):
        raise UsageError(f"filter term {word!r}: duration takes > >= < <= (seconds)")
    if kind == "status" and op in ("=", "!=") and value.lower() not in STATUSES:
        raise UsageError(f"filter term {word!r}: a run's status is one of {', '.join(STATUSES)}")
    return term


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    """A value as text the way a user types it: True -> "true", None -> "none"."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return str(value)


def _field_values(term: Term, run: dict[str, Any]) -> tuple[bool, list[Any]]:
    """(whether the run has the field, its value(s): a run is named by its id and its label)."""
    kind = term.kind
    if kind == "param":
        params = run.get("params") or {}
        return term.name in params, [params.get(term.name)]
    if kind == "tag":
        tags = run.get("tags") or {}
        return term.name in tags, [tags.get(term.name)]
    if kind == "metric":
        metrics = run.get("metrics") or {}
        return term.field in metrics, [metrics.get(term.field)]
    if kind == "run":
        return True, [run.get("id"), run.get("label")]
    if kind == "data":
        return run.get("data_version") is not None, [run.get("data_version")]
    if kind == "duration":
        value = run.get("duration_seconds")
        return value is not None, [value]
    return run.get(kind) is not None, [run.get(kind)]


def _matches(term: Term, run: dict[str, Any]) -> bool:
    present, values = _field_values(term, run)
    if term.value == "":  # tag.KEY= : without the tag; tag.KEY!= : with it
        return present if term.op == "!=" else not present
    if not present:
        return term.op == "!="
    hit = any(_compare(term, value) for value in values)
    return not hit if term.op == "!=" else hit


def _compare(term: Term, value: Any) -> bool:
    """Whether `value` matches the term (for !=: whether it equals, negated by the caller)."""
    op = "=" if term.op == "!=" else term.op
    if op == "~":
        return term.value.lower() in _text(value).lower()
    wanted, have = _number(term.value), _number(value)
    if op in ORDERING:
        if wanted is None or have is None:
            return False
        return {
            ">": have > wanted,
            ">=": have >= wanted,
            "<": have < wanted,
            "<=": have <= wanted,
        }[op]
    if wanted is not None and have is not None:
        return math.isclose(have, wanted, rel_tol=1e-9, abs_tol=1e-12)
    if term.kind == "status":
        return _text(value).lower() == term.value.lower()
    return _text(value) == term.value or (
        isinstance(value, bool | type(None)) and _text(value) == term.value.lower()
    )
