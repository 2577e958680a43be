"""The app, driven by Pilot as a user drives it (keys, clicks), checked by what a user notices.

Most tests hand the app the fake engine (tests/tui_fake.py: engine.api's methods over data in
memory), as Harlequin's tests hand theirs an adapter: the screens are tested in milliseconds and
what the app asked the engine to do is read from `FakeWorkspace.calls`. A few flows run on the
real engine (`Workspace` on a temp dir): a secret written to .env, the external editor on a real
file, and keys answered while the real runner trains.
"""

from __future__ import annotations

import asyncio
import os
import stat
import statistics
import sys
import time
from pathlib import Path

import pytest
from textual.drivers.headless_driver import HeadlessDriver
from textual.events import Key
from textual.widgets import DataTable, Input, Select, TabbedContent, TextArea

from engine import events
from engine.api import Workspace
from engine.errors import DataError, Hint
from haj_tui.app import HajApp
from haj_tui.messages import EngineEvent
from haj_tui.screens.new_project import NewProjectModal
from haj_tui.screens.project import ProjectScreen
from haj_tui.screens.projects import ProjectsScreen
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.modals import ConfirmModal, ErrorModal, PromptModal, UnsavedModal
from tests.tui_fake import FakeWorkspace
from tests.tui_support import click, no_cursor_blink, screen_text, wait_for, wait_for_text

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def fake() -> FakeWorkspace:
    """cancer (trained, served), diabetes (trained), wine (just created), in memory."""
    return FakeWorkspace.populated()


def table_names(app: HajApp) -> list[str]:
    table = app.screen.query_one("#projects-table", DataTable)
    return [str(key.value) for key in table.rows]


async def open_project(pilot, name: str) -> ProjectScreen:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen), what="projects")
    app.screen.query_one("#projects-table", DataTable).focus()
    row = table_names(app).index(name)
    app.screen.query_one("#projects-table", DataTable).move_cursor(row=row)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="project screen")
    return app.screen  # type: ignore[return-value]


# ---- Projects ----------------------------------------------------------------------------------
async def test_empty_workspace_says_how_to_start() -> None:
    async with HajApp(FakeWorkspace()).run_test(size=SIZE) as pilot:
        text = screen_text(pilot.app)
        assert "No projects in /fake/ml_projects" in text
        assert "ctrl+n" in text
        assert "`haj" not in text  # keys, not shell commands


async def test_projects_table_and_type_to_filter(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        text = screen_text(app)
        assert "cancer" in text and "diabetes" in text
        assert "classification" in text and "regression" in text
        assert "acc 0." in text  # the champion's score
        assert ":8000" in text  # the Server column: the engine's row.server
        await pilot.press("d", "i", "a")  # typed while the table has focus
        await wait_for(pilot, lambda: table_names(app) == ["diabetes"], what="filtered")
        assert app.screen.query_one("#filter", Input).value == "dia"
        await pilot.press("escape")
        await wait_for(pilot, lambda: table_names(app) == ["cancer", "diabetes", "wine"])
        await pilot.press("z", "z", "z")
        await wait_for_text(pilot, "No project matches the filter")


async def test_new_project_rejects_a_bad_name_then_creates() -> None:
    fake = FakeWorkspace()
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewProjectModal), what="modal")
        await pilot.press(*"bad name!", "enter")
        await wait_for_text(pilot, "invalid project name")
        assert isinstance(app.screen, NewProjectModal)  # still open, beside the field
        assert fake.names() == [] and fake.calls == []
        name_input = app.screen.query_one("#name", Input)
        name_input.value = ""
        await click(pilot, "#name")
        await pilot.press(*"flowers")
        app.screen.query_one("#example", Select).value = "iris"
        await click(pilot, "#create")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen), what="closed")
        assert table_names(app) == ["flowers"]
        assert fake.calls == [("create", "flowers", "classification", "iris")]
        assert fake.project("flowers").config()["data"]["url"] == "example:iris"
        await wait_for_text(pilot, "Created flowers")


async def test_new_project_name_taken_is_reported_beside_the_field(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewProjectModal))
        await pilot.press(*"cancer", "enter")
        await wait_for_text(pilot, "already exists")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectsScreen))


async def test_rename_project_by_name_or_by_title(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        app.screen.query_one(DataTable).move_cursor(row=1)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="prompt")
        await pilot.press("ctrl+a", *"no/slash", "enter")  # select_on_focus: typing replaces
        await wait_for_text(pilot, "invalid project name")
        app.screen.query_one(Input).value = "sugar"
        await pilot.press("enter")
        await wait_for(pilot, lambda: table_names(app) == ["cancer", "sugar", "wine"])
        assert ("rename", "diabetes", "sugar") in fake.calls
        # a title with spaces, as `haj config -t`: the engine names the directory
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="prompt")
        app.screen.query_one(Input).value = "Blood Sugar"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "blood-sugar" in table_names(app), what="renamed")
        assert fake.project("blood-sugar").config()["project"]["title"] == "Blood Sugar"
        await wait_for_text(pilot, "Renamed sugar to blood-sugar")


async def test_delete_asks_first(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        assert "Delete project 'cancer'" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        assert "cancer" in fake.names()
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: table_names(app) == ["diabetes", "wine"], what="deleted")
        assert fake.calls == [("delete", "cancer")]


async def test_open_project_and_back(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "diabetes")
        text = screen_text(pilot.app)
        for tab in ("Config", "Code", "Data", "Train", "Runs", "Serve", "Container", "Deploy"):
            assert tab in text
        assert "haj — diabetes" in text
        assert screen.project is fake.project("diabetes")  # the screen got the API object
        assert screen.query_one("#cfg-prediction", Select).value == "regression"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectsScreen))


async def test_broken_config_is_a_notification_not_a_crash(fake: FakeWorkspace) -> None:
    fake.project("cancer").broken = "config.toml is not valid TOML (line 1)"
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await wait_for_text(pilot, "not valid TOML")
        assert isinstance(pilot.app.screen, ProjectsScreen)


async def test_engine_error_is_shown_with_the_apps_phrase_for_its_hint(
    fake: FakeWorkspace,
) -> None:
    """A HajError's hint is said as a key of the app (haj_tui.hints), not as a command."""
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        pilot.app.report_error(DataError("no data yet", Hint("retrieve", "wine")))
        await wait_for_text(pilot, "no data yet: press r to retrieve")
        assert "haj retrieve" not in screen_text(pilot.app)


async def test_retrieve_failure_from_the_engine_reaches_the_user_with_its_hint(
    fake: FakeWorkspace,
) -> None:
    fake.add("empty", "classification")  # no data URL: retrieve fails with a set-url hint
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "empty")
        await pilot.press("r")
        await wait_for_text(pilot, "set the data source on the Config tab (1)")
        assert ("retrieve", "empty") in fake.calls
        data_tab = screen.tab("data")
        assert data_tab is not None
        await wait_for(pilot, lambda: not data_tab._busy(), what="the tab idle again")


# ---- Config tab --------------------------------------------------------------------------------
async def test_config_invalid_value_is_reported_beside_the_field(fake: FakeWorkspace) -> None:
    cancer = fake.project("cancer")
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        screen.query_one("#cfg-test_size", Input).value = "2"
        screen.query_one("#cfg-target", Input).value = "label"
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "between 0 and 1")
        assert screen.query_one("#test_size-error").has_class("shown")
        assert not [c for c in fake.calls if c[0] == "apply_changes"]  # all or nothing
        screen.query_one("#cfg-test_size", Input).value = "0.3"
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "Config saved")
        assert cancer.config()["training"]["test_size"] == 0.3
        assert cancer.config()["data"]["target"] == "label"
        assert not screen.query_one("#test_size-error").has_class("shown")


async def test_rename_in_config_moves_the_project_and_the_screen_follows(
    fake: FakeWorkspace,
) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        screen.query_one("#cfg-name", Input).value = "tumours"
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "haj — tumours")
        assert screen.project.name == "tumours"
        assert all(tab.project is screen.project for tab in screen.tabs.values())  # type: ignore[attr-defined]
        assert fake.names() == ["diabetes", "tumours", "wine"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: table_names(pilot.app) == ["diabetes", "tumours", "wine"])


async def test_add_dependency_installs_with_a_live_log(fake: FakeWorkspace) -> None:
    """The real pip install is tests/test_deps.py's; here: the check, the log, the outcome."""
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        await click(pilot, "#deps-input")
        await pilot.press(*"-e nonsense", "enter")
        await wait_for_text(pilot, "not a package requirement")
        screen.query_one("#deps-input", Input).value = "tomlkit"
        await pilot.press("enter")
        await wait_for_text(pilot, "Installed; added tomlkit")
        log = screen.query_one("#deps-log", LogView)

        def logged() -> str:  # the live log's lines, wrapped at the panel's width
            return " ".join(line.text.strip() for line in log.lines)

        await wait_for(pilot, lambda: "Requirement already satisfied: tomlkit" in logged())
        assert fake.project("cancer").requirements() == ["tomlkit"]
        assert not screen.query_one("#deps-add").disabled


async def test_api_key_goes_to_env_and_never_on_screen_real_engine(home: Path) -> None:
    """Real engine: the key is written to .env (mode 600), never to config.toml nor the screen."""
    workspace = Workspace.open(home)
    workspace.create("cancer", "classification", example="breast_cancer")
    secret = "sk-very-secret-123"
    async with HajApp(workspace).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        assert "not set" in screen_text(pilot.app)
        await click(pilot, "#cfg-api_key")
        await pilot.press(*secret)
        assert secret not in screen_text(pilot.app)  # a password field shows bullets
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "HAJ_API_KEY saved to .env")
        env = home / "cancer" / ".env"
        assert secret in env.read_text()
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        assert screen.query_one("#cfg-api_key", Input).value == ""
        text = screen_text(pilot.app)
        assert "••••••••" in text and secret not in text
        assert secret not in (home / "cancer" / "config.toml").read_text()


# ---- Code tab ----------------------------------------------------------------------------------
async def test_code_edit_save_and_unsaved_changes_prompt(fake: FakeWorkspace) -> None:
    cancer = fake.project("cancer")
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_project(pilot, "cancer")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "code")
        await click(pilot, "#code-editor")
        await pilot.press("ctrl+home", *"#ok", "enter")
        await wait_for_text(pilot, "retriever.py modified")
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "retriever.py saved")
        assert cancer.read_code("retriever").startswith("#ok\n")

        await pilot.press(*"#no")
        await click(pilot, "#code-files")  # leaving the editor for the file list is fine…
        await pilot.press("down")  # …but switching to processor.py asks
        await wait_for(pilot, lambda: isinstance(app.screen, UnsavedModal), what="prompt")
        await pilot.press("c")  # cancel: stay on retriever.py, edits kept
        await wait_for(pilot, lambda: app.screen is screen)
        assert "#no" in screen.query_one(TextArea).text

        await pilot.press("1")  # another tab asks too
        await wait_for(pilot, lambda: isinstance(app.screen, UnsavedModal), what="prompt")
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "code")

        await pilot.press("escape")  # leaving the screen asks
        await wait_for(pilot, lambda: isinstance(app.screen, UnsavedModal), what="prompt")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        assert "#no" not in cancer.read_code("retriever")


async def test_quit_with_unsaved_changes_asks(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_project(pilot, "cancer")
        await pilot.press("2")
        await click(pilot, "#code-editor")
        await pilot.press(*"x=1")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, UnsavedModal), what="prompt")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.is_running
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, UnsavedModal), what="prompt")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert fake.project("cancer").read_code("retriever").startswith("x=1")


async def test_open_in_editor_with_suspendable_headless_driver_real_engine(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real engine and files. The headless driver cannot suspend (there is no terminal): it is
    told it can, the rest is real: $EDITOR is a real program run on the real file (after a
    missing one is reported). tests/test_tui_tmux.py runs vim in a real terminal."""
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write('# added by the editor\\n')\n"
    )
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    workspace = Workspace.open(home)
    workspace.create("cancer", "classification", example="breast_cancer")
    async with HajApp(workspace).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "code")
        monkeypatch.setenv("VISUAL", "no-such-editor-xyz")
        await pilot.press("ctrl+o")
        await wait_for_text(pilot, "'no-such-editor-xyz' not found")
        monkeypatch.setenv("VISUAL", f"{sys.executable} {editor}")
        await pilot.press("ctrl+o")
        await wait_for_text(pilot, "Reloaded retriever.py")
        assert screen.query_one(TextArea).text.endswith("# added by the editor\n")
    path = home / "cancer" / "retriever.py"
    assert path.read_text().endswith("# added by the editor\n")


# ---- palette, help, errors -------------------------------------------------------------------
async def test_palette_opens_a_project_by_name(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("ctrl+p")
        await pilot.press(*"open diab")
        await wait_for_text(pilot, "Open project diabetes")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="opened")
        assert app.screen.project.name == "diabetes"  # type: ignore[attr-defined]
        await pilot.press("ctrl+p")
        await pilot.press(*"tab cod")
        await wait_for_text(pilot, "Tab: Code")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query_one(TabbedContent).active == "code")


async def test_help_lists_the_keys(fake: FakeWorkspace) -> None:
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await wait_for_text(pilot, "command palette")
        assert "ctrl+n" in screen_text(pilot.app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectsScreen))


async def test_unexpected_worker_error_opens_the_error_panel_synthetic(
    fake: FakeWorkspace,
) -> None:
    """A bug cannot be caused for real: a worker that raises stands in for one."""

    def buggy() -> None:
        raise RuntimeError("boom")

    async with HajApp(fake).run_test(size=SIZE) as pilot:
        app = pilot.app
        app.run_worker(buggy, thread=True, exit_on_error=False)
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="error panel")
        await wait_for_text(pilot, "RuntimeError: boom")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        assert app.is_running


# ---- the real engine end to end: training by the real runner -----------------------------------
async def test_keys_answered_within_100ms_while_training_runs(slow_cancer: Path) -> None:
    """Keys switch tabs at once while the real runner trains (slow_a fits until STOP)."""
    workspace = Workspace.open(slow_cancer.parent)
    project = workspace.project("cancer")
    finished: list[str] = []

    async with HajApp(workspace).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_project(pilot, "cancer")

        for key in ("2", "1"):  # the first showing of a tab builds it: not measured
            await pilot.press(key)
        tabbed = screen.query_one(TabbedContent)

        async def key_delays() -> list[float]:
            """From the key reaching the app to its action switching the tab (pilot.press
            would also wait for the screen to be idle and repainted)."""
            delays = []
            for key, tab in (("2", "code"), ("1", "config"), ("2", "code"), ("1", "config")):
                start = time.perf_counter()
                app.post_message(Key(key, key))
                while tabbed.active != tab:
                    await asyncio.sleep(0.001)
                    assert time.perf_counter() - start < 5, f"key {key} not answered"
                delays.append(time.perf_counter() - start)
                await wait_for(pilot, lambda tab=tab: screen.shown_tab == tab)
                await pilot.pause(0.2)  # keys at a human pace: the repaint is done
            return delays

        idle = await key_delays()  # the anchor: this machine, now, with nothing running

        def on_event(event: events.Event) -> None:
            if isinstance(event, events.RunFinished):
                finished.append(event.model)
            screen.post_message(EngineEvent(event, task="train"))

        worker = screen.run_worker(
            lambda: project.train(["logistic_regression", "slow_a"], on_event=on_event),
            thread=True,
            exit_on_error=False,
            group="train",
        )
        assert worker.is_running
        delays = await key_delays()
        assert worker.is_running  # every key was answered while the fit was still running
        # Training runs in a thread and a subprocess, never on the UI's loop: a key is answered
        # in ms (the median under 100 ms, or within 10x the same keys with nothing running
        # when other test workers load the machine), never after the fit (slow_a lasts until
        # STOP). bench/app_speed.py measures it on a quiet machine (README).
        anchor = statistics.median(idle)
        assert statistics.median(delays) < max(0.1, 10 * anchor) and max(delays) < 3.0, (
            delays,
            idle,
        )
        (slow_cancer / "STOP").touch()  # let slow_a finish
        await wait_for(pilot, lambda: worker.is_finished, timeout=120, what="training")
        assert worker.error is None
    assert sorted(finished) == ["logistic_regression", "slow_a"]


def test_python_m_haj_tui_has_help() -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "haj_tui", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 0
    assert "--home" in result.stdout


async def test_train_tab_rows_are_queued_until_the_engine_starts_them(fake: FakeWorkspace) -> None:
    """Every chosen model gets its row at once, "queued", and fills in as the engine reports."""
    import threading

    from textual.widgets import Label, SelectionList

    project = fake.project("cancer")
    project.train_gate = threading.Event()  # hold training until the rows are checked
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        await pilot.press("4")
        await wait_for(pilot, lambda: screen.shown_tab == "train", what="train tab")
        models = screen.query_one("#train-models", SelectionList)
        models.deselect_all()
        models.select("gaussian_nb")
        models.select("knn")
        await pilot.press("t")
        results = screen.query_one("#train-results", DataTable)
        await wait_for(pilot, lambda: results.row_count == 2, what="a row per model")
        assert [str(results.get_cell(m, "status")) for m in ("gaussian_nb", "knn")] == [
            "queued",
            "queued",
        ]
        project.train_gate.set()
        state = screen.query_one("#train-state", Label)
        # said at the end ("Done: ..."), then as the store's last session once the tab polls
        await wait_for(
            pilot,
            lambda: any(t in str(state.render()) for t in ("Done: 2", "Last training: 2")),
            what="done",
        )
        assert str(results.get_cell("knn", "status")) == "finished"


async def test_models_from_model_py_arriving_late_do_not_undo_a_narrowed_choice(
    fake: FakeWorkspace,
) -> None:
    """model.py's models are read by a runner and join the checklist later: checked while every
    model is (the default), unchecked once the user has picked some."""
    from textual.widgets import SelectionList

    from haj_tui.tabs.train import TrainTab

    project = fake.project("cancer")
    project.extra_models = ["balanced_logistic_regression"]
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        await pilot.press("4")
        await wait_for(pilot, lambda: screen.shown_tab == "train", what="train tab")
        tab = screen.tab("train")
        assert isinstance(tab, TrainTab)
        models = screen.query_one("#train-models", SelectionList)
        await wait_for(pilot, lambda: models.option_count == 12, what="model.py's model")
        assert len(models.selected) == 12  # the default: every model
        models.deselect_all()
        models.select("knn")
        tab._set_extras(["balanced_logistic_regression", "my_forest"])  # model.py changed
        assert models.option_count == 13
        assert models.selected == ["knn"]
