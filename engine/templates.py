"""Render the templates into a new project directory.

templates/common/ holds the files every project starts with; templates/<prediction>/ holds the
ones that differ by type (model.py, README.md) and wins where both have a file.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError

# Files whose names cannot be shipped as-is in a wheel (dotfiles) are stored without the dot.
_RENAMES = {"env": ".env", "gitignore": ".gitignore"}
_MODES = {".env": 0o600}


def templates_root() -> Path:
    """templates/ in a source checkout (editable install), engine/_templates in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "_templates"):
        if (candidate / "classification").is_dir():
            return candidate
    raise ConfigError("haj's templates are missing from this installation; reinstall haj")


def template_dir(prediction: str) -> Path:
    return templates_root() / prediction


def _sources(prediction: str) -> dict[str, Path]:
    """Template file name -> path: common files, overridden by the prediction type's own."""
    sources: dict[str, Path] = {}
    for folder in (templates_root() / "common", template_dir(prediction)):
        for source in sorted(folder.iterdir()):
            if source.is_file() and not source.name.startswith((".", "__")):
                sources[source.name] = source
    return sources


def render(prediction: str, values: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Map of relative file name -> (text, mode) for a new project of this prediction type."""
    rendered: dict[str, tuple[str, int]] = {}
    for file_name, source in _sources(prediction).items():
        text = source.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        name = _RENAMES.get(file_name, file_name)
        rendered[name] = (text, _MODES.get(name, 0o644))
    return rendered


def template_text(prediction: str, file_name: str) -> str:
    """The pristine template text of one file (to tell whether a user has edited theirs)."""
    return _sources(prediction)[file_name].read_text(encoding="utf-8")


def render_file(prediction: str, file_name: str, values: dict[str, str]) -> str:
    """One template file with its {{placeholders}} filled in, as `haj init` writes it."""
    text = template_text(prediction, file_name)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def is_unedited(prediction: str, file_name: str, text: str) -> bool:
    """True if `text` is the template as rendered for any project name, title, url...

    Why a pattern: the file was rendered with values (the project's name) that may have changed
    since, by a rename, so comparing with one rendering would call it edited.
    """
    import re

    parts = re.split(r"\{\{\w+\}\}", template_text(prediction, file_name))
    pattern = r"[^\n]*?".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, text) is not None
