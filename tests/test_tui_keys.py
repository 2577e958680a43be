"""Keys and focus on the Project screen, over the fake engine (tests/tui_fake.py): every key a
tab shows works whenever the tab is visible, letters typed in a form stay in the form, escape
leaves the field then the screen, a dialog's Cancel runs nothing. Also the Code tab's save checks
and the smaller defects of issue 10 (Projects detail, Config target, Container, Deploy).

Each test here failed before the change it covers (see the docstrings)."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.drivers.headless_driver import HeadlessDriver
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, TabbedContent, TextArea

from engine.api import DeployDefaults, Workspace
from engine.errors import ContainerError
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.screens.projects import ProjectsScreen
from haj_tui.widgets.modals import ConfirmModal, UnsavedModal
from tests.tui_fake import FakeProject, FakeWorkspace
from tests.tui_support import (
    footer_shows,
    no_cursor_blink,
    screen_text,
    wait_for,
    wait_for_text,
    workers_done,
)

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def fake() -> FakeWorkspace:
    """cancer (trained, crowned, served), diabetes (trained), wine (no data)."""
    return FakeWorkspace.populated()


@asynccontextmanager
async def project_screen(
    project: FakeProject, size: tuple[int, int] = SIZE
) -> AsyncIterator[tuple[Pilot[None], ProjectScreen]]:
    app = HajApp(project.workspace)  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await app.push_screen(ProjectScreen(project))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        yield pilot, screen


async def show(pilot: Pilot[None], screen: ProjectScreen, number: str, tab: str) -> None:
    await pilot.press(number)
    await wait_for(pilot, lambda: screen.shown_tab == tab, what=f"the {tab} tab")
    await workers_done(pilot.app)
    await pilot.pause()


def calls(project: FakeProject, verb: str) -> list[tuple[Any, ...]]:
    return [c for c in project.workspace.calls if c[0] == verb]


def notes(pilot: Pilot[None]) -> list[str]:
    return [n.message for n in pilot.app._notifications]


# ---- keys that always work --------------------------------------------------------------------
async def test_a_tabs_keys_work_right_after_switching_to_it(fake: FakeWorkspace) -> None:
    """5 then 4: `a` (all/none) used to do nothing until the focus was moved into the tab."""
    async with project_screen(fake.project("cancer")) as (pilot, screen):
        await show(pilot, screen, "5", "runs")
        await show(pilot, screen, "4", "train")
        await footer_shows(pilot, "a All/none")
        models = screen.query_one("#train-models")
        assert len(models.selected) == models.option_count  # type: ignore[attr-defined]
        await pilot.press("a")
        await wait_for(pilot, lambda: not models.selected)  # type: ignore[attr-defined]


async def test_tab_keys_work_with_the_focus_on_the_tab_strip(fake: FakeWorkspace) -> None:
    """Clicking the tab strip (or focus nowhere) keeps the visible tab's keys working."""
    async with project_screen(fake.project("cancer")) as (pilot, screen):
        await show(pilot, screen, "9", "deploy")
        screen.set_focus(None)
        await footer_shows(pilot, "v Dry-run plan")
        before = len(calls(fake.project("cancer"), "deploy_plan"))
        await pilot.press("v")
        await wait_for(pilot, lambda: len(calls(fake.project("cancer"), "deploy_plan")) > before)


async def test_a_tab_number_focuses_the_tabs_main_widget_and_labels_carry_numbers(
    fake: FakeWorkspace,
) -> None:
    async with project_screen(fake.project("cancer")) as (pilot, screen):
        expected = {
            "2": ("code", "code-files"),
            "3": ("data", "data-versions"),
            "5": ("runs", "runs-board"),
            "8": ("container", "container-images"),
            "1": ("config", "config-form"),
        }
        for number, (tab, widget_id) in expected.items():
            await show(pilot, screen, number, tab)
            assert screen.focused is not None and screen.focused.id == widget_id, tab
        assert "1 Config  2 Code  3 Data  4 Train" in screen_text(pilot.app)


async def test_unsaved_dialog_cancel_runs_nothing(fake: FakeWorkspace) -> None:
    """b → "Unsaved changes" → c used to start the build anyway."""
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await pilot.pause()
        screen.query_one("#cfg-test_size", Input).value = "0.3"
        screen.focus_main()
        await pilot.pause()
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, UnsavedModal))
        await pilot.press("c")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        await workers_done(pilot.app)
        assert not calls(cancer, "build")
        assert screen.query_one(TabbedContent).active == "config"
        # Discard: the build runs, and says what it does
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, UnsavedModal))
        await pilot.press("d")
        await wait_for(pilot, lambda: len(calls(cancer, "build")) == 1, what="the build")
        assert any("Building cancer's champion: base image" in n for n in notes(pilot))


async def test_letters_typed_in_a_dropdown_or_a_field_fire_nothing(fake: FakeWorkspace) -> None:
    """t typed on the Train tab's data dropdown used to start a training (r a retrieve...)."""
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await show(pilot, screen, "4", "train")
        screen.query_one("#train-data", Select).focus()
        await footer_shows(pilot, "esc Leave field", hidden=("t Train",))
        await pilot.press("t", "r", "p", "b", "c", "s", "5")
        await pilot.pause(0.2)
        assert not [c for c in cancer.workspace.calls if c[0] in ("train", "retrieve", "build")]
        assert screen.shown_tab == "train"
        await pilot.press("escape")  # out of the field: keys again
        await show(pilot, screen, "8", "container")
        screen.query_one("#container-wheelhouse").focus()  # a checkbox is a field too
        await pilot.press("b", "l")
        await pilot.pause(0.2)
        assert not calls(cancer, "build")


async def test_escape_leaves_the_field_then_the_screen(fake: FakeWorkspace) -> None:
    async with project_screen(fake.project("cancer")) as (pilot, screen):
        await pilot.pause()
        screen.query_one("#cfg-url", Input).focus()
        await pilot.press("escape")
        await pilot.pause()
        assert screen.focused is not None and screen.focused.id == "config-form"
        assert pilot.app.screen is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectsScreen))


async def test_escape_leaves_the_code_editor_for_the_file_list(fake: FakeWorkspace) -> None:
    """Textual's code editor moved the focus to the next widget on escape; the border says
    how to leave."""
    async with project_screen(fake.project("cancer")) as (pilot, screen):
        await show(pilot, screen, "2", "code")
        await pilot.press("enter")  # the file list: into the editor
        editor = screen.query_one("#code-editor", TextArea)
        await wait_for(pilot, lambda: screen.focused is editor)
        assert "esc: leave the editor" in screen_text(pilot.app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.focused is screen.query_one("#code-files"))
        assert pilot.app.screen is screen


async def test_s_on_a_fresh_tab_reads_the_server_state_first(fake: FakeWorkspace) -> None:
    """s on a just-opened project used to start an already running server."""
    cancer = fake.project("cancer")
    assert cancer.serving is not None
    async with project_screen(cancer) as (pilot, _screen):
        await pilot.press("s")
        await wait_for(pilot, lambda: bool(calls(cancer, "stop_server")), what="a stop")
        assert not calls(cancer, "start_server")


async def test_crown_while_a_server_runs_asks_first(fake: FakeWorkspace) -> None:
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        assert "swaps the model" in screen_text(pilot.app)
        await pilot.press("n")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        await workers_done(pilot.app)
        assert not any("Champion:" in n for n in notes(pilot))
        cancer.serving = None  # no server: crowning just acts
        await pilot.press("c")
        await wait_for(pilot, lambda: any("Champion:" in n for n in notes(pilot)), what="crowned")


async def test_heavy_key_says_what_it_starts(fake: FakeWorkspace) -> None:
    async with project_screen(fake.project("cancer")) as (pilot, _screen):
        await pilot.press("t")
        await wait_for(pilot, lambda: any("Training the checked models" in n for n in notes(pilot)))


# ---- the editor --------------------------------------------------------------------------------
async def test_save_with_a_syntax_error_shows_the_line_and_asks(fake: FakeWorkspace) -> None:
    """ctrl+s used to say "Saved retriever.py" over a SyntaxError."""
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await show(pilot, screen, "2", "code")
        editor = screen.query_one("#code-editor", TextArea)
        editor.load_text("x = 1\ny = (\nz = 2\n")
        editor.focus()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        assert "line 2" in screen_text(pilot.app)
        await pilot.press("n")  # not saved; the cursor is on the line
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        assert editor.cursor_location[0] == 1
        assert "y = (" not in cancer.read_code("retriever")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        await pilot.press("y")  # save anyway
        await wait_for(pilot, lambda: "y = (" in cancer.read_code("retriever"), what="saved")


async def test_save_over_a_change_made_outside_asks(fake: FakeWorkspace) -> None:
    """ctrl+s used to overwrite an edit made in another editor, silently."""
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await show(pilot, screen, "2", "code")
        editor = screen.query_one("#code-editor", TextArea)
        editor.load_text("x = 'mine'\n")
        cancer.code["retriever"] = "x = 'theirs'\n"
        editor.focus()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        assert "changed outside the app" in screen_text(pilot.app)
        await pilot.press("n")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        assert cancer.read_code("retriever") == "x = 'theirs'\n"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: cancer.read_code("retriever") == "x = 'mine'\n")


@pytest.mark.integration
async def test_back_from_the_external_editor_the_cursor_stays(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real engine and files; the headless driver is told it can suspend (see test_tui_app)."""
    editor_script = tmp_path / "editor.py"
    editor_script.write_text(
        "import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write('# added\\n')\n"
    )
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    monkeypatch.setenv("VISUAL", f"{sys.executable} {editor_script}")
    workspace = Workspace.open(home)
    workspace.create("cancer", "classification", example="breast_cancer")
    async with HajApp(workspace).run_test(size=SIZE) as pilot:
        await pilot.app.push_screen(ProjectScreen(workspace.project("cancer")))
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        await show(pilot, screen, "2", "code")
        editor = screen.query_one("#code-editor", TextArea)
        editor.cursor_location = (5, 2)
        await pilot.press("ctrl+o")
        await wait_for_text(pilot, "Reloaded retriever.py")
        assert editor.text.endswith("# added\n")
        assert editor.cursor_location == (5, 2)


# ---- Projects, Config, Container, Deploy --------------------------------------------------------
async def test_projects_detail_pane_and_titles_that_repeat_the_name(fake: FakeWorkspace) -> None:
    fake.project("diabetes")._config["project"]["title"] = "Blood sugar"
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "Score history (acc)")
        text = screen_text(pilot.app)
        assert "server      ● http://127.0.0.1:8000" in text
        assert "1 raw, 1 processed" in text
        assert "Cancer" not in text  # the title repeats the name: hidden
        assert "Blood sugar" in text


async def test_config_target_is_chosen_among_the_datas_columns(fake: FakeWorkspace) -> None:
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        choice = screen.query_one("#cfg-target-choice", Select)
        await wait_for(pilot, lambda: choice.display, what="the column choice")
        assert [str(o[0]) for o in choice._options if str(o[0])] == [
            "x1",
            "x2",
            "target",
        ]
        assert not screen.query_one("#cfg-target", Input).display
        choice.value = "x2"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: cancer.config()["data"]["target"] == "x2")


async def test_config_without_data_types_the_target(fake: FakeWorkspace) -> None:
    async with project_screen(fake.project("wine")) as (pilot, screen):
        await wait_for_text(pilot, "No data yet: type the target")
        assert screen.query_one("#cfg-target", Input).display


async def test_config_save_and_revert_are_on_screen_at_80x24(fake: FakeWorkspace) -> None:
    async with project_screen(fake.project("cancer"), size=(80, 24)) as (pilot, screen):
        await pilot.pause()
        for button_id in ("#config-save", "#config-revert"):
            region = screen.query_one(button_id, Button).region
            assert region.height and region.bottom <= 23, button_id  # above the footer


async def test_container_without_engine_refuses_b_and_says_why_in_words(
    fake: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancer = fake.project("cancer")

    def no_engine() -> Any:
        from engine.container.client import docker_client

        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        docker_client()  # the engine's own message

    monkeypatch.setattr(cancer, "container_status", no_engine)
    async with project_screen(cancer) as (pilot, screen):
        await show(pilot, screen, "8", "container")
        tab = screen.tab("container")
        await wait_for(pilot, lambda: tab.docker_problem is not None)  # type: ignore[union-attr]
        problem = str(tab.docker_problem)  # type: ignore[union-attr]
        assert "(no such file or directory)" in problem and "FileNotFoundError" not in problem
        await footer_shows(pilot, hidden=("b Build",))
        assert screen.query_one("#container-build", Button).disabled
        await pilot.press("b")
        await pilot.pause(0.2)
        assert not calls(cancer, "build")


async def test_b_from_another_tab_waits_for_docker_then_refuses(
    fake: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancer = fake.project("cancer")

    def no_engine() -> Any:
        raise ContainerError("no Docker engine reachable at the default socket")

    monkeypatch.setattr(cancer, "container_status", no_engine)
    async with project_screen(cancer) as (pilot, _screen):
        await pilot.press("b")
        await wait_for(pilot, lambda: any("cannot be built" in n for n in notes(pilot)))
        assert not calls(cancer, "build")


async def test_deploy_without_region_is_refused_before_the_confirmation(
    fake: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancer = fake.project("cancer")
    monkeypatch.setattr(cancer, "deploy_defaults", lambda: DeployDefaults(None, "ml.m5.large", 1))
    async with project_screen(cancer) as (pilot, screen):
        await pilot.press("d")
        await wait_for(pilot, lambda: any("No region" in n for n in notes(pilot)))
        assert not isinstance(pilot.app.screen, ConfirmModal)
        region = screen.query_one("#deploy-region", Input)
        assert region.value == "" and "eu-west" not in region.placeholder
        assert screen.focused is region


async def test_deploy_tab_undeploy_off_and_plan_names_whole(fake: FakeWorkspace) -> None:
    cancer = fake.project("cancer")
    async with project_screen(cancer) as (pilot, screen):
        await show(pilot, screen, "9", "deploy")
        assert screen.query_one("#deploy-remove", Button).disabled
        await footer_shows(pilot, hidden=("u Undeploy",))
        region = screen.query_one("#deploy-region", Input)
        assert region.value == "eu-west-1" and "eu-west-1" not in region.placeholder
        await wait_for_text(pilot, "build")
        name = f"haj/cancer:{cancer.champion['run_id']}"  # type: ignore[index]
        view = screen.query_one("#deploy-plan-view")
        assert any(name in line for line in str(view.render()).split("\n"))  # whole, one line
        widest = max(len(line) for line in str(view.render()).split("\n"))
        assert view.size.width >= widest  # lines as wide as they are, never folded
        assert screen.query_one("#deploy-plan-box").max_scroll_x > 0  # the box scrolls sideways


# ---- help and palette ---------------------------------------------------------------------------
def _help_lines(text: str) -> list[str]:
    """The help's lines as read on screen, the dialog's borders and scrollbar stripped."""
    return [" ".join(line.strip(" █▌▐┃│▎▊▁▔▇▅▃").split()) for line in text.splitlines()]


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_help_is_sized_to_the_screen_and_every_key_can_be_reached(
    fake: FakeWorkspace, size: tuple[int, int]
) -> None:
    """Failed before: the help was 84x28 whatever the screen, so at 80x24 its right side and its
    Close button were off screen, and at 200x50 it scrolled in a small box in the middle."""
    from haj_tui.screens.help import KEYS, HelpScreen, tab_keys

    width, height = size
    async with HajApp(fake).run_test(size=size) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")
        await pilot.pause()
        screen = pilot.app.screen
        dialog = screen.query_one("#help")
        scroll = screen.query_one("#help-keys")
        close = screen.query_one("#close", Button)
        assert dialog.region.right <= width and dialog.region.bottom <= height
        assert close.region.height and close.region.bottom <= height  # Close stays on screen
        assert scroll.max_scroll_x == 0  # nothing cut at the right edge
        if size == (80, 24):  # a small screen: the help takes all of it, and scrolls
            assert dialog.region.width == width and dialog.region.height == height
            assert scroll.max_scroll_y > 0
        else:  # a big one: capped, centred, everything in view at once
            assert dialog.region.width < width and dialog.region.height < height
            assert scroll.max_scroll_y == 0
            assert abs(dialog.region.x - (width - dialog.region.right)) <= 1
            assert abs(dialog.region.y - (height - dialog.region.bottom)) <= 1
        seen: list[str] = []
        scroll.focus()
        while True:  # page through it as a user does
            await pilot.pause()
            seen += _help_lines(screen_text(pilot.app))
            if scroll.scroll_y >= scroll.max_scroll_y:
                break
            await pilot.press("pagedown")
        text = "\n".join(seen)
        for _, key, does in (*KEYS, *tab_keys()):
            key, start = " ".join(key.split()), " ".join(does.split()[:2])  # a long one wraps
            assert any(key in line and start in line for line in seen), (key, does, text)
        assert "The mouse works everywhere" in " ".join(text.split())


async def _palette_titles(pilot: Pilot[None]) -> list[str]:
    """Every entry the command palette lists before anything is typed, as titled on screen."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="palette")
    entries = pilot.app.screen.query_one(CommandList)
    await wait_for(
        pilot,
        lambda: entries.option_count > 0 and not entries.has_class("--populating"),
        what="palette entries",
    )
    await workers_done(pilot.app)  # every provider has answered
    titles = [str(entries.get_option_at_index(i).hit.text) for i in range(entries.option_count)]
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette))
    return titles


def _repeated(titles: list[str]) -> list[str]:
    """Entries that say the same thing twice: the same title, the same words in another order
    ("Project: open cancer" / "Open project cancer"), two ways to the keys or to the list."""
    words = [" ".join(sorted(re.sub(r"\(.*?\)|[^\w\s]", " ", t.lower()).split())) for t in titles]
    repeated = [t for t, w in zip(titles, words, strict=True) if words.count(w) > 1]
    for kind in (r"\bkeys\b", r"^projects: (back|go to)"):
        same = [t for t in titles if re.search(kind, t.lower())]
        repeated += same if len(same) > 1 else []
    return repeated


async def test_palette_entries_are_not_repeated(fake: FakeWorkspace) -> None:
    """Failed before: Textual's own Quit and Keys beside haj's Quit and Help: keys, "Project:
    open cancer" beside "Open project cancer", two ways back to the list on a project."""
    async with HajApp(fake).run_test(size=SIZE) as pilot:
        await pilot.pause()
        on_projects = await _palette_titles(pilot)
        assert "Open project cancer" in on_projects and "Quit" in on_projects
        assert _repeated(on_projects) == [], on_projects
        app = pilot.app
        await app.push_screen(ProjectScreen(fake.project("cancer")))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show(pilot, screen, "2", "code")  # the Code tab adds its own entries
        on_project = await _palette_titles(pilot)
        assert "Tab: Code (2)" in on_project and "Code: save (ctrl+s)" in on_project
        assert _repeated(on_project) == [], on_project
