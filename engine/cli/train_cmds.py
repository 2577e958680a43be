"""`haj train | runs | evaluate | models`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.command import ProjectCommand

if TYPE_CHECKING:
    from engine.api import CrownResult


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "train",
        parents=[common],
        help="train all or selected models",
        description="Train every model of the catalog for the project's "
        "prediction type (plus model.py's), or only those named with -m.",
    )
    p.add_argument("name")
    p.add_argument(
        "-m",
        "--model",
        nargs="+",
        dest="models",
        metavar="MODEL",
        help="train only these models (see `haj models NAME`)",
    )
    p.add_argument(
        "--data",
        metavar="VERSION",
        help="train on this raw version (processed first if needed) or processed version "
        "(default: the current raw version; see `haj data NAME`)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=CmdTrain)

    p = subparsers.add_parser(
        "models",
        parents=[common],
        help="list the models a project can train",
        description="The built-in catalog for the project's type, and the models model.py adds.",
    )
    p.add_argument("name")
    p.set_defaults(func=CmdModels)

    p = subparsers.add_parser(
        "runs",
        parents=[common],
        help="the leaderboard of runs",
        description="Runs sorted by a metric in its direction.",
    )
    p.add_argument("name")
    p.add_argument("--metric", help="sort by this metric (default: the project's metric)")
    p.add_argument("--limit", type=int, metavar="N", help="show at most N runs")
    p.add_argument("--all", action="store_true", help="include failed and cancelled runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdRuns)

    p = subparsers.add_parser(
        "evaluate",
        parents=[common],
        help="crown the champion model",
        description="Crown the best finished run by METRIC (default: acc "
        "for classification, rmse for regression).",
    )
    p.add_argument("name")
    p.add_argument(
        "metric", nargs="?", help="acc, precision, recall, f1, roc_auc | rmse, mae, mse, r2"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdEvaluate)


class CmdTrain(ProjectCommand):
    def result(self) -> dict[str, Any]:
        if self.json:
            return self.project.train(self.args.models, data=self.args.data)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from engine import events

        console = self.console
        with Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("training", total=None)

            def on_event(event: events.Event) -> None:
                if isinstance(event, events.Progress):
                    progress.update(task, total=event.total, completed=event.done)
                elif isinstance(event, events.Log):
                    style = {"error": "red", "warning": "yellow"}.get(event.level, "")
                    console.print(event.message, style=style, markup=False, soft_wrap=True)

            return self.project.train(self.args.models, data=self.args.data, on_event=on_event)

    def show(self, result: dict[str, Any]) -> int:
        name = self.project.name
        finished = [r for r in result["runs"] if r["status"] == "finished"]
        failed = [r for r in result["runs"] if r["status"] != "finished"]
        self.console.print(
            f"[green]{len(finished)} finished[/]"
            + (f", [red]{len(failed)} failed[/]" if failed else "")
            + f" on {result['data_version']}. Next: `haj runs {name}`, `haj evaluate {name}`"
        )
        return 0 if finished else 1


class CmdModels(ProjectCommand):
    def run(self) -> int:
        from engine.catalog import builtin_names

        models = self.project.models()  # a name clash in model.py is an error here
        prediction = self.project.config()["project"]["prediction"]
        builtin = builtin_names(prediction)
        extra = [m for m in models if m not in builtin]
        self.console.print(f"Built-in {prediction} models: " + ", ".join(builtin))
        self.console.print("From model.py: " + (", ".join(extra) if extra else "none"))
        return 0


class CmdRuns(ProjectCommand):
    def result(self) -> Any:
        args = self.args
        return self.project.leaderboard(args.metric, args.limit, include_all=args.all)

    def show(self, board: Any) -> None:
        from engine.cli import output

        if not board.runs:
            self.console.print(self._no_runs())
            return
        champion = board.champion_id
        metric_names = board.metrics
        direction = "higher" if board.higher_is_better else "lower"
        errors = any(r["error"] for r in board.runs)
        output.table(
            f"Runs of {self.project.name} by {board.metric}, best first ({direction} is better)",
            ["#", "Run", "Model", "Status", *metric_names, "Data", "Duration"]
            + (["Error"] if errors else []),
            [
                [
                    str(i),
                    r["id"],
                    ("♛ " if r["id"] == champion else "") + r["label"],
                    r["status"],
                    *[r["metrics"].get(m) for m in metric_names],
                    r["data_version"] or "-",
                    f"{r['duration_seconds']:.2f}s" if r["duration_seconds"] else "-",
                ]
                + ([_short(r["error"])] if errors else [])
                for i, r in enumerate(board.runs, 1)
            ],
        )
        notes = [(r["label"], why) for r in board.runs for why in (r.get("notes") or {}).values()]
        for label, why in notes:  # a blank cell says nothing: say why a metric is missing
            self.console.print(f"{label}: {why}", highlight=False, markup=False)

    def _no_runs(self) -> str:
        """Why the leaderboard is empty: no run at all, or only runs it does not show."""
        from collections import Counter

        name = self.project.name
        if self.args.all:
            return f"No runs yet: `haj train {name}`."
        hidden = self.project.leaderboard(self.args.metric, include_all=True).runs
        if not hidden:
            return f"No runs yet: `haj train {name}`."
        counts = Counter(
            r["status"] if r["status"] != "finished" else f"finished {r['prediction']}"
            for r in hidden
        )
        listed = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return (
            f"No finished runs to rank, but {len(hidden)} run(s) exist: {listed}. "
            f"See them and their errors with `haj runs {name} --all`."
        )


def _short(error: str | None, width: int = 60) -> str:
    if not error:
        return ""
    line = error.splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


class CmdEvaluate(ProjectCommand):
    def result(self) -> CrownResult:
        return self.project.crown(self.args.metric)

    def show(self, result: CrownResult) -> None:
        from engine.cli import output

        console = self.console
        run = result.run
        console.print(
            f"♛ Champion of [bold]{self.project.name}[/]: [bold green]{run.model}[/] "
            f"(run {run.id}, data {run.data_version})  "
            f"{result.metric} = [bold]{output.fmt(result.value)}[/]"
        )
        runner = result.runner_up
        if runner:
            console.print(
                f"  margin to runner-up {runner.model} ({output.fmt(runner.value)}): "
                f"{output.fmt(result.margin)}"
            )
        previous = result.previous
        if previous and result.replaced:
            console.print(
                f"  replaces {previous.model} (run {previous.run_id}, "
                f"{previous.metric}={output.fmt(previous.value)})"
            )
        console.print(f"  model file: {result.path}")
