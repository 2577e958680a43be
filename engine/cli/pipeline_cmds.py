"""`haj pipeline run` (the project's steps, in order, retried when the failure is transient)
and `haj pipeline history` (past runs with each step's result)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand

STEPS = ("retrieve", "process", "check", "retrain", "monitor", "report")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "pipeline",
        parents=[common],
        help="run the project's pipeline (retrieve, process, check, retrain, monitor, report) "
        "or list it",
        description="The pipeline is configured in config.toml's [pipeline] (steps, when, "
        "min_improvement, redeploy, retries). `haj pipeline run NAME` runs it once; "
        "`haj schedule` runs it on a schedule.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = verbs.add_parser(
        "run",
        parents=[common],
        help="run the steps in order, each recorded (attempts, seconds, outcome, reason)",
        description="Run [pipeline] steps (or --steps) in order. Only transient failures are "
        "retried (network errors, HTTP 5xx, timeouts; [pipeline.retries] attempts, backoff "
        "doubling from [pipeline] backoff_seconds); an error in the project's code fails at "
        "once. With nothing new from the source, the later steps are skipped unless --force. "
        "Another pipeline run of the project makes this one exit 13 at once.",
    )
    run.add_argument("name")
    run.add_argument("--steps", nargs="+", choices=STEPS, metavar="STEP", help="these steps only")
    run.add_argument("--force", action="store_true", help="run every step even with no new data")
    run.add_argument(
        "--trigger", choices=("manual", "schedule"), default="manual", help=argparse.SUPPRESS
    )
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=CmdPipelineRun)
    history = verbs.add_parser(
        "history", parents=[common], help="past pipeline runs with per-step results"
    )
    history.add_argument("name")
    history.add_argument("--limit", type=int, default=10, metavar="N", help="the last N (10)")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=CmdPipelineHistory)


class CmdPipelineRun(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output

        args = self.args
        if self.json:
            result = self.project.pipeline_run(args.steps, force=args.force, trigger=args.trigger)
            output.write_json(result.to_dict())
            return 0
        with PipelinePrinter() as printer:
            result = self.project.pipeline_run(
                args.steps, force=args.force, trigger=args.trigger, on_event=printer
            )
        self.console.print(
            f"pipeline {result.id} {result.status} in {result.seconds:.1f} s: {result.summary}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 0


class CmdPipelineHistory(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output
        from engine.errors import UsageError

        if self.args.limit < 1:
            raise UsageError("--limit must be 1 or more")
        runs = self.project.pipeline_history(self.args.limit)
        if self.json:
            output.write_json([r.to_dict() for r in runs])
            return 0
        if not runs:
            self.console.print(
                f"No pipeline run of {self.project.name} yet: `haj pipeline run "
                f"{self.project.name}`",
                markup=False,
            )
            return 0
        rows = []
        for r in runs:
            steps = "  ".join(f"{s.name} {s.mark} {s.seconds:.1f}s" for s in r.steps)
            rows.append([_local(r.started_at), r.trigger, r.status, f"{r.seconds:.1f}", steps])
        output.table(
            f"Pipeline runs of {self.project.name} (newest first)",
            ["when", "trigger", "status", "seconds", "steps"],
            rows,
        )
        for r in runs:
            skipped = [f"{s.name}: {s.detail}" for s in r.steps if s.outcome != "done"]
            line = f"{r.id}: {r.summary}" + (f" ({'; '.join(skipped)})" if skipped else "")
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        return 0


def _local(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


MARKS = {"done": "✓", "skipped": "-", "failed": "✗", "cancelled": "✗", "retrying": "↻"}
STYLES = {"done": "green", "failed": "bold red", "cancelled": "yellow", "retrying": "yellow"}


class PipelinePrinter:
    """Each pipeline step as it starts, is retried and ends; a retrain's own steps indented."""

    def __init__(self) -> None:
        from engine.cli import output
        from engine.cli.retrain_cmds import StepPrinter

        self.console = output.console()
        self.inner = StepPrinter()

    def __enter__(self) -> PipelinePrinter:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        from engine import events

        if not isinstance(event, events.PipelineStep):
            self.inner(event)
            return
        if event.status == "started":
            self.console.print(f"■ {event.step}", style="bold", markup=False)
            return
        if event.status == "retrying":
            line = f"↻ {event.step}: attempt {event.attempt}: {event.detail}"
        else:
            tries = f", {event.attempt} attempts" if event.attempt > 1 else ""
            line = (
                f"{MARKS.get(event.status, '?')} {event.step} ({event.seconds or 0:.1f} s"
                f"{tries}): {event.detail}"
            )
        self.console.print(line, style=STYLES.get(event.status, ""), markup=False, soft_wrap=True)
