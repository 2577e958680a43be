"""`haj score` (runs scored on labelled data) and `haj check` (has the champion degraded?)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "score",
        parents=[common],
        help="score runs on labelled data (a data version or a file)",
        description="Score the champion (or --run / --top N) on labelled data: a data version "
        "(default: the current raw version) or a CSV / JSON file, raw (through each run's own "
        "fitted processing) or processed. Prints the metrics with a confusion matrix "
        "(classification) or a residual summary (regression); every result is recorded "
        "(`haj runs NAME --show RUN`).",
    )
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="a data version id or a file (default: current raw)")
    p.add_argument("--data", dest="data_option", metavar="V", help="a data version id or file")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--run", nargs="+", default=[], metavar="RUN", help="runs (id or MODEL-#)")
    who.add_argument("--champion", action="store_true", help="the champion (the default)")
    who.add_argument("--top", type=int, metavar="N", help="the N best runs on the current data")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdScore)

    p = subparsers.add_parser(
        "check",
        parents=[common],
        help="has the champion degraded on new labelled data? (exit 3 if so)",
        description="Score the champion on labelled data (default: the current raw version) and "
        "compare with the score recorded at training. Exit 0 when it holds, 3 when it is worse "
        "by more than the tolerance (relative; default [monitoring] tolerance, 0.05 = 5 %%).",
    )
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="a data version id or a file (default: current raw)")
    p.add_argument("--data", dest="data_option", metavar="V", help="a data version id or file")
    p.add_argument("--metric", help="the metric to compare (default: the project's)")
    p.add_argument("--tolerance", type=float, help="how much worse still holds (0.05 = 5 %%)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdCheck)


def _data(args: argparse.Namespace) -> str | None:
    from engine.errors import UsageError

    if args.data and args.data_option and args.data != args.data_option:
        raise UsageError("give the data once: as an argument or with --data")
    return args.data or args.data_option


class CmdScore(ProjectCommand):
    def result(self) -> Any:
        args = self.args
        scored = self.project.score(
            _data(args), runs=args.run, champion=args.champion, top=args.top
        )
        return [s.to_dict() for s in scored]

    def show(self, result: Any) -> int | None:
        for scored in result:
            show_evaluation(self.console, scored)
        return 0


def show_evaluation(console: Any, scored: dict[str, Any]) -> None:
    """One evaluation: the metrics beside the recorded ones, and its details."""
    from rich.table import Table

    from engine.cli import output

    title = f"{scored.get('label', scored['run_id'])} on {scored['data']} ({scored['rows']:,} rows)"
    console.print(title, style="bold", highlight=False, markup=False)
    table = Table()
    table.add_column("metric")
    table.add_column("now", justify="right")
    recorded = scored.get("recorded") or {}
    if recorded:
        table.add_column("at training", justify="right")
    for name, value in scored["metrics"].items():
        row = [name, output.fmt(value)]
        if recorded:
            row.append(output.fmt(recorded.get(name)))
        table.add_row(*row)
    console.print(table)
    details = scored.get("details") or {}
    if "confusion" in details:
        show_confusion(console, details["confusion"])
    if "residuals" in details:
        r = details["residuals"]
        console.print(
            "residuals (truth - prediction): "
            + ", ".join(f"{k} {output.fmt(v)}" for k, v in r.items()),
            highlight=False,
        )


def show_confusion(console: Any, confusion: dict[str, Any]) -> None:
    """The confusion matrix: rows are the true labels, columns the predicted ones; the
    diagonal green, errors shaded by their share of the row."""
    from rich.table import Table

    labels = [str(label) for label in confusion["labels"]]
    console.print("confusion matrix (rows: truth, columns: predicted)", highlight=False)
    table = Table()
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    for i, row in enumerate(confusion["matrix"]):
        total = sum(row) or 1
        cells = []
        for j, count in enumerate(row):
            if i == j:
                cells.append(f"[bold green]{count}[/]")
            elif count:
                share = count / total
                style = "bold red" if share >= 0.2 else "red" if share >= 0.05 else "yellow"
                cells.append(f"[{style}]{count}[/]")
            else:
                cells.append("[dim]0[/]")
        table.add_row(labels[i], *cells)
    console.print(table)


class CmdCheck(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output
        from engine.errors import Degraded

        args = self.args
        result = self.project.check(_data(args), metric=args.metric, tolerance=args.tolerance)
        if self.json:
            output.write_json(result.to_dict())
        else:
            style = "green" if result.holds else "bold red"
            self.console.print(result.verdict, style=style, highlight=False, markup=False)
        return 0 if result.holds else Degraded.exit_code
