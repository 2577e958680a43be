"""`haj predict NAME INPUT`: score a file, a data version or a stream of JSON lines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "predict",
        parents=[common],
        help="score a file, a data version or a stream with the champion",
        description="Score rows in the data's own shape with the champion (or --run), checked "
        "and processed as the server does: INPUT is a CSV, JSON or JSON-lines file, a data "
        "version id, or - for JSON lines on stdin (one output line per input line, flushed as "
        "it goes). Output: the --keep columns, prediction and, for classifiers, proba_<class>; "
        "CSV, or JSON lines when OUT ends in .jsonl/.json. Without -o, rows go to stdout.",
    )
    p.add_argument("name")
    p.add_argument("input", help="a file, a data version id, or - for JSON lines on stdin")
    p.add_argument("-o", "--output", help="the file to write (atomically); default: stdout")
    p.add_argument("--run", help="score with this run (id or MODEL-#) instead of the champion")
    p.add_argument(
        "--keep", nargs="+", default=[], metavar="COL", help="input columns copied to the output"
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="write refused rows to a .rejects.jsonl file (line and reason) instead of stopping",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON (needs -o)")
    p.set_defaults(func=CmdPredict)


class CmdPredict(ProjectCommand):
    def run(self) -> int:
        import sys

        from engine.errors import UsageError

        args = self.args
        if args.json and not args.output and args.input != "-":
            raise UsageError("--json prints a summary: give -o OUT for the scored rows")
        if args.input == "-":
            result = self.project.predict_stream(
                sys.stdin, _write_line, run=args.run, keep=args.keep, skip_bad=args.skip_bad
            )
        else:
            output = Path(args.output).expanduser() if args.output else None
            with _RowsProgress(enabled=output is not None and not args.json) as progress:
                result = self.project.predict(
                    args.input,
                    output,
                    run=args.run,
                    keep=args.keep,
                    skip_bad=args.skip_bad,
                    on_event=progress.on_event,
                )
        if args.json:
            from engine.cli import output as out

            out.write_json(result.to_dict())
            return 0
        if result.output is None:
            return 0  # the rows were the output; a summary would mix with them
        said = (
            f"Scored {result.rows:,} rows with {result.model} (run {result.run_id}) in "
            f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s) -> {result.output}"
        )
        console = self.console
        console.print(said, highlight=False, markup=False)
        if result.rejected:
            console.print(
                f"{result.rejected:,} rows refused: see {result.rejects}",
                style="yellow",
                highlight=False,
                markup=False,
            )
        for key, count in sorted(result.unknown.items()):
            console.print(
                f"note: {key}: {count:,} rows with a value training never saw",
                style="yellow",
                highlight=False,
                markup=False,
            )
        return 0


def _write_line(text: str) -> None:
    import sys

    sys.stdout.write(text)
    sys.stdout.flush()


class _RowsProgress:
    """Rows and rows/s on a terminal (stderr), nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        import sys

        self.enabled = enabled and sys.stderr.isatty()
        self.live: Any = None
        self.task: Any = None

    def __enter__(self) -> _RowsProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.live = Progress(
                SpinnerColumn(),
                TextColumn("scoring {task.fields[rows]} rows, {task.fields[rate]} rows/s"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.live.__enter__()
            self.task = self.live.add_task("scoring", total=None, rows="0", rate="-")
        return self

    def on_event(self, event: Any) -> None:
        from engine import events

        if self.live is not None and isinstance(event, events.Progress):
            rate = f"{event.rate:,.0f}" if event.rate else "-"
            self.live.update(self.task, rows=f"{event.done:,}", rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
