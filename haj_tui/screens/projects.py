"""The Projects screen: every project of the workspace in a table, filtered as you type.

Keys avoid letters so that typing anything filters (fzf-style): ctrl+n new, f2 rename,
delete removes (after a confirmation), enter opens, escape clears the filter. Under the table,
the selected project in detail (the engine's `status()`, read in a worker as the cursor moves):
its champion's score history, data, server, container and deployment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label, Sparkline, Static

from engine.api import Changes
from engine.errors import HajError
from haj_tui.commands import Command
from haj_tui.widgets.footer import HajFooter
from haj_tui.widgets.formats import FittingTable, column_width, columns_that_fit, short_time
from haj_tui.widgets.modals import ConfirmModal, PromptModal
from haj_tui.widgets.work import ReportsWorkerErrors

if TYPE_CHECKING:
    from engine.api import ProjectRow, ProjectStatus, Workspace

COLUMNS = ("Name", "Title", "Type", "Data", "Runs", "Champion", "Score", "Server")
# which columns stay when the screen is narrow (80 columns): the name, score and server always,
# then the champion and type; the title, run and data counts give way first (the detail pane
# under the table shows them for the selected project)
PRIORITY = [0, 6, 7, 5, 2, 4, 3, 1]
SCROLLBAR = 2  # cells kept free for the table's vertical scrollbar, when many projects show it
POLL_SECONDS = 1.0  # how often the list asks whether a project changed (refreshed within 2 s)
PID_CHECK_POLLS = 5  # and re-read every this many polls: a server that dies changes no file


def _score(row: ProjectRow) -> str:
    if row.score is None:
        return "-"
    return f"{row.metric} {row.score:.4g}"


def _title(row: ProjectRow) -> str:
    """The title, unless it only repeats the name ("Cancer" for cancer, "Red Wine" for
    red-wine): then the column stays empty."""

    def letters(text: str) -> str:
        return re.sub(r"[\W_]+", "", text.lower())

    return "" if letters(row.title) == letters(row.name) else row.title


@dataclass(frozen=True)
class Detail:
    """The selected project's status (engine.api ProjectAPI.status), or why it is missing."""

    name: str
    status: ProjectStatus | None = None
    problem: str | None = None


def detail_table(status: ProjectStatus) -> Table:
    """Data, runs, champion, server, container and deployment, one line each."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="ellipsis", no_wrap=True)
    data = status.data
    current = data.current_raw
    data_line = f"{data.raw_versions} raw, {data.processed_versions} processed"
    if current is not None:
        rows = f", {current.rows} rows" if current.rows is not None else ""
        data_line += f"; current {current.id}{rows}"
    table.add_row("data", data_line if data.raw_versions else "none yet (open it, press r)")
    runs = ", ".join(f"{count} {state}" for state, count in sorted(status.runs.items()))
    table.add_row("runs", runs or "none yet")
    champion = status.champion
    table.add_row(
        "champion",
        f"{champion.model} {champion.metric}={champion.value:.4f}" if champion else "none",
    )
    server = status.server
    table.add_row("server", Text(f"● {server.url}", "green") if server else Text("○ stopped"))
    table.add_row("container", status.container or "none")
    deployed = status.deployment_record  # the record, not the CLI's line (it names a command)
    table.add_row(
        "deployment",
        f"{deployed.endpoint_name} in {deployed.region} ({deployed.status or '?'}), "
        f"run {deployed.run_id}"
        if deployed
        else "none",
    )
    planned = status.schedule
    table.add_row(
        "schedule",
        f"{planned['schedule']} ({planned.get('explain') or planned.get('error') or ''})"
        if planned
        else "none (Monitor tab, P: the schedule field)",
    )
    last = status.pipeline
    table.add_row(
        "pipeline",
        f"last run {short_time(last['started_at'])} ({last['trigger']}): {last['status']}"
        if last
        else "never run",
    )
    return table


def _cells(row: ProjectRow) -> tuple[str, ...]:
    """A project's row, one text per column of COLUMNS."""
    return (
        row.name,
        _title(row),
        row.prediction,
        str(row.data_versions),
        str(row.runs),
        row.champion or "-",
        _score(row),
        _server(row),
    )


def _server(row: ProjectRow) -> str:
    """host:port of the live server the engine found ('-': none), or the row's error."""
    if row.error:
        return f"error: {row.error}"[:40]
    return row.server or "-"


class ProjectsScreen(ReportsWorkerErrors, Screen[None]):
    """The workspace: a table of projects."""

    BINDINGS = [
        Binding("ctrl+n", "new", "New", id="projects.new"),
        Binding("enter", "open", "Open", id="projects.open", priority=True),
        Binding("f2", "rename", "Rename", id="projects.rename"),
        Binding("delete", "delete", "Delete", id="projects.delete"),
        Binding("slash", "filter", "Filter", id="projects.filter", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("f5", "reload", "Reload", id="projects.reload", show=False),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.rows: list[ProjectRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="projects-body"):
            yield Input(placeholder="Type to filter projects…", id="filter", select_on_focus=False)
            yield FittingTable(
                id="projects-table", cursor_type="row", zebra_stripes=True, refit=self._refit
            )
            yield Static(id="projects-empty")
            with Horizontal(id="project-detail"):
                yield Static("", id="detail-text")
                with Vertical(id="detail-history"):
                    yield Label("", id="detail-score")
                    yield Sparkline([], id="detail-sparkline")
        yield HajFooter()

    def on_mount(self) -> None:
        self.title = "haj — projects"
        self.sub_title = str(self.workspace.root)
        table = self.query_one(DataTable)
        self.reload()
        table.focus()
        self._stamp: Any = None
        self._polls = 0
        self.set_interval(POLL_SECONDS, self._poll, name="projects-poll")

    def on_screen_resume(self) -> None:
        self.reload()

    def _poll(self) -> None:
        """Read again when a project changed on disk (a server started from a shell, a run
        finished by the CLI or a schedule, a crowning elsewhere), within POLL_SECONDS; and every
        PID_CHECK_POLLS polls anyway, since a server that dies changes no file."""
        if not self.is_current:
            return
        self._polls += 1
        try:
            stamp, changed = self.workspace.changed_since(self._stamp)
        except (HajError, AttributeError):  # a workspace without a stamp (an old fake)
            return
        first = self._stamp is None
        self._stamp = stamp
        if (changed and not first) or self._polls % PID_CHECK_POLLS == 0:
            self.reload()

    # ---- data ----------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Read the workspace again (cheap: config + a read-only query per project)."""
        select = select or self.selected_name()
        self.rows = self.workspace.projects()
        self._fill(select)

    def _visible_rows(self) -> list[ProjectRow]:
        words = self.query_one("#filter", Input).value.lower().split()

        def text(row: ProjectRow) -> str:
            return f"{row.name} {row.title} {row.prediction} {row.champion or ''}"

        return [row for row in self.rows if all(w in text(row).lower() for w in words)]

    def _refit(self) -> None:
        """The table's width changed: choose again the columns that fit."""
        self._fill(self.selected_name(), detail=False)

    def _fill(self, select: str | None = None, detail: bool = True) -> None:
        """The visible rows, with the columns that fit whole (columns_that_fit): a column is
        shown entirely or not at all, so a score or a server address is never cut. Widths are
        those of every project, so the columns stay put while the filter is typed."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        cells = {row.name: _cells(row) for row in self.rows}
        widths = [
            column_width(title, (values[i] for values in cells.values()))
            for i, title in enumerate(COLUMNS)
        ]
        shown = columns_that_fit(
            widths, table.size.width - SCROLLBAR, priority=PRIORITY, required=3
        )
        for i in shown:
            table.add_column(COLUMNS[i], width=widths[i], key=COLUMNS[i].lower())
        visible = self._visible_rows()
        for row in visible:
            table.add_row(*(cells[row.name][i] for i in shown), key=row.name)
        names = [row.name for row in visible]
        if select in names:
            table.move_cursor(row=names.index(select))
        empty = self.query_one("#projects-empty", Static)
        if not self.rows:
            empty.update(
                f"No projects in {self.workspace.root} yet.\n\n"
                "Press ctrl+n to create one: pick an example dataset to have data at once,\n"
                "or leave it empty and set a data URL in the Config tab (1).\n"
            )
        elif not visible:
            empty.update("No project matches the filter. Press escape to clear it.")
        table.display = bool(visible)
        empty.display = not visible
        self.query_one("#project-detail").display = bool(visible)
        if detail:
            self._read_detail()

    # ---- detail of the selected project --------------------------------------------------
    @on(DataTable.RowHighlighted, "#projects-table")
    def _highlighted(self) -> None:
        self._read_detail()

    def _read_detail(self) -> None:
        name = self.selected_name()
        if name is not None and self.is_mounted:
            self._detail(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="projects-detail")
    def _detail(self, name: str) -> None:
        try:
            detail = Detail(name, status=self.workspace.project(name).status())
        except (HajError, OSError) as exc:  # shown in the pane, not popped up per row
            detail = Detail(name, problem=str(getattr(exc, "message", exc)))
        self.app.call_from_thread(self._show_detail, detail)

    def _show_detail(self, detail: Detail) -> None:
        if detail.name != self.selected_name():
            return  # the cursor has moved on
        pane = self.query_one("#project-detail")
        pane.border_title = detail.name
        text = self.query_one("#detail-text", Static)
        score = self.query_one("#detail-score", Label)
        spark = self.query_one("#detail-sparkline", Sparkline)
        status = detail.status
        if status is None:
            text.update(Text(detail.problem or "", style="red"))
            score.update("")
            spark.data = []
            return
        text.update(detail_table(status))
        values = [e.value for e in reversed(status.champion_history) if e.value is not None]
        if not values and status.champion is not None:
            values = [status.champion.value]
        spark.display = len(values) >= 2
        spark.data = values if len(values) >= 2 else []
        if not values:
            score.update("Score history\nnone yet: it starts at the first crowning")
        elif len(values) == 1:
            score.update(f"Score history ({status.metric})\n{values[0]:.4f}, one crowning")
        else:
            score.update(
                f"Score history ({status.metric})\n{values[0]:.4f} → {values[-1]:.4f}, "
                f"{len(values)} crownings"
            )

    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(row_key.value)

    # ---- filter --------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._fill(self.selected_name())

    def on_key(self, event: events.Key) -> None:
        """Type-to-filter: a printable key typed in the table goes to the filter."""
        table = self.query_one(DataTable)
        if self.focused is table and event.is_printable and event.character not in ("/", "?"):
            filter_input = self.query_one("#filter", Input)
            filter_input.focus()
            filter_input.insert_text_at_cursor(event.character or "")
            event.stop()
        elif self.focused is self.query_one("#filter", Input) and event.key == "down":
            table.focus()
            event.stop()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self.reload()

    # ---- actions -------------------------------------------------------------------------
    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        name = self.selected_name()
        if name:
            self.open_project(name)

    def open_project(self, name: str) -> None:
        from haj_tui.screens.project import ProjectScreen

        try:
            project = self.workspace.project(name)
            project.config()  # a broken config.toml is said here, not in every tab
        except HajError as exc:
            self.notify(exc.message, title="Cannot open", severity="error")
            return
        self.app.push_screen(ProjectScreen(project))

    def action_new(self) -> None:
        from haj_tui.screens.new_project import NewProjectModal

        def created(name: str | None) -> None:
            if name:
                self.query_one("#filter", Input).value = ""
                self.reload(select=name)
                self.query_one(DataTable).focus()
                self.notify(f"Created {name}. Press enter to open it.", title="New project")

        self.app.push_screen(NewProjectModal(self.workspace), created)

    @work(group="projects-dialog", exclusive=True)
    async def action_rename(self) -> None:
        name = self.selected_name()
        if not name:
            self.notify("No project selected", severity="warning")
            return

        renamed: list[str] = []

        def check(title: str) -> None:
            """A name, or a title with spaces (as `haj config -t`): the engine names it."""
            project, _ = self.workspace.project(name).apply_changes(Changes(title=title))
            renamed.append(project.name)

        answer = await self.app.push_screen_wait(
            PromptModal(f"Rename {name}", "New name or title", name, check=check, confirm="Rename")
        )
        if answer and renamed:
            self.reload(select=renamed[-1])
            self.notify(f"Renamed {name} to {renamed[-1]}", title="Rename")

    @work(group="projects-dialog", exclusive=True)
    async def action_delete(self) -> None:
        name = self.selected_name()
        if not name:
            self.notify("No project selected", severity="warning")
            return
        confirmed = await self.app.push_screen_wait(
            ConfirmModal(
                f"Delete {name}?",
                f"Delete project {name!r} and all its data, runs and models?\n"
                "This cannot be undone.",
            )
        )
        if not confirmed:
            return
        try:
            self.workspace.delete(name)
        except HajError as exc:
            self.notify(exc.message, title="Delete", severity="error")
            return
        self.reload()
        self.notify(f"Deleted {name}", title="Delete")

    def palette_commands(self) -> list[Command]:
        name = self.selected_name()
        commands: list[Command] = [("Projects: filter", self.action_filter, "Type to filter")]
        if name:  # opening it: the app's "Open project <name>", listed for every project
            commands += [
                (f"Project: rename {name}…", self.action_rename, "Rename the selected project"),
                (f"Project: delete {name}…", self.action_delete, "Delete the selected project"),
            ]
        return commands
