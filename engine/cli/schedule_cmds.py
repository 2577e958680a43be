"""`haj schedule set | install | remove | status | run | stop`: when a project's pipeline runs
by itself, through the user's crontab or haj's own scheduler (engine.schedule)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.cli.command import Command, ProjectCommand

if TYPE_CHECKING:
    from engine.api import ScheduleStatus


EXAMPLES = '"0 3 * * *" (03:00 every day), "*/30 * * * *", "0 6 * * mon-fri", "@hourly"'


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "schedule",
        parents=[common],
        help="run a project's pipeline on a schedule (cron, or haj's own scheduler)",
        description="A project's schedule is [pipeline] schedule in its config.toml, a cron "
        f"expression: {EXAMPLES}, in local time. Either cron runs it (`haj schedule install`: "
        "one tagged line in your crontab) or haj's scheduler does (`haj schedule run`), for "
        "machines and containers without cron.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser(
        "set",
        parents=[common],
        help="set the project's schedule (a cron expression), or `off`",
        description="Check and store [pipeline] schedule: 5 fields (minute hour day-of-month "
        f"month day-of-week) or an @-word: {EXAMPLES}. `off` clears it. A crontab line already "
        "installed follows the new schedule (or is removed with `off`).",
    )
    v.add_argument("name")
    v.add_argument("cron", metavar="CRON|off")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=CmdScheduleSet)

    v = verbs.add_parser(
        "install",
        parents=[common],
        help="add the project's line to your crontab (replaces it if there)",
        description="Add one line to your crontab (through the `crontab` command, or "
        "$HAJ_CRONTAB) that runs `haj --home WORKSPACE pipeline run NAME --trigger schedule` on "
        "the project's schedule, its output appended to NAME/logs/pipeline.log. The line ends "
        "with `# haj:WORKSPACE:NAME`; installing again replaces it; no other line is touched.",
    )
    v.add_argument("name")
    v.set_defaults(func=CmdScheduleInstall)

    v = verbs.add_parser(
        "remove",
        parents=[common],
        help="take the project's line out of your crontab",
        description="Remove the project's tagged line from your crontab; other lines stay.",
    )
    v.add_argument("name")
    v.set_defaults(func=CmdScheduleRemove)

    v = verbs.add_parser(
        "status",
        parents=[common],
        help="each project's schedule, next three times, what runs it and its last run",
        description="Per project: the cron expression, its next three times (local), whether "
        "its crontab line is installed, whether the workspace's scheduler runs, and the last "
        "pipeline run.",
    )
    v.add_argument("name", nargs="?")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=CmdScheduleStatus)

    v = verbs.add_parser(
        "run",
        parents=[common],
        help="haj's own scheduler: run every scheduled project of the workspace when due",
        description="For machines and containers without cron: wakes when a project is due "
        "(and every minute, to read the schedules again), runs `haj pipeline run NAME "
        "--trigger schedule` for each due project (never two of one project at once; output to "
        "NAME/logs/pipeline.log), and stops on Ctrl-C or SIGTERM, stopping the runs it started. "
        "One per workspace. --detach runs it in the background (log: "
        "WORKSPACE/.haj-scheduler.log); `haj schedule stop` stops it.",
    )
    v.add_argument("-d", "--detach", action="store_true", help="run in the background")
    v.add_argument("--log", help=argparse.SUPPRESS)  # where a detached one's output goes
    v.set_defaults(func=CmdScheduleRun)

    v = verbs.add_parser(
        "stop",
        parents=[common],
        help="stop the workspace's scheduler (and the runs it started)",
        description="Stop the scheduler of `haj schedule run` (SIGTERM; the pipeline runs it "
        "started are stopped and recorded as cancelled; SIGKILL after 30 s).",
    )
    v.set_defaults(func=CmdScheduleStop)


def when(moment: datetime) -> str:
    """A next time as the CLI shows it: 2026-12-03 03:00 Thu."""
    return moment.strftime("%Y-%m-%d %H:%M %a")


def local_text(iso: str | None) -> str:
    """A stored time as local "2026-12-03 03:00"."""
    from engine.schedule import local_text as text

    return text(iso)


class CmdScheduleSet(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output

        status, notes = self.project.set_schedule(self.args.cron)
        if self.json:
            output.write_json({**status.to_dict(), "notes": notes})
            return 0
        say = self._print
        name = self.project.name
        if status.schedule is None:
            say(f"{name} has no schedule now.")
        else:
            words = f" ({status.explain})" if status.explain else ""
            say(f"Schedule of {name}: {status.schedule}{words}")
            say("next: " + ", ".join(when(t) for t in status.next))
        for note in notes:
            say(f"{name}: {note}")
        if status.schedule is not None and not status.runs_by:
            say(
                f"Nothing runs it yet: `haj schedule install {name}` (cron) or "
                "`haj schedule run --detach` (haj's scheduler)."
            )
        return 0

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class CmdScheduleInstall(ProjectCommand):
    def run(self) -> int:
        line = self.project.install_schedule()
        name = self.project.name
        self.console.print(
            f"Installed in your crontab:\n{line}\nOutput goes to "
            f"{self.project.path / 'logs' / 'pipeline.log'}; `haj schedule remove {name}` "
            "takes it out.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 0


class CmdScheduleRemove(ProjectCommand):
    def run(self) -> int:
        line = self.project.remove_schedule()
        name = self.project.name
        text = (
            f"Removed from your crontab:\n{line}"
            if line is not None
            else f"No crontab line runs {name}: nothing changed."
        )
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        return 0


class CmdScheduleStatus(Command):
    def result(self) -> dict[str, Any]:
        return {
            "scheduler": self.workspace.scheduler(),
            "projects": self.workspace.schedules(self.args.name),
        }

    def show(self, result: dict[str, Any]) -> None:
        say = self._print
        root = self.workspace.root
        running = result["scheduler"]
        say(
            f"Scheduler of {root}: running (pid {running['pid']}, since "
            f"{local_text(running.get('started_at'))}"
            + (f", log {running['log']})" if running.get("log") else ")")
            if running
            else f"Scheduler of {root}: not running (`haj schedule run --detach` starts it)"
        )
        projects: list[ScheduleStatus] = result["projects"]
        if not projects:
            say(f"No projects in {root}.")
            return
        errors = {p.crontab_error for p in projects if p.crontab_error}
        for error in errors:
            say(f"crontab: cannot be read: {error}")
        for status in projects:
            self._project(status)

    def _project(self, status: ScheduleStatus) -> None:
        say = self._print
        if status.schedule is None and not status.crontab_line and not status.error:
            say(f"{status.name}: not scheduled")
            return
        words = f"  ({status.explain})" if status.explain else ""
        say(f"{status.name}: {status.schedule or 'not scheduled'}{words}")
        if status.next:
            say("  next      " + ", ".join(when(t) for t in status.next))
        if status.crontab_checked:
            say(
                "  crontab   "
                + ("line installed" if status.crontab_line else "no line (`haj schedule install`)")
            )
        if status.scheduler:
            say(f"  scheduler runs it (pid {status.scheduler['pid']})")
        last = status.last_run
        if last:
            say(
                f"  last run  {local_text(last.get('started_at'))} ({last.get('trigger')}): "
                f"{last.get('status')}" + (f": {last['summary']}" if last.get("summary") else "")
            )
        elif status.schedule:
            say("  last run  none yet")
        if status.warning:
            self.console.print(
                f"  warning   {status.warning}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class CmdScheduleRun(Command):
    def run(self) -> int:
        root = self.workspace.root
        if self.args.detach:
            record = self.workspace.start_scheduler()
            self.console.print(
                f"Scheduler of {root} started (pid {record['pid']}); log in {record['log']}. "
                "`haj schedule status` shows what it runs; `haj schedule stop` stops it.",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return 0
        self.workspace.run_scheduler(log=self.args.log)
        return 0


class CmdScheduleStop(Command):
    def run(self) -> int:
        from engine.errors import HajError

        root = self.workspace.root
        record = self.workspace.stop_scheduler()
        if record is None:
            raise HajError(f"no scheduler runs for {root}")
        self.console.print(
            f"Stopped the scheduler of {root} (pid {record['pid']}).",
            markup=False,
            highlight=False,
        )
        return 0
