"""`haj report`: the project in one document (engine.report): PDF, Markdown or HTML."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "report",
        parents=[common],
        help="a PDF (or Markdown, HTML) report: champion, confusion matrix, leaderboard, data, "
        "drift, trends, diagnostics, the live server",
        description="Write a report of the project: the champion and its metrics, its confusion "
        "matrix (classification) or residuals (regression), the top of the leaderboard, the data "
        "versions and the files they were made of, the latest drift and quality report, trends "
        "over --since (drift, missing values, crownings, evaluations and live performance), "
        "diagnostics, and a running server's /health, /predictions_count and /latency. Without "
        "-o: the project's reports/report-<UTC time>.pdf, keeping the last [pipeline] "
        "keep_reports there. A read: nothing else in the project changes.",
    )
    p.add_argument("name")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="FILE.pdf, FILE.md (figures as PNG files beside it) or FILE.html (one page)",
    )
    p.add_argument(
        "--since", default="30d", metavar="T", help="the trends' window: 24h, 7d, 30d (30d)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the report's data as JSON (the file is written only with -o)",
    )
    p.set_defaults(func=CmdReport)


class CmdReport(ProjectCommand):
    def run(self) -> int:
        import sys

        from engine.cli import output

        args = self.args
        write = not self.json or args.output is not None
        if self.json or not sys.stdout.isatty():
            written = self.project.report(args.output, since=args.since, write=write)
        else:
            with self.console.status("writing the report (scoring the champion, diagnosing)…"):
                written = self.project.report(args.output, since=args.since, write=write)
        if self.json:
            output.write_json(written.to_dict())
            return 0
        report = written.report
        pages = f", {written.pages} pages" if written.pages else ""
        self.console.print(
            f"wrote {_shown(written.path)} ({written.format}{pages})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for path in written.files:
            self.console.print(f"  figure {_shown(path)}", markup=False, highlight=False)
        if written.removed:
            self.console.print(
                f"  removed {len(written.removed)} older report"
                f"{'s' if len(written.removed) > 1 else ''} from reports/ (keeping the last "
                f"{self.project.config()['pipeline'].get('keep_reports', 10)})",
                markup=False,
                highlight=False,
            )
        for section, why in report.notes.items():
            self.console.print(
                f"  {section}: {why}", style="dim", markup=False, highlight=False, soft_wrap=True
            )
        return 0


def _shown(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
