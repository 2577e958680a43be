"""The Data tab: retrieve and process with a live log, the versions, and a preview of one.

Retrieve and process run the project's own code in a runner process, so they go to a thread
worker; its engine events come back as EngineEvent messages into the log. Reading a version for
the preview (pandas) also runs in a worker, so a big file never freezes the keyboard.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar
from textual.widgets.data_table import RowDoesNotExist

from engine import events
from engine.api import MISSING, column_format, summary_texts
from engine.errors import Cancelled, HajError
from engine.units import human_size, transfer_text
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.formats import (
    FittingTable,
    cell_width,
    columns_that_fit,
    hidden_columns,
    short_time,
)
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI

VERSION_COLUMNS = ("", "id", "format", "rows", "columns", "size", "source", "time")
CURRENT = "✓"  # the raw version process and train use, and its processed version
# the numbers before the text (a column's most frequent values), so they stay in view
SUMMARY_COLUMNS = ("column", "type", "miss", "min", "mean", "max", "top")


@dataclass(frozen=True)
class Preview:
    """The first rows and column summary of one version (engine.api's preview)."""

    version_id: str
    result: dict[str, Any]


@dataclass(frozen=True)
class DataDone:
    """Retrieve or process ended: the engine's result (`version`, `created`)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class DataCancelled:
    """Retrieve or process was stopped by the user (x)."""

    message: str


class DataFailed(WorkFailed):
    """Retrieve or process failed."""


class PreviewFailed(WorkFailed):
    """A version could not be read for the preview (the app has said why)."""


def _cell(text: str) -> Text:
    """A value's cell: missing in dim italics, numbers right-aligned."""
    if text == MISSING:
        return Text(text, style="dim italic", justify="right")
    try:
        float(text)
    except ValueError:
        return Text(text)
    return Text(text, justify="right")


class DataTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Versions of the project's data, how they were made, and what is in them."""

    BINDINGS = [
        Binding("x", "cancel", "Cancel"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self._cancel: threading.Event | None = None
        self._shown: str | None = None
        self._preview: tuple[str, dict[str, Any]] | None = None  # the summary shown
        self._ready = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Retrieve (r)", id="data-retrieve", compact=True, variant="primary")
            yield Button("Process (p)", id="data-process", compact=True)
            yield ProgressBar(id="data-progress", show_eta=False)  # bytes of a download or copy
            yield Label("", id="data-state", classes="tab-state")
        versions = FittingTable(
            id="data-versions", cursor_type="row", zebra_stripes=True, refit=self.refresh_data
        )
        versions.border_title = "Versions"
        yield versions
        with Horizontal(id="data-detail"):
            head = FittingTable(id="data-head", zebra_stripes=True, refit=self._fill_head)
            head.border_title = "First rows"
            yield head
            summary = FittingTable(id="data-summary", zebra_stripes=True, refit=self._fill_summary)
            summary.border_title = "Columns"
            yield summary
        files = DataTable(id="data-files", zebra_stripes=True, cursor_type="none")
        files.border_title = "Files"  # a version made from a folder: what went in
        files.styles.height = "auto"
        files.styles.max_height = 7
        yield files
        log = LogView(id="data-log")
        log.min_width = 20  # wrap at the panel width (RichLog defaults to 78 columns)
        log.border_title = "Log"
        yield log

    def on_mount(self) -> None:
        self.query_one("#data-progress", ProgressBar).display = False
        self.query_one("#data-files", DataTable).display = False
        self._ready = True
        self.refresh_data()

    # ---- reading -----------------------------------------------------------------------------
    def refresh_data(self) -> None:
        """Reload the versions table (a quick SQLite read), keeping the selected version."""
        if not self._ready:  # shown before its widgets are mounted: on_mount will read
            return
        table = self.query_one("#data-versions", DataTable)
        selected = self._selected_version()
        try:
            rows = self.project.versions()
        except HajError as exc:  # a broken config.toml: say so, keep the app
            self._set_state(exc.message)
            return
        table.clear(columns=True)
        cells = [self._version_row(version) for version in reversed(rows)]  # newest first
        widths = [
            max([len(title), *(cell_width(row[i]) for row in cells)])
            for i, title in enumerate(VERSION_COLUMNS)
        ]
        # mark, id, rows, columns, size, time first; format and source while they fit
        shown = columns_that_fit(
            widths, table.size.width - 3, priority=[0, 1, 3, 4, 5, 7, 2, 6], required=2
        )
        for i in shown:
            table.add_column(VERSION_COLUMNS[i], width=widths[i])
        for version, row in zip(reversed(rows), cells, strict=True):
            table.add_row(*(row[i] for i in shown), key=version["id"])
        if not rows:
            self._set_state("No data yet: press r to retrieve it.")
            self._show_preview(None)
            return
        ids = [v["id"] for v in reversed(rows)]
        table.move_cursor(row=ids.index(selected) if selected in ids else 0)
        if not self._busy():
            self._set_state(f"{len(rows)} version(s); {CURRENT} = what process and train use")
        self._show_preview(ids[table.cursor_row])

    @staticmethod
    def _version_row(version: dict[str, Any]) -> tuple[Any, ...]:
        return (
            Text(CURRENT, style="bold green") if version.get("current") else "",
            version["id"],
            version["format"],
            "" if version["rows"] is None else str(version["rows"]),
            "" if version["columns"] is None else str(version["columns"]),
            human_size(version["bytes"]),
            version["source"],
            short_time(version["created_at"]),
        )

    def _selected_version(self) -> str | None:
        table = self.query_one("#data-versions", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    @on(DataTable.RowHighlighted, "#data-versions")
    def _version_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_preview(event.row_key.value)

    def _show_preview(self, version_id: str | None) -> None:
        if version_id == self._shown:
            return
        self._shown = version_id
        if version_id is None:
            self._preview = None
            head = self.query_one("#data-head", DataTable)
            head.clear(columns=True)
            head.border_subtitle = ""
            self.query_one("#data-summary", DataTable).clear()
            return
        self._load_preview(version_id)

    @haj_work(group="data-preview", failed=PreviewFailed)
    def _load_preview(self, version_id: str) -> Preview:
        return Preview(version_id, self.project.preview(version_id, rows=20))

    def _fill_preview(self, version_id: str, result: dict[str, Any]) -> None:
        if version_id != self._shown:
            return  # the user moved on while it loaded
        self._preview = (version_id, result)
        self._fill_head()
        self._fill_summary()
        summary = self.query_one("#data-summary", DataTable)
        summary.border_title = f"Columns of {version_id}"
        self._fill_files(version_id, result.get("record") or {})

    def _fill_files(self, version_id: str, record: dict[str, Any]) -> None:
        """The files a folder version was made of (engine.folder's record), else hidden."""
        table = self.query_one("#data-files", DataTable)
        files = (record.get("ingest") or {}).get("files") or []
        table.clear(columns=True)
        table.display = bool(files)
        if not files:
            return
        table.add_columns("File", "Rows", "Size", "sha256", "Used")
        for entry in files:
            table.add_row(
                Path(entry["file"]).name,
                _cell(str(entry["rows"]) if entry["rows"] is not None else MISSING),
                _cell(human_size(entry["bytes"])),
                entry["sha256"][:12],
                "yes" if entry["used"] else f"no: {entry['reason']}",
            )
        dropped = (record.get("ingest") or {}).get("duplicates_dropped")
        extra = f", {dropped} duplicate rows dropped" if dropped else ""
        table.border_title = f"Files of {version_id}{extra}"

    def _fill_head(self) -> None:
        """The first rows with the columns that fit whole, in the data's order: a number (or
        the last column in view) is never cut at the panel's edge; the border says how many
        columns are left out (the Columns panel beside it lists them all)."""
        if self._preview is None:
            return
        version_id, result = self._preview
        frame = result["head"]
        titles = [str(c) for c in frame.columns]
        # one precision a column (the engine's rule), numbers right-aligned, missing said
        writers = [column_format(frame[c].tolist()) for c in frame.columns]
        rows = [
            [_cell(write(v)) for write, v in zip(writers, row, strict=True)]
            for row in frame.itertuples(index=False)
        ]
        head = self.query_one("#data-head", DataTable)
        widths = [
            max([cell_width(title), *(cell_width(row[i]) for row in rows)])
            for i, title in enumerate(titles)
        ]
        # its border, and its vertical scrollbar (20 rows seldom fit): what the columns have
        room = head.size.width - head.styles.gutter.width - head.styles.scrollbar_size_vertical
        shown = columns_that_fit(widths, room)
        head.clear(columns=True)
        for i in shown:
            head.add_column(titles[i], width=widths[i])
        for row in rows:
            head.add_row(*(row[i] for i in shown))
        head.border_title = f"First rows of {version_id}"
        hidden = len(titles) - len(shown)
        head.border_subtitle = hidden_columns(hidden)  # (the Columns panel lists them all)

    def _fill_summary(self) -> None:
        """The column summary with the columns that fit whole: the name, min, mean and max
        first, then missing, type and top values (a number is never cut at the edge)."""
        if self._preview is None:
            return
        _, result = self._preview
        rows = []
        for entry in result["summary"]:
            texts = summary_texts(entry)
            rows.append(
                [
                    entry["column"],
                    entry["type"],
                    Text(f"{entry['missing_pct']:g}%", justify="right"),
                    *(_cell(texts[k]) if texts else "" for k in ("min", "mean", "max")),
                    ", ".join(str(v) for v in entry.get("top", [])),
                ]
            )
        summary = self.query_one("#data-summary", DataTable)
        widths = [
            max([len(title), *(cell_width(row[i]) for row in rows)])
            for i, title in enumerate(SUMMARY_COLUMNS)
        ]
        # display order: column type miss min mean max top; priority: column min mean max ...
        shown = columns_that_fit(
            widths, summary.size.width - 3, priority=[0, 3, 4, 5, 2, 1, 6], required=4
        )
        summary.clear(columns=True)
        for i in shown:
            summary.add_column(SUMMARY_COLUMNS[i], width=widths[i])
        for row in rows:
            summary.add_row(*(row[i] for i in shown))

    # ---- long work ---------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._cancel is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self._busy()
        if action in ("retrieve", "process"):
            return not self._busy()
        return True

    def action_retrieve(self) -> None:
        self._start("retrieve")

    def action_process(self) -> None:
        self._start("process")

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._set_state("Cancelling…")

    @on(Button.Pressed, "#data-retrieve")
    def _retrieve_pressed(self) -> None:
        self.action_retrieve()

    @on(Button.Pressed, "#data-process")
    def _process_pressed(self) -> None:
        self.action_process()

    def _start(self, what: str) -> None:
        if self._busy():
            self.app.notify("Data work is already running.", severity="warning")
            return
        self._cancel = threading.Event()
        for button in self.query(Button):
            button.disabled = True
        self.refresh_bindings()
        verb = "Retrieving" if what == "retrieve" else "Processing"
        self._set_state(f"{verb}… (x to cancel)")
        self.query_one("#data-log", LogView).write_line(f"— {what} {self.project.name}", "bold")
        self._run(what, self._cancel)
        self.query_one("#data-versions", DataTable).focus()  # so x (cancel) works from here

    @haj_work(group="data", failed=DataFailed)
    def _run(self, what: str, cancel: threading.Event) -> DataDone | DataCancelled:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="data"))

        try:
            if what == "retrieve":
                return DataDone(self.project.retrieve(on_event=relay, cancel=cancel))
            return DataDone(self.project.process(on_event=relay, cancel=cancel))
        except Cancelled as exc:  # the user asked for it: not an error to report
            return DataCancelled(str(exc))

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "data":
            return
        message.stop()
        event = message.event
        if isinstance(event, events.Progress) and event.unit == "bytes":
            self._show_transfer(event)
            return
        self.query_one("#data-log", LogView).write_event(event)
        if isinstance(message.event, events.DataVersionAdded):
            self._shown = None
            self.refresh_data()
            self._select_version(message.event.version["id"])

    def _select_version(self, version_id: str) -> None:
        table = self.query_one("#data-versions", DataTable)
        try:
            table.move_cursor(row=table.get_row_index(version_id))
        except RowDoesNotExist:  # the row vanished (another process rewrote the store)
            return

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Preview(version_id=version_id, result=result):
                message.stop()
                self._fill_preview(version_id, result)
            case DataCancelled(message=said):
                message.stop()
                self._idle()
                self.query_one("#data-log", LogView).write_line(said, "magenta")
                self._set_state("Cancelled.")
            case DataDone(result=result):
                message.stop()
                self._idle()
                version = result.get("version") or {}
                if result.get("created"):
                    self._set_state(f"New version {version.get('id')}.")
                elif version:
                    self._set_state(f"Unchanged: same content as {version.get('id')}.")

    @on(PreviewFailed)
    def _preview_failed(self, message: PreviewFailed) -> None:
        message.stop()  # reported by the app; the preview stays as it was

    @on(DataFailed)
    def _work_failed(self, message: DataFailed) -> None:
        message.stop()
        self._idle()
        self.query_one("#data-log", LogView).write_line(str(message.error), "bold red")
        self._set_state(str(message.error).splitlines()[0][:90], error=True)

    def _show_transfer(self, event: events.Progress) -> None:
        """A download's (or a copy's) bytes and rate: the bar, and the state line in words."""
        bar = self.query_one("#data-progress", ProgressBar)
        bar.display = True
        bar.update(total=event.total or None, progress=event.done)
        text = transfer_text(event.label, event.done, event.total, event.rate)
        self._set_state(f"{text[:1].upper()}{text[1:]} (x to cancel)")

    def _idle(self) -> None:
        self._cancel = None
        self.query_one("#data-progress", ProgressBar).display = False
        for button in self.query(Button):
            button.disabled = False
        self.refresh_bindings()
        self.refresh_data()

    def _set_state(self, text: str, error: bool = False) -> None:
        label = self.query_one("#data-state", Label)
        label.update(Text(text))
        label.set_class(error, "error")
