"""Scoring runs on labelled data and the degradation check, on a real trained project: the
raw penguins table, its labels flipped in a new data version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj
from tests.support.penguins import LR_DT, copy_home, train_penguins

pytestmark = pytest.mark.integration  # trains real models (in the module's fixture)

TARGET = "Species"


@pytest.fixture(scope="module")
def trained(shared_build: Callable[..., Path]) -> Path:
    return shared_build("penguins-lr-dt", lambda home: train_penguins(home, LR_DT))


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    return copy_home(trained, tmp_path / "home")


def flipped(path: Path) -> Path:
    """The same rows with every label moved to the next species: a model that was right on
    the old data is wrong on nearly all of these."""
    rows = penguin_rows()
    order = ["Adelie", "Chinstrap", "Gentoo"]
    for row in rows:
        row[TARGET] = order[(order.index(row[TARGET]) + 1) % 3]
    path.write_text(to_csv(rows))
    return path


def test_check_holds_on_the_training_data_and_exits_3_when_labels_flip(home: Path) -> None:
    same = call_haj(home, "check", "penguins")
    assert same.code == 0, same.text
    assert same.out.startswith("holds: ")
    new = flipped(home / "flipped.csv")
    degraded = call_haj(home, "check", "penguins", str(new), "--json")
    assert degraded.code == 3, degraded.text
    detail = json.loads(degraded.out)
    assert not detail["holds"] and detail["metric"] == "acc" and detail["measured"] < 0.2
    assert detail["change"] < -0.5 and detail["tolerance"] == 0.05
    said = call_haj(home, "check", "penguins", "--data", str(new))
    assert said.code == 3 and said.out.startswith("DEGRADED: ")
    # a generous tolerance says the same drop holds
    assert call_haj(home, "check", "penguins", str(new), "--tolerance", "1").code == 0


def test_score_records_a_confusion_matrix_shown_with_the_run(home: Path) -> None:
    new = flipped(home / "flipped.csv")
    scored = call_haj(home, "score", "penguins", str(new), "--top", "2", "--json")
    assert scored.code == 0, scored.text
    results = json.loads(scored.out)
    assert len(results) == 2 and all(r["rows"] == 240 for r in results)
    confusion = results[0]["details"]["confusion"]
    assert sorted(confusion["labels"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(map(sum, confusion["matrix"])) == 240
    diagonal = sum(confusion["matrix"][i][i] for i in range(3))
    assert diagonal / 240 == pytest.approx(results[0]["metrics"]["acc"])
    shown = call_haj(home, "runs", "penguins", "--show", results[0]["label"])
    assert shown.code == 0, shown.text
    assert "confusion matrix" in shown.out and "flipped.csv" in shown.out
    assert "No evaluation yet" not in shown.out


def test_scoring_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text(to_csv([{k: v for k, v in r.items() if k != TARGET}
                                  for r in penguin_rows(20)]))  # fmt: skip
    result = call_haj(home, "score", "penguins", str(unlabelled))
    assert result.code == 6 and "has no 'Species' column: scoring needs labels" in result.err
    assert call_haj(home, "score", "penguins", "nope-0009").code == 2
    assert call_haj(home, "runs", "penguins", "--show", "nope-3").code == 2


async def test_runs_tab_scores_the_selected_run_crowns_it_and_rolls_back(home: Path) -> None:
    """The app's Runs tab: v scores the highlighted run on a labelled file (the confusion matrix
    in the run panel), g crowns it whatever its score, z crowns the previous champion again."""
    from engine.api import Workspace
    from haj_tui.app import HajApp
    from tests.tui_support import screen_text, wait_for, wait_for_text

    project = Workspace(home).project("penguins")
    champion = project.leaderboard().champion_id
    other = next(r for r in project.leaderboard().finished() if r["id"] != champion)
    new = flipped(home / "flipped.csv")
    app = HajApp(Workspace(home))
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("5")
        board = app.screen.query_one("#runs-board")
        await wait_for(pilot, lambda: board.row_count >= 2, what="the leaderboard")
        board.move_cursor(row=board.get_row_index(other["id"]))
        await pilot.press("v")
        await wait_for(pilot, lambda: "Score the run" in screen_text(app), what="the prompt")
        from textual.widgets import Input

        app.screen.query_one("#value", Input).value = str(new)
        await pilot.press("enter")
        # said when it is done (a notification), and recorded; the panel shows it too
        await wait_for(pilot, lambda: project.evaluations(other["id"]), what="the evaluation")
        await wait_for_text(pilot, f"{other['label']}: acc = ", timeout=60)
        await pilot.press("g")
        await wait_for(pilot, lambda: project.leaderboard().champion_id == other["id"],
                       what="the chosen run crowned")  # fmt: skip
        await pilot.press("z")
        await wait_for(pilot, lambda: project.leaderboard().champion_id == champion,
                       what="the previous champion back")  # fmt: skip
    assert [e["data"] for e in project.evaluations(other["id"])] == [str(new)]


async def test_train_tab_retrain_shows_each_step_and_the_decision(home: Path) -> None:
    """R on the Train tab: a retrain with the source unchanged stops after the retrieve (said
    once, as the decision); with new labels it trains, compares and says what it decided."""
    from engine.api import Workspace
    from haj_tui.app import HajApp
    from tests.tui_support import screen_text, wait_for_text

    app = HajApp(Workspace(home))
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("R")
        await wait_for_text(pilot, "Retrain skipped: nothing new", timeout=60)
        assert "retrain retrieve" in screen_text(app)
        source = home / "penguins.csv"
        flipped(source)  # the project's data source now says otherwise
        await pilot.press("R")
        await wait_for_text(pilot, "Retrain promoted", timeout=120)
    history = Workspace(home).project("penguins").retrain_history()
    assert [r.decision for r in history] == ["promoted", "skipped"]


async def test_serve_tab_scores_a_file_to_an_output_path(home: Path, tmp_path: Path) -> None:
    """o on the Serve tab: a file in the data's own shape scored by the champion into a file,
    as `haj predict` does (no server needed)."""
    import pandas as pd
    from textual.widgets import Input

    from engine.api import Workspace
    from haj_tui.app import HajApp
    from tests.tui_support import screen_text, wait_for

    source = tmp_path / "new.csv"
    rows = [{k: v for k, v in r.items() if k != "Species"} for r in penguin_rows(30)]
    source.write_text(to_csv(rows))
    out = tmp_path / "scored.csv"
    app = HajApp(Workspace(home))
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("6")
        await pilot.pause()
        await pilot.press("o")
        await wait_for(pilot, lambda: "Score a file" in screen_text(app), what="the prompt")
        app.screen.query_one("#value", Input).value = str(source)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Write the predictions" in screen_text(app), what="output")
        app.screen.query_one("#value", Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: out.exists(), what="the scored file")
        await wait_for(pilot, lambda: "Scored 30 rows" in screen_text(app), what="the summary")
    scored = pd.read_csv(out)
    assert len(scored) == 30 and set(scored["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
