"""Engine errors say what went wrong and, separately, what to do next; each face phrases the
hint its own way: the CLI as a command, the app as a key or a tab."""

from __future__ import annotations

import json

import pytest

from engine import events
from engine.cli import hints as cli_hints
from engine.errors import ACTIONS, DataError, HajError, Hint
from haj_tui import hints as app_hints


@pytest.mark.parametrize("action", ACTIONS)
def test_every_hint_has_a_phrase_in_both_faces(action: str) -> None:
    error = HajError("something is missing", Hint(action, "churn"))
    cli, app = cli_hints.render(error), app_hints.render(error)
    assert cli.startswith("something is missing: ") and app.startswith("something is missing: ")
    assert cli != app  # each face says it its own way
    assert "haj " not in app and "`" not in app  # the app never speaks shell commands


def test_the_cli_names_the_command_and_the_app_the_key() -> None:
    error = DataError("no data yet", Hint("retrieve", "churn"))
    assert cli_hints.render(error) == "no data yet: run `haj retrieve churn` first"
    assert app_hints.render(error) == "no data yet: press r to retrieve"
    assert str(error) == "no data yet"  # the message alone carries no interface


def test_an_unknown_action_is_a_bug_caught_at_once() -> None:
    with pytest.raises(ValueError, match="unknown hint action"):
        Hint("reticulate")


def test_a_hint_survives_the_runner_boundary() -> None:
    """The runner subprocess reports errors as JSON lines: the hint travels with them."""
    from dataclasses import asdict

    hint = Hint("set-target", "churn")
    line = json.dumps(
        events.Failed(kind="DataError", message="no target", hint=asdict(hint)).to_json()
    )
    back = events.from_json(json.loads(line))
    assert isinstance(back, events.Failed) and Hint(**back.hint) == hint


def test_an_error_without_a_hint_is_its_message() -> None:
    error = HajError("a\nmultiline   message")
    assert cli_hints.render(error) == app_hints.render(error) == "a | multiline message"
