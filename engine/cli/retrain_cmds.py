"""`haj retrain`: gated retraining (engine.retrain), its dry run and its history."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand

MARKS = {"done": "✓", "skipped": "-", "failed": "✗", "cancelled": "✗", "would": "·"}
STYLES = {"done": "green", "skipped": "yellow", "failed": "red", "cancelled": "red"}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "retrain",
        parents=[common],
        help="retrieve, train, and crown a challenger only if it beats the champion",
        description="Gated retraining: retrieve; with --when new-data (the default) stop when "
        "nothing is new, with --when degraded stop when the champion still holds on the new "
        "data (as `haj check`); then process, train, score the best challenger and the "
        "champion on the same test rows of the new data, crown the challenger only if it is "
        "better by more than --min-improvement (else record it as rejected), and redeploy as "
        "asked. Every retrain is recorded (--history). Exit 0 when it did what was asked "
        "(promoted, rejected, nothing new, the champion holds).",
    )
    p.add_argument("name")
    p.add_argument(
        "--when",
        choices=("new-data", "degraded", "always"),
        default="new-data",
        help="go on past the retrieve when it brought new data (default), when the champion "
        "degraded on it, or always",
    )
    p.add_argument(
        "-m",
        "--model",
        nargs="+",
        dest="models",
        metavar="MODEL",
        help="the challengers to train (default: every model; see `haj models NAME`)",
    )
    p.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        metavar="X",
        help="how much better the challenger must be, in the metric's units and direction "
        "(default 0: strictly better)",
    )
    p.add_argument(
        "--redeploy",
        choices=("none", "server", "container", "sagemaker"),
        default="none",
        help="after a promotion: wait for a running server to switch, rebuild and restart the "
        "container, or deploy to SageMaker (default: none)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run", action="store_true", help="say what each step would do; change nothing"
    )
    what.add_argument("--history", action="store_true", help="list the recorded retrains")
    p.add_argument("--limit", type=int, metavar="N", help="with --history: the last N only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdRetrain)


class CmdRetrain(ProjectCommand):
    def options(self) -> Any:
        from engine.api import RetrainOptions

        args = self.args
        return RetrainOptions(
            when=args.when,
            models=args.models,
            min_improvement=args.min_improvement,
            redeploy=args.redeploy,
        )

    def run(self) -> int:
        from engine.cli import output
        from engine.errors import UsageError

        args = self.args
        if args.limit is not None and (not args.history or args.limit < 1):
            raise UsageError("--limit N goes with --history, and N must be at least 1")
        if args.history:
            runs = self.project.retrain_history(args.limit)
            if self.json:
                output.write_json(runs)
            else:
                self.show_history(runs)
            return 0
        if args.dry_run:
            planned = self.project.retrain(self.options(), dry_run=True)
            if self.json:
                output.write_json(planned)
            else:
                self.show_plan(planned)
            return 0
        if self.json:
            result = self.project.retrain(self.options())
            output.write_json(result)
            return 0
        with StepPrinter() as printer:
            result = self.project.retrain(self.options(), on_event=printer)
        self.show_result(result)
        return 0

    # ---- printing ----------------------------------------------------------------------------
    def show_plan(self, planned: Any) -> None:
        console = self.console
        console.print(
            f"Dry run: haj retrain {self.project.name} --when {planned.trigger} would "
            "(nothing was run or changed):",
            markup=False,
            highlight=False,
        )
        for number, step in enumerate(planned.steps, 1):
            console.print(
                f"  {number}. {step.name:<9} {step.detail}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def show_result(self, result: Any) -> None:
        style = {"promoted": "bold green", "rejected": "bold yellow"}.get(result.decision, "")
        word = {"promoted": "PROMOTED: ", "rejected": "REJECTED: "}.get(result.decision, "")
        self.console.print(
            f"{word}{result.reason}",
            style=style,
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        self.console.print(
            f"recorded as retrain {result.id} ({result.seconds:.1f} s); "
            f"see `haj retrain {self.project.name} --history`",
            markup=False,
            highlight=False,
        )

    def show_history(self, runs: list[Any]) -> None:
        from engine.cli import output

        console = self.console
        if not runs:
            console.print(f"No retrain of {self.project.name} yet.", markup=False)
            return
        rows = []
        for r in runs:
            champion = _contender(r.champion)
            challenger = _contender(r.challenger)
            rows.append(
                [
                    r.started_at[:19].replace("T", " "),
                    r.trigger,
                    r.status,
                    r.decision or "-",
                    r.metric,
                    champion,
                    challenger,
                    r.data_version or r.raw_version or "-",
                    f"{r.seconds:.1f}",
                    r.id,
                ]
            )
        output.table(
            f"Retrains of {self.project.name} (newest first; times UTC)",
            ["when", "trigger", "status", "decision", "metric", "champion", "challenger",
             "data", "seconds", "id"],
            rows,
        )  # fmt: skip
        for r in runs:
            steps = ", ".join(f"{s.name} {MARKS.get(s.outcome, '?')} {s.seconds:.1f}s"
                              for s in r.steps)  # fmt: skip
            console.print(f"{r.id}: {r.reason}", markup=False, highlight=False, soft_wrap=True)
            if steps:
                console.print(f"  steps: {steps}", markup=False, highlight=False, soft_wrap=True)


def _contender(contender: Any) -> str:
    if contender is None:
        return "-"
    score = "cannot score" if contender.score is None else f"{contender.score:.4f}"
    return f"{contender.label} {score}"


class StepPrinter:
    """Prints a retrain's events: each step as it starts and ends (`✓ train 12.3 s  3 finished
    on proc-0002`), the work's own lines between them (training, the build, the deploy's
    progress), and a download's byte progress as a line every few seconds."""

    EVERY = 5.0

    def __init__(self) -> None:
        import time

        from engine.cli import output
        from engine.cli.container_cmds import ProgressPrinter

        self.console = output.console()
        self.inner = ProgressPrinter(quiet=True)
        self.printed = time.monotonic()  # a transfer shorter than EVERY prints no line

    def __enter__(self) -> StepPrinter:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        import time

        from engine import events
        from engine.units import transfer_text

        if isinstance(event, events.RetrainStep):
            if event.status == "started":
                self.console.print(f"▸ {event.step}", style="bold", markup=False)
                return
            mark = MARKS.get(event.status, "?")
            line = f"{mark} {event.step} ({event.seconds or 0:.1f} s): {event.detail}"
            self.console.print(
                line, style=STYLES.get(event.status, ""), markup=False, soft_wrap=True
            )
        elif isinstance(event, events.Progress) and event.unit == "bytes":
            now = time.monotonic()
            if now - self.printed >= self.EVERY:
                self.printed = now
                text = transfer_text(event.label, event.done, event.total or None, event.rate)
                self.console.print(text, markup=False, soft_wrap=True)
        elif isinstance(event, events.Progress) and event.label == "training":
            if event.done:
                self.console.print(f"trained {event.done} of {event.total}", markup=False)
        else:
            self.inner(event)
