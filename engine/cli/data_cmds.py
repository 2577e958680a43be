"""`haj retrieve | process | data`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand
from engine.units import human_size


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "retrieve",
        parents=[common],
        help="run retriever.py and version the data",
        description="Run the project's retriever.py and store "
        "the result as a new raw version when its content is new.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdRetrieve)

    p = subparsers.add_parser(
        "process",
        parents=[common],
        help="run processor.py on a raw version",
        description="Run processor.py on a raw version (default: the current one, which the "
        "source returned most recently) and store the processed dataset as a version.",
    )
    p.add_argument("name")
    p.add_argument(
        "--version", metavar="V", help="the raw version id (see `haj data NAME`; default: current)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdProcess)

    p = subparsers.add_parser(
        "data",
        parents=[common],
        help="list data versions",
        description="List a project's raw and processed data versions; ✓ marks the current "
        "raw version and the processed version `haj train` would use.",
    )
    p.add_argument("name")
    p.add_argument("--show", metavar="V", help="print a version's first rows and column summary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdData)


class CmdRetrieve(ProjectCommand):
    def result(self) -> dict[str, Any]:
        if self.json:
            return self.project.retrieve()
        with TransferPrinter() as printer:
            return self.project.retrieve(printer)

    def show(self, result: dict[str, Any]) -> None:
        """The events said it all."""


class TransferPrinter:
    """Prints retrieve's events: log lines as they come, and byte progress (a download, a copy,
    the check of a file) as a live bar with bytes and rate on a terminal, else as plain lines
    every PLAIN_EVERY seconds. A download or copy of at least SUMMARY_BYTES ends with one line
    saying how much it moved and how fast, so a log shows it too (checking a file haj already
    has in place shows only its bar). Use it as a context manager."""

    PLAIN_EVERY = 5.0
    SUMMARY_BYTES = 1 << 20

    def __init__(self) -> None:
        from engine.cli import output

        self.console = output.console()
        self.live: Any = None
        self.task: Any = None
        self.last: Any = None  # the phase's latest Progress event
        self.printed = 0.0

    def __enter__(self) -> TransferPrinter:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._end_phase()
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __call__(self, event: Any) -> None:
        import time

        from engine import events
        from engine.units import transfer_text

        if isinstance(event, events.Log):
            self._end_phase()  # haj says something once a transfer is over
            style = {"error": "red", "warning": "yellow"}.get(event.level, "")
            self.console.print(event.message, style=style, markup=False, soft_wrap=True)
        elif isinstance(event, events.Output) and event.line.strip():
            self.console.print(event.line, style="dim", markup=False, soft_wrap=True)
        elif isinstance(event, events.Progress) and event.unit == "bytes":
            if self.last is not None and self.last.label != event.label:
                self._end_phase()
            if self.last is None:
                self.printed = time.monotonic()
            self.last = event
            total = event.total or None
            if self.live is not None:
                if self.task is None:
                    self.task = self.live.add_task(event.label, total=total)
                self.live.update(self.task, total=total, completed=event.done)
            elif time.monotonic() - self.printed >= self.PLAIN_EVERY:
                self.printed = time.monotonic()
                line = transfer_text(event.label, event.done, event.total, event.rate)
                self.console.print(f"  {line}", markup=False, soft_wrap=True)

    def _end_phase(self) -> None:
        from engine.units import transfer_text

        event, self.last = self.last, None
        if self.task is not None:
            self.live.remove_task(self.task)
            self.task = None
        if event is not None and event.done >= self.SUMMARY_BYTES and event.label != "checking":
            line = transfer_text(event.label, event.done, event.total, event.rate)
            self.console.print(f"  {line}", markup=False, soft_wrap=True)


class CmdProcess(ProjectCommand):
    def result(self) -> dict[str, Any]:
        return self.project.process(self.args.version, self.on_event())

    def show(self, result: dict[str, Any]) -> None:
        """The events said it all."""


class CmdData(ProjectCommand):
    """The data versions, or with --show one version's first rows and column summary."""

    def result(self) -> Any:
        if not self.args.show:
            return self.project.versions()
        info = self.project.preview(self.args.show)
        if self.json:
            return {
                "version": info["version"],
                "summary": info["summary"],
                "head": info["head"].to_dict(orient="records"),
                "record": info.get("record"),
            }
        return info

    def show(self, result: Any) -> None:
        if self.args.show:
            _show_version(self.args.show, result)
        else:
            self._show_versions(result)

    def _show_versions(self, versions: list[dict[str, Any]]) -> None:
        from engine.cli import output

        name = self.project.name
        if not versions:
            self.console.print(f"No data yet: run `haj retrieve {name}`.")
            return
        output.table(
            f"Data versions of {name}",
            [
                "Current",
                "Id",
                "Kind",
                "Format",
                "Rows",
                "Columns",
                "Size",
                "Parent",
                "Source",
                "Created",
                "Retrieved",
                "Took",
                "File",
            ],
            [
                [
                    "✓" if v["current"] else "",
                    v["id"],
                    v["kind"],
                    v["format"],
                    v["rows"],
                    v["columns"],
                    human_size(v["bytes"]),
                    v["parent"] or "-",
                    v["source"],
                    _time(v["created_at"]),
                    _time(v["last_retrieved_at"]),
                    f"{v['seconds']:.1f}s" if v.get("seconds") is not None else "-",
                    v["path"],
                ]
                for v in versions
            ],
        )
        current = {v["kind"]: v["id"] for v in versions if v["current"]}
        raw, processed = current.get("raw"), current.get("processed")
        self.console.print(
            f"Current: {raw} (retrieved most recently). `haj train {name}` uses "
            + (
                f"{processed}."
                if processed
                else f"{raw} processed with the current processor.py and target (not made yet)."
            )
        )


def _time(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else "-"


def _show_version(version_id: str, info: dict[str, Any]) -> None:
    from engine.cli import output
    from engine.numbers import column_format, summary_texts

    head = info["head"]
    writers = [column_format(head[c].tolist()) for c in head.columns]  # one precision a column
    output.table(
        f"{version_id}: first {len(head)} rows",
        [str(c) for c in head.columns],
        [
            [write(v) for write, v in zip(writers, row, strict=True)]
            for row in head.itertuples(index=False)
        ],
    )
    output.table(
        "Columns",
        ["Column", "Type", "Missing %", "Unique", "Min", "Mean", "Max", "Top"],
        [
            [
                s["column"],
                s["type"],
                f"{s['missing_pct']:g}",
                s["unique"],
                *(texts.get(key, "") for key in ("min", "mean", "max")),
                ", ".join(s.get("top", [])),
            ]
            for s, texts in ((s, summary_texts(s)) for s in info["summary"])
        ],
    )
    files = ((info.get("record") or {}).get("ingest") or {}).get("files")
    if files:
        output.table(
            f"Files of {version_id}",
            ["File", "Rows", "Size", "sha256", "Used"],
            [
                [
                    f["file"],
                    f["rows"] if f["rows"] is not None else "-",
                    human_size(f["bytes"]),
                    f["sha256"][:12],
                    "yes" if f["used"] else f"no: {f['reason']}",
                ]
                for f in files
            ],
        )
