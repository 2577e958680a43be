"""`haj tune`: a hyperparameter search for one model (engine.tuning), with live trial lines."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand
from engine.numbers import metric_text

TABLE_ROWS = 10  # the best trials shown in the final table


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "tune",
        parents=[common],
        help="tune a model's parameters (Optuna)",
        description="Search MODEL's parameters with Optuna: each trial is scored by K-fold "
        "cross-validation of the training split (the holdout stays unseen) and weak trials are "
        "stopped early (pruned); every trial is a run tagged study=NAME, trial=N. The best "
        "parameters are refit on the training split and scored on the holdout as a normal run "
        "that `haj evaluate` can crown. The study is kept in studies/STUDY.journal: --study "
        "resumes it (after Ctrl-C too).",
    )
    p.add_argument("name")
    p.add_argument(
        "-m",
        "--model",
        required=True,
        metavar="MODEL",
        help="the model to tune: a catalog name (see `haj models NAME`), or one of model.py's "
        "with its search_space(name, trial)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="run N more trials (default: 20, or as many as --timeout allows)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="start no trial after SECONDS (the running ones finish)",
    )
    p.add_argument(
        "--metric", metavar="M", help="the score to optimise (default: the project's metric)"
    )
    p.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="folds of the training split each trial is scored on (default: 5; a resumed "
        "study keeps its own)",
    )
    p.add_argument(
        "--study",
        metavar="STUDY",
        help="resume this study, or start it under this name (default: a new MODEL-#)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="J",
        help="trials at a time, each in its own process (default: [training] n_jobs, -1 = "
        "every core)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDR",
        help="run the trials' folds on the Dask cluster at ADDR (tcp://HOST:8786) this time, "
        "whatever [training] backend says; --jobs defaults to its worker threads",
    )
    p.add_argument("--json", action="store_true", help="print the study's outcome as JSON")
    p.set_defaults(func=CmdTune)


class CmdTune(ProjectCommand):
    def _tune(self, on_event: Any) -> dict[str, Any]:
        args = self.args
        return self.project.tune(
            args.model,
            trials=args.trials,
            timeout=args.timeout,
            metric=args.metric,
            cv=args.cv,
            study=args.study,
            jobs=args.jobs,
            on_event=on_event,
            cluster=args.cluster,
        )

    def result(self) -> dict[str, Any]:
        if self.json:
            return self._tune(self.on_event())
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
            TextColumn("[bold]tuning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=None)

            def on_event(event: events.Event) -> None:
                if isinstance(event, events.Progress):
                    progress.update(task, total=event.total or None, completed=event.done)
                elif isinstance(event, events.TrialFinished) and event.best_value is not None:
                    best = metric_text(event.metric, event.best_value)
                    progress.update(task, description=f"best {event.metric}={best}")
                elif isinstance(event, events.Log):
                    style = {"error": "red", "warning": "yellow"}.get(event.level, "")
                    console.print(event.message, style=style, markup=False, soft_wrap=True)

            return self._tune(on_event)

    def show(self, result: dict[str, Any]) -> int:
        from engine.cli import output

        console, name, metric = self.console, self.project.name, result["metric"]
        trials = [t for t in result["trials"] if t["value"] is not None]
        sign = 1 if result["higher_is_better"] else -1
        order = {"finished": 0, "pruned": 1}
        trials.sort(key=lambda t: (order.get(t["status"], 2), -sign * t["value"]))
        shown = trials[:TABLE_ROWS]
        rows = [
            [
                str(t["trial"]),
                t["label"] or "-",
                t["status"],
                metric_text(metric, t["value"], t["std"]),
                str(t["folds"] or "-"),
                _params(t["params"]),
            ]
            for t in shown
        ]
        title = (
            f"study {result['study']}: the {len(shown)} best of {len(result['trials'])} trials "
            f"({result['cv']}-fold CV of {metric} on {result['train_rows']} training rows)"
        )
        output.table(title, ["#", "run", "status", metric, "folds", "params"], rows)
        outcomes = result["outcomes"]
        rate = result["trials_per_second"]
        console.print(
            f"{result['new_trials']} new trial(s) in {result['seconds']:.1f}s"
            + (f" ({rate:.2f} trials/s, {result['jobs']} at a time)" if rate else "")
            + f": {outcomes['finished']} finished, {outcomes['pruned']} pruned, "
            f"{outcomes['failed']} failed"
        )
        best, refit = result["best"], result["refit"]
        if best is None:
            console.print("[red]no trial finished[/]: nothing to refit")
            return 1
        console.print(
            f"best: trial {best['trial']} ({best['label']}) {metric}="
            f"{metric_text(metric, best['value'], best['std'])} | {_params(best['params'])}"
        )
        if refit is None or refit["status"] != "finished":
            why = refit["error"] if refit else "not refit"
            console.print(f"[red]the refit of trial {best['trial']} failed[/]: {why}")
            return 1
        scores = " ".join(
            f"{k}={metric_text(k, v)}" for k, v in refit["metrics"].items() if k == metric
        )
        console.print(
            f"refit: [bold]{refit['label']}[/] on the whole training split, scored on the "
            f"{refit['test_rows']} held-out rows: {scores}"
            + (" (kept from an earlier resume)" if refit["reused"] else "")
        )
        console.print(
            f"Next: `haj evaluate {name} --run {refit['label']}` to crown it; more trials: "
            f"`haj tune {name} -m {result['model']} --study {result['study']} --trials N`"
        )
        return 0


def _params(params: dict[str, Any]) -> str:
    from engine.tuning import params_text

    return params_text(params)
