"""`haj train | runs | evaluate | finalize | models`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.command import ProjectCommand
from engine.numbers import metric_text

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
    p.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="K-fold cross-validation on the training split: every metric as the folds' "
        "mean ± std, and runs rank by the mean",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDR",
        help="fit on the Dask cluster at ADDR (tcp://HOST:8786) this time, whatever "
        "[training] backend says (see `haj cluster`)",
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
    p.add_argument(
        "--show",
        metavar="RUN",
        help="one run in full (id or MODEL-#): parameters, metrics, notes and its evaluations",
    )
    p.add_argument(
        "--filter",
        metavar="TERMS",
        help='only the runs matching every term, e.g. "model=random_forest tag.owner=ana '
        'acc>0.9 data=proc-0002 status=finished": a metric, param.NAME, tag.KEY, model, status, '
        "data, run or duration, then = != > >= < <= or ~ (contains), then the value",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="two or more runs side by side (ids or MODEL-#): the parameters that differ, metrics "
        "and their deltas to the first, data versions, code and environment hashes, tags",
    )
    _data_scope_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdRuns)

    p = subparsers.add_parser(
        "evaluate",
        parents=[common],
        help="crown the champion model",
        description="Crown the best finished run by METRIC (default: the project's metric) "
        "among the runs scored on the current data version; or a chosen run (--run), or the "
        "previous champion (--rollback). A running server switches to the new champion.",
    )
    p.add_argument("name")
    p.add_argument(
        "metric", nargs="?", help="acc, precision, recall, f1, roc_auc | rmse, mae, mse, r2"
    )
    _data_scope_arguments(p)
    choice = p.add_mutually_exclusive_group()
    choice.add_argument(
        "--run", metavar="RUN", help="crown this run (an id, or MODEL-# as `haj runs` shows it)"
    )
    choice.add_argument("--rollback", action="store_true", help="crown the previous champion again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdEvaluate)

    p = subparsers.add_parser(
        "finalize",
        parents=[common],
        help="refit the champion on all its data and crown the refit",
        description="Refit the champion's pipeline on every row of its data version (train + "
        "test) as a new run linked to it, and crown that run. No test set is left, so its "
        "metrics are the champion's, labelled finalized.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdFinalize)


def _data_scope_arguments(p: argparse.ArgumentParser) -> None:
    """--data V / --any-data: which runs are compared (default: the current data version)."""
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--data",
        metavar="VERSION",
        help="compare the runs scored on this data version (default: the current one)",
    )
    scope.add_argument(
        "--any-data",
        action="store_true",
        help="compare the runs of every data version (each run shows its own)",
    )


class CmdTrain(ProjectCommand):
    def result(self) -> dict[str, Any]:
        cv, cluster = self.args.cv, self.args.cluster
        if self.json:
            return self.project.train(self.args.models, data=self.args.data, cv=cv, cluster=cluster)
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

            return self.project.train(
                self.args.models, data=self.args.data, cv=cv, on_event=on_event, cluster=cluster
            )

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
    def run(self) -> int:
        if self.args.show:
            return self.show_run(self.args.show)
        if self.args.compare:
            return self.compare(self.args.compare)
        return super().run()

    def compare(self, refs: list[str]) -> int:
        """`haj runs NAME --compare RUN RUN ...` (engine.compare)."""
        from engine.cli import output
        from engine.cli.experiment_cmds import show_comparison

        comparison = self.project.compare(refs)
        if self.json:
            output.write_json(comparison)
        else:
            show_comparison(self.console, comparison)
        return 0

    def show_run(self, ref: str) -> int:
        """`haj runs NAME --show RUN`: the run, then its evaluations (newest first)."""
        from engine.cli import output
        from engine.cli.operate_cmds import show_evaluation

        run = self.project.run(ref)
        evaluations = self.project.evaluations(run.id)
        artifacts = self.project.run_artifacts(run.id)
        if self.json:
            output.write_json(
                {"run": run.to_dict(), "evaluations": evaluations, "artifacts": artifacts}
            )
            return 0
        console = self.console
        console.print(
            f"[bold]{run.label}[/] (run {run.id}): {run.model}, {run.status}, data "
            f"{run.data_version}",
            highlight=False,
        )
        for name, value in run.metrics.items():
            std = (run.metrics_std or {}).get(name)
            spread = f" ± {output.fmt(std)}" if std is not None else ""
            console.print(f"  {name} = {output.fmt(value)}{spread}", highlight=False)
        params = ", ".join(f"{key}={value}" for key, value in run.params.items())
        console.print(f"  params: {params}", highlight=False, markup=False, soft_wrap=False)
        for key, value in (run.notes or {}).items():
            console.print(f"  note: {key}: {value}", highlight=False, markup=False)
        if run.error:
            console.print(f"  error: {run.error}", style="red", highlight=False, markup=False)
        show_artifacts(console, artifacts)
        if not evaluations:
            console.print(f"No evaluation yet: `haj score {self.project.name} --run {run.label}`.")
        for evaluation in evaluations:
            show_evaluation(console, {**evaluation, "label": run.label, "recorded": run.metrics})
        return 0

    def result(self) -> Any:
        args = self.args
        return self.project.leaderboard(
            args.metric,
            args.limit,
            include_all=args.all,
            data=args.data,
            any_data=args.any_data,
            where=args.filter,
        )

    def show(self, board: Any) -> None:
        from engine.cli import output
        from engine.runs import run_kind, score_text

        matching = f', matching "{board.filter}"' if board.filter else ""
        if not board.runs and board.filter:
            self.console.print(
                f'No runs {board.scope} match "{board.filter}" ({board.filtered_out} do not).',
                highlight=False,
                markup=False,
            )
            return
        if not board.runs:
            self.console.print(self._no_runs(board), highlight=False, markup=False)
            self._say_stale(board)
            return
        champion = board.champion_id
        metric_names = board.metrics
        direction = "higher" if board.higher_is_better else "lower"
        errors = any(r["error"] for r in board.runs)
        output.table(
            f"Runs of {self.project.name} by {board.metric}, best first ({direction} is "
            f"better), {board.scope}{matching}",
            ["#", "Run", "Model", "Status", *metric_names, "Data", "Duration"]
            + (["Error"] if errors else []),
            [
                [
                    str(i),
                    r["id"],
                    ("♛ " if r["id"] == champion else "")
                    + r["label"]
                    + (f" ({run_kind(r)})" if run_kind(r) != "test split" else ""),
                    r["status"],
                    *[score_text(r, m) or "-" for m in metric_names],
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
        self._say_scope(board)

    def _say_scope(self, board: Any) -> None:
        """What the table leaves out or mixes: runs of other data versions, CV means ranked with
        test scores, finalized runs, a champion trained on other data."""
        name = self.project.name
        say = self.console.print
        if any(r.get("cv_folds") for r in board.runs):
            say(
                "± : the std over the cross-validation folds; a cross-validated run ranks by "
                "the folds' mean",
                highlight=False,
                markup=False,
            )
        if any(r.get("refit_of") for r in board.runs):
            say(
                "finalized: refit on all rows of its data; its metrics are its source run's "
                "(no test set is left)",
                highlight=False,
                markup=False,
            )
        if board.other_runs and not board.any_data:
            say(
                f"{board.other_runs} run(s) on other data versions are not ranked here: "
                f"`haj runs {name} --any-data` shows them all",
                highlight=False,
                markup=False,
            )
        self._say_stale(board)

    def _say_stale(self, board: Any) -> None:
        if board.stale:
            self.console.print(
                f"Note: {board.stale}.", style="yellow", highlight=False, markup=False
            )

    def _no_runs(self, board: Any) -> str:
        """Why the leaderboard is empty: no run at all, none on this data version, or only runs
        it does not show."""
        from collections import Counter

        name = self.project.name
        if board.other_runs and not board.any_data:
            return (
                f"No runs {board.scope}: `haj train {name}` trains on the current data; "
                f"{board.other_runs} run(s) on other data versions: `haj runs {name} --any-data`."
            )
        if self.args.all:
            return f"No runs yet: `haj train {name}`."
        hidden = self.project.leaderboard(
            self.args.metric, include_all=True, data=self.args.data, any_data=self.args.any_data
        ).runs
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


def show_artifacts(console: Any, artifacts: dict[str, Any]) -> None:
    """A run's artifacts kept at training (engine.artifacts), on its test split: the
    confusion matrix and per-class scores, or the residual summary; the top importances."""
    from engine.cli import output
    from engine.cli.operate_cmds import show_confusion

    say = console.print
    if artifacts.get("missing"):
        say(f"  artifacts: {artifacts['missing']} is missing", style="yellow", markup=False)
    if "format" not in artifacts:
        return
    source = f" (of run {artifacts['from_run']})" if artifacts.get("from_run") else ""
    say(f"On the test split ({artifacts['rows']:,} rows){source}:", style="bold", markup=False)
    if "confusion" in artifacts:
        show_confusion(console, artifacts["confusion"])
        _per_class(console, artifacts)
    if artifacts.get("curves_note"):
        say(artifacts["curves_note"], highlight=False, markup=False)
    if "residuals" in artifacts:
        r = artifacts["residuals"]
        say("residuals (truth - prediction): " + ", ".join(f"{k} {output.fmt(v)}"
            for k, v in r.items()), highlight=False)  # fmt: skip
    if "predicted_vs_actual" in artifacts:
        points = artifacts["predicted_vs_actual"]
        say(f"predicted vs actual: {len(points['actual'])} of {points['sampled_from']} points "
            "kept (drawn in the app's run panel)", highlight=False)  # fmt: skip
    _importances(console, artifacts.get("importances") or {})


def _per_class(console: Any, artifacts: dict[str, Any]) -> None:
    """Precision, recall, f1 and support per class, with each class's ROC AUC and average
    precision (one-vs-rest; the positive class of a binary target)."""
    from rich.table import Table

    from engine.numbers import metric_text

    auc = {str(c["label"]): c["auc"] for c in artifacts.get("roc") or []}
    ap = {str(c["label"]): c["ap"] for c in artifacts.get("pr") or []}
    table = Table(title="per class", title_justify="left", header_style="bold")
    table.add_column("class")
    for title in ("precision", "recall", "f1", "support", "roc_auc", "avg precision"):
        table.add_column(title, justify="right")
    for row in artifacts["per_class"]:
        label = str(row["label"])
        table.add_row(
            label,
            *(metric_text(key, row[key]) for key in ("precision", "recall", "f1")),
            f"{row['support']:,}",
            metric_text("roc_auc", auc.get(label)),
            metric_text("precision", ap.get(label)),
        )
    console.print(table)


def _importances(console: Any, importances: dict[str, Any], top: int = 10) -> None:
    """The `top` most important input features as bars (longest: the most important)."""
    from rich.bar import Bar
    from rich.table import Table

    from engine.numbers import metric_text

    features = [f for f in importances.get("features") or [] if f["importance"] is not None]
    if not features:
        return
    shown = features[:top]
    largest = max(abs(f["importance"]) for f in shown) or 1.0
    method = importances["method"]
    if method == "permutation":
        method += f", {importances['repeats']} repeat(s) on {importances['rows']:,} rows"
    console.print(
        f"top {len(shown)} of {len(features)} feature importances ({method})", highlight=False
    )
    table = Table(header_style="bold", box=None)
    table.add_column("feature", no_wrap=True, max_width=32)
    table.add_column("", width=30)
    table.add_column("importance", justify="right")
    for feature in shown:
        value = feature["importance"]
        table.add_row(
            feature["feature"],
            Bar(largest, 0, max(0.0, value), width=30, color="cyan"),
            metric_text("importance", value),
        )
    console.print(table)
    console.print(f"  ({importances['detail']})", style="dim", highlight=False, markup=False)


def _short(error: str | None, width: int = 60) -> str:
    if not error:
        return ""
    line = error.splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


class CmdEvaluate(ProjectCommand):
    def result(self) -> CrownResult:
        args = self.args
        if (args.run or args.rollback) and (args.data or args.any_data):
            from engine.errors import UsageError

            raise UsageError(
                "--data and --any-data choose among runs: not with --run or --rollback"
            )
        if args.run:
            return self.project.crown_run(args.run, args.metric)
        if args.rollback:
            return self.project.rollback(args.metric)
        return self.project.crown(args.metric, data=args.data, any_data=args.any_data)

    def show(self, result: CrownResult) -> None:
        show_crowned(self.console, self.project.name, result)


class CmdFinalize(ProjectCommand):
    def result(self) -> CrownResult:
        return self.project.finalize(on_event=self.on_event(verbose=False))

    def show(self, result: CrownResult) -> None:
        show_crowned(self.console, self.project.name, result)


_HOW = {
    "chosen": "crowned as chosen",
    "rollback": "rolled back to the previous champion",
}


def show_crowned(console: Any, name: str, result: CrownResult) -> None:
    """What crowning did, for evaluate, evaluate --run / --rollback and finalize."""
    from engine.runs import score_text

    run = result.run
    score = score_text(
        {"metrics": {result.metric: result.value}, "metrics_std": run.metrics_std}, result.metric
    )
    cv = f" (mean ± std of {run.cv_folds} CV folds)" if run.cv_folds else ""
    console.print(
        f"♛ Champion of [bold]{name}[/]: [bold green]{run.model}[/] "
        f"(run {run.id}, {run.label}, data {run.data_version})  "
        f"{result.metric} = [bold]{score}[/]{cv}",
        highlight=False,
    )
    if result.reason in _HOW:
        console.print(f"  {_HOW[result.reason]}", highlight=False, markup=False)
    if run.refit_of:
        console.print(
            f"  finalized: a refit of run {run.refit_of} on all rows of {run.data_version}; its "
            "metrics are that run's (no test set is left)",
            highlight=False,
            markup=False,
        )
    runner = result.runner_up
    if runner:
        console.print(
            f"  margin to runner-up {runner.model} ({metric_text(result.metric, runner.value)}): "
            f"{metric_text(result.metric, result.margin)}"
        )
    previous = result.previous
    if previous and result.replaced:
        console.print(
            f"  replaces {previous.model} (run {previous.run_id}, "
            f"{previous.metric}={metric_text(previous.metric, previous.value)})"
        )
    if result.caveat:  # a tie, or a margin within the noise: the choice is not clear-cut
        console.print(f"  note: {result.caveat}", style="yellow", highlight=False, markup=False)
    if result.stale:
        console.print(f"  note: {result.stale}", style="yellow", highlight=False, markup=False)
    if result.inputs:
        console.print(f"  note: {result.inputs}", style="yellow", highlight=False, markup=False)
    console.print(f"  model file: {result.path}")
