"""Project names: safe directory names, checked before anything touches the disk."""

from __future__ import annotations

import re

from engine.errors import UsageError

# Matched with fullmatch: a "$" anchor would also match before a trailing newline ("nl\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def validate_name(name: str) -> str:
    """Return `name` if it is a safe project name, else raise UsageError.

    Letters, digits, '-' and '_' only, starting with a letter or digit, at most 64 characters:
    so no '/', no '..', no hidden directories and nothing a shell would misread.
    """
    if not isinstance(name, str) or not name.strip():
        raise UsageError("a project name cannot be empty")
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid project name {name!r}: use letters, digits, '-' and '_' "
            "(starting with a letter or digit, at most 64 characters)"
        )
    return name


def humanize(name: str) -> str:
    """A default title for a project: 'breast-cancer_v2' -> 'Breast Cancer V2'."""
    return " ".join(part.capitalize() for part in re.split(r"[-_]+", name) if part) or name


def name_for_title(title: str) -> str:
    """The project name a title asks for: the title itself when it is a valid name, else its
    words lowercased and joined with '-' ('Customer Churn 2' -> 'customer-churn-2').

    A path-like title ('../x', 'a/b', '.hidden') is never turned into a name: it is refused."""
    import unicodedata

    if _NAME.fullmatch(title) or not title.strip() or "/" in title or "\\" in title:
        return validate_name(title)
    if title.startswith("."):
        return validate_name(title)
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_title)
    return validate_name("-".join(words).lower()[:64].strip("-") or title)
