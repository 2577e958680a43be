"""`haj monitor` (drift and quality of current inputs against the training data) and
`haj feedback` (real outcomes joined to logged predictions)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand

HISTORY_METRICS = ("drift_share", "missing_share", "rows", "quality_issues", "dataset_drift")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "monitor",
        parents=[common],
        help="data drift and quality of current inputs against the training data",
        description="Compare current inputs with the champion's training data, feature by "
        "feature: Kolmogorov-Smirnov / chi-squared (p < 0.05) up to 1,000 reference rows, "
        "Wasserstein / Jensen-Shannon distance (>= 0.1) above. Current inputs are the running "
        "server's traffic (live), the prediction log (log), a data version or a file; by "
        "default live when a server runs, else the log, else the current data. Every report "
        "is stored: --history shows the trend.",
    )
    p.add_argument("name")
    p.add_argument("--current", metavar="SOURCE", help="live, log, a data version id or a file")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--since", metavar="T", help="live or log: the last T (30m, 24h, 7d)")
    window.add_argument("--last", type=int, metavar="N", help="live or log: the last N rows")
    p.add_argument(
        "--method",
        choices=("auto", "ks", "chi2", "wasserstein", "jensenshannon", "psi"),
        help="the drift test (default: [monitoring] method, auto)",
    )
    p.add_argument("--fail-on-drift", action="store_true", help="exit 3 when the dataset drifted")
    p.add_argument("--html", metavar="PATH", help="also write the report as an HTML page")
    p.add_argument("--history", action="store_true", help="the stored reports' trend")
    p.add_argument(
        "--metric",
        choices=HISTORY_METRICS,
        default="drift_share",
        help="with --history: the figure to chart (default drift_share)",
    )
    p.add_argument("--limit", type=int, default=30, metavar="N", help="with --history: last N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdMonitor)

    p = subparsers.add_parser(
        "feedback",
        parents=[common],
        help="join real outcomes to logged predictions: live performance and target drift",
        description="Read a CSV / JSON file of outcomes (an id column and a label column), "
        "match each id with the request id the server answered and logged, and score every "
        "served run on its matched predictions (stored with `haj score`'s evaluations). The "
        "labels' drift against the training target is shown too.",
    )
    p.add_argument("name")
    p.add_argument("file", help="the outcomes: CSV, JSON or JSON lines")
    p.add_argument("--id-col", required=True, metavar="COL", help="the request id column")
    p.add_argument("--label-col", required=True, metavar="COL", help="the outcome column")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdFeedback)


class CmdMonitor(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output
        from engine.errors import Degraded, UsageError

        args = self.args
        if args.history:
            if args.current or args.since or args.last or args.fail_on_drift or args.html:
                raise UsageError("--history shows stored reports: it takes --metric and --limit")
            if args.limit < 1:
                raise UsageError("--limit must be 1 or more")
            reports = self.project.monitor_history(args.limit)
            if self.json:
                output.write_json(reports)
            else:
                show_history(self.console, reports, args.metric)
            return 0
        result = self.project.monitor(
            args.current, since=args.since, last=args.last, method=args.method
        )
        body = result.to_dict()
        if self.json:
            output.write_json(body)
        else:
            show_report(self.console, body)
        if args.html:
            write_html(body, args.html)
            if not self.json:
                self.console.print(f"report written to {args.html}", highlight=False)
        drifted = result.report.dataset_drift
        return Degraded.exit_code if args.fail_on_drift and drifted else 0


def show_report(console: Any, body: dict[str, Any]) -> None:
    """The verdict, the features (drifted first), the predictions and target, quality."""
    from rich.table import Table

    from engine.cli import output

    head = (
        f"{body['source']} ({body['window']}, {body['rows']:,} rows) against run "
        f"{body['run_id']} ({body['model']}, {body['reference_rows']:,} training rows)"
    )
    console.print(head, highlight=False, markup=False)
    style = "yellow" if body["too_small"] else "bold red" if body["dataset_drift"] else "green"
    console.print(body["verdict"], style=style, highlight=False, markup=False)
    table = Table()
    for title, justify in (
        ("feature", "left"),
        ("drift", "left"),
        ("test", "left"),
        ("statistic", "right"),
        ("threshold", "right"),
        ("missing", "right"),
        ("at training", "right"),
    ):
        table.add_column(title, justify=justify)  # type: ignore[arg-type]
    columns = list(body["features"])
    for extra in ("prediction", "target"):
        if body.get(extra):
            columns.append({**body[extra], "name": f"({extra})"})
    for column in columns:
        value = column["p_value"] if column["p_value"] is not None else column["statistic"]
        label = "p" if column["p_value"] is not None else ""
        mark = (
            "[bold red]drift[/]"
            if column["drifted"]
            else "[dim]-[/]"
            if column["statistic"] is None
            else "[green]ok[/]"
        )
        table.add_row(
            column["name"],
            mark,
            column["test"],
            f"{label} {output.fmt(value)}".strip() if value is not None else "",
            f"{'p < ' if label else '>= '}{column['threshold']:g}",
            f"{column['missing_share']:.1%}",
            f"{column['reference_missing_share']:.1%}",
        )
    console.print(table)
    quality = body["quality"]
    lines = []
    for key, text in (
        ("unseen", "unseen categories"),
        ("out_of_range", "outside the training range"),
        ("refused", "refused by the server"),
    ):
        if quality.get(key):
            found = ", ".join(f"{name} {count:,}" for name, count in quality[key].items())
            lines.append(f"{text}: {found}")
    if quality.get("constant"):
        lines.append("constant now: " + ", ".join(quality["constant"]))
    if quality.get("duplicates"):
        lines.append(f"duplicate rows: {quality['duplicates']:,}")
    if lines:
        console.print("quality:", style="bold", highlight=False)
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False)
    else:
        console.print("quality: no issue found", highlight=False)


def show_history(console: Any, reports: list[dict[str, Any]], metric: str) -> None:
    from rich.table import Table

    from engine.numbers import sparkline

    if not reports:
        console.print("no stored report yet: run `haj monitor NAME`", highlight=False)
        return
    values = [float(r[metric]) if not r["too_small"] else None for r in reports]
    console.print(f"{metric}: {sparkline(values)}", highlight=False, markup=False)
    table = Table()
    for title in ("when", "source", "window", "rows", "drift share", "missing", "drift"):
        table.add_column(title, justify="right" if title in ("rows", "drift share") else "left")
    for r in reports:
        table.add_row(
            _local(r["created_at"]),
            r["source"],
            r["window"],
            f"{r['rows']:,}",
            "too small" if r["too_small"] else f"{r['drift_share']:.0%}",
            f"{r['missing_share']:.1%}",
            "[bold red]yes[/]" if r["dataset_drift"] else "no",
        )
    console.print(table)


def _local(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def write_html(body: dict[str, Any], path: str) -> None:
    """The same report as the terminal shows, recorded by rich as a standalone HTML page."""
    import io
    from pathlib import Path

    from rich.console import Console

    from engine.errors import UsageError
    from engine.fsutil import atomic_write_text

    console = Console(record=True, width=120, file=io.StringIO())
    show_report(console, body)
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise UsageError(f"no such folder: {target.parent}")
    atomic_write_text(target, console.export_html(inline_styles=True))


class CmdFeedback(ProjectCommand):
    def result(self) -> Any:
        args = self.args
        return self.project.feedback(
            args.file, id_col=args.id_col, label_col=args.label_col
        ).to_dict()

    def show(self, result: Any) -> int | None:
        from rich.table import Table

        from engine.cli import output

        console = self.console
        console.print(
            f"{result['matched']:,} of {result['labels']:,} outcomes matched a logged prediction",
            highlight=False,
        )
        if result["unmatched_examples"] and result["matched"] < result["labels"]:
            console.print(
                "not found, e.g.: " + ", ".join(result["unmatched_examples"]),
                style="dim",
                highlight=False,
                markup=False,
            )
        for run in result["runs"]:
            table = Table(title=f"run {run['run_id']}: {run['rows']:,} outcomes")
            table.add_column("metric")
            table.add_column("live", justify="right")
            table.add_column("at training", justify="right")
            for name, value in run["metrics"].items():
                table.add_row(name, output.fmt(value), output.fmt(run["recorded"].get(name)))
            console.print(table)
        drift = result.get("target_drift")
        if drift:
            if drift["statistic"] is None:
                text = f"target drift: too few outcomes to test ({drift['rows']})"
            else:
                value = drift["p_value"] if drift["p_value"] is not None else drift["statistic"]
                text = (
                    f"target drift: {'yes' if drift['drifted'] else 'no'} "
                    f"({drift['test']} {output.fmt(value)})"
                )
            console.print(text, highlight=False, markup=False)
        return 0
