"""`haj list | init | delete | config | impl | status | demo`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from engine.cli.command import Command, ProjectCommand
from engine.errors import HajError, UsageError
from engine.numbers import metric_text

if TYPE_CHECKING:
    from engine.api import ProjectStatus

PREDICTIONS = ("classification", "regression")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "list",
        parents=[common],
        help="list the workspace's projects",
        description="A table of the workspace's projects.",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=CmdList)

    p = subparsers.add_parser(
        "init",
        parents=[common],
        help="create a project from a template",
        description="Create a project from the classification or regression template.",
    )
    p.add_argument("name")
    p.add_argument(
        "-p",
        "--prediction",
        choices=PREDICTIONS,
        help="prediction type (asked on a terminal when omitted)",
    )
    p.add_argument(
        "--example",
        metavar="DATASET",
        help="use a scikit-learn bundled dataset as the data source (offline): "
        "breast_cancer, iris, wine, digits (classification), diabetes (regression)",
    )
    p.add_argument("--url", help="the data source URL or path")
    p.add_argument("--target", help="the column to predict")
    p.set_defaults(func=CmdInit)

    p = subparsers.add_parser(
        "delete",
        parents=[common],
        help="delete a project",
        description="Delete a project and everything in it.",
    )
    p.add_argument("name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=CmdDelete)

    p = subparsers.add_parser(
        "config",
        parents=[common],
        help="show or change a project's config",
        description="Print the config (secrets masked), or change it.",
    )
    p.add_argument("name")
    p.add_argument("-t", "--title", metavar="NEW", help="rename the project (directory and config)")
    p.add_argument(
        "-p",
        "--prediction",
        nargs="?",
        const="ask",
        metavar="TYPE",
        help="switch the prediction type (classification|regression; asked if omitted)",
    )
    p.add_argument(
        "-d",
        "--dependencies",
        nargs="+",
        metavar="PKG",
        help="add packages to requirements.txt and install them in the project's venv",
    )
    p.add_argument("--url", help="set the data source (http(s) URL, path, file:// or example:NAME)")
    p.add_argument("--target", metavar="COLUMN", help="set the target column")
    p.add_argument("--metric", help="set the default metric for `haj evaluate`")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set any other key (e.g. monitoring.drift_share=0.3); repeatable",
    )
    p.add_argument(
        "--api-key",
        action="store_true",
        help="set the API key: hidden prompt on a terminal, else the first line of "
        "stdin; written to .env only",
    )
    p.add_argument(
        "--notify-url",
        action="store_true",
        help="set the webhook the pipeline notifies (Slack-compatible): hidden prompt on a "
        "terminal, else the first line of stdin; written to .env only",
    )
    p.add_argument("--json", action="store_true", help="print the config as JSON")
    p.set_defaults(func=CmdConfig)

    p = subparsers.add_parser(
        "impl",
        parents=[common],
        help="edit retriever.py, processor.py or model.py",
        description="Add dependencies, then open the file in $VISUAL / $EDITOR / vim.",
    )
    p.add_argument("name")
    p.add_argument("file", choices=("retriever", "processor", "model"))
    p.add_argument(
        "-d", "--dependencies", nargs="+", metavar="PKG", help="packages to add and install first"
    )
    p.add_argument("--no-edit", action="store_true", help="do not open an editor")
    p.set_defaults(func=CmdImpl)

    p = subparsers.add_parser(
        "status",
        parents=[common],
        help="a project at a glance",
        description="Data versions, runs, champion and server of a project.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdStatus)

    p = subparsers.add_parser(
        "demo",
        parents=[common],
        help="run the whole loop on two built-in examples (offline)",
        description="Create 'breast-cancer' and "
        "'diabetes' from scikit-learn's bundled datasets, then retrieve, "
        "process, train and crown a champion for each.",
    )
    p.add_argument(
        "--models", nargs="+", metavar="MODEL", help="train only these models (default: all)"
    )
    p.set_defaults(func=CmdDemo)


# ---- commands -----------------------------------------------------------------------------------
class CmdList(Command):
    def result(self) -> Any:
        return self.workspace.projects()

    def show(self, rows: Any) -> None:
        from engine.cli import output

        root = self.workspace.root
        if not rows:
            print(
                f"No projects in {root}. Create one with "
                "`haj init NAME -p classification` (or `haj demo`)."
            )
            return
        output.fast_table(
            f"Projects in {root}",
            [
                "Name",
                "Title",
                "Type",
                "Data",
                "Runs",
                "Champion",
                "Score",
                "Server",
                "Schedule",
                "Pipeline",
            ],
            [
                [
                    r.name,
                    r.title,
                    r.prediction,
                    r.data_versions,
                    r.runs,
                    r.champion or "-",
                    f"{r.metric}={metric_text(r.metric, r.score)}"
                    if r.score is not None and r.metric
                    else "-",
                    r.server or "-",
                    r.schedule or "-",
                    r.pipeline or "-",
                ]
                for r in rows
            ],
        )
        for r in rows:
            if r.error:
                print(f"haj: {r.name} is broken: {r.error}", file=sys.stderr)


def _ask_prediction() -> str:
    if not sys.stdin.isatty():
        raise UsageError(
            "--prediction is required when not on a terminal (classification or regression)"
        )
    while True:
        answer = input("Prediction type [classification/regression]: ").strip().lower()
        for choice in PREDICTIONS:
            if answer and choice.startswith(answer):
                return choice
        print("Please answer classification or regression.")


class CmdInit(Command):
    def run(self) -> int:
        from engine.workspace import EXAMPLES

        args = self.args
        self.workspace.validate_name(args.name)
        if args.example is not None and args.example not in EXAMPLES:
            raise UsageError(f"unknown example {args.example!r}: choose from {', '.join(EXAMPLES)}")
        prediction = args.prediction
        if prediction is None and args.example in EXAMPLES:
            prediction = EXAMPLES[args.example][0]
        prediction = prediction or _ask_prediction()
        project = self.workspace.create(
            args.name, prediction, example=args.example, url=args.url, target=args.target
        )
        name = project.name
        self.console.print(f"Created {prediction} project [bold]{name}[/] in {project.path}")
        self.console.print(
            f"Next: `haj retrieve {name}`, `haj train {name}`, `haj evaluate {name}`"
            if (args.example or args.url)
            else f"Next: `haj config {name} --url URL --target COLUMN`, then `haj retrieve {name}`"
        )
        return 0


class CmdDelete(ProjectCommand):
    def run(self) -> int:
        name = self.project.name
        if not self.args.yes:
            if not sys.stdin.isatty():
                raise UsageError("refusing to delete without confirmation: add --yes")
            answer = input(f"Delete project {name!r} and all its data, runs and models? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                self.console.print("Nothing deleted.")
                return 1
        self.workspace.delete(name)
        self.console.print(f"Deleted {name}")
        return 0


def _read_api_key(prompt: str = "API key") -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{prompt} (input hidden): ").strip()
    return sys.stdin.readline().strip()


class CmdConfig(ProjectCommand):
    """Print the config (`result`/`show`), or apply the changes the flags ask for."""

    def run(self) -> int:
        from engine.cli import output
        from engine.configure import Changes, parse_setting

        args = self.args
        self.project.config()  # a corrupt config is an error before anything changes
        prediction = _ask_prediction() if args.prediction == "ask" else args.prediction
        changes = Changes(
            title=args.title,
            prediction=prediction,
            url=args.url,
            target=args.target,
            metric=args.metric,
            api_key=_read_api_key() if args.api_key else None,
            notify_url=_read_api_key("Notification webhook URL") if args.notify_url else None,
            dependencies=args.dependencies or [],
            settings=dict(parse_setting(text) for text in args.set),
        )
        if changes.empty():
            return super().run()
        _, notes = self.project.apply_changes(changes, on_event=output.event_printer())
        for note in notes:
            self.console.print(note, markup=False)
        return 0

    def result(self) -> dict[str, Any]:
        from engine.data import redact_url

        config = self.project.config()
        config["data"]["url"] = redact_url(config["data"]["url"])  # no password or token shown
        return {
            "config": config,
            "secrets": self.project.secrets(),
            "requirements": self.project.requirements(),
        }

    def show(self, result: dict[str, Any]) -> None:
        console = self.console
        console.print(f"[bold]{self.project.name}[/]  {self.project.project.config_path}")
        for section, values in result["config"].items():
            console.print(f"[{section}]", style="bold cyan", markup=False)
            for key, value in values.items():
                console.print(f"  {key} = {value!r}", markup=False)
        console.print("# .env", style="bold cyan", markup=False)
        if result["secrets"]:
            for key, value in result["secrets"].items():
                console.print(f"  {key} = {value}", markup=False)
        else:
            console.print("  (no secrets)")
        requirements = result["requirements"]
        console.print("# requirements.txt", style="bold cyan", markup=False)
        console.print("  " + (", ".join(requirements) if requirements else "(none)"), markup=False)


class CmdImpl(ProjectCommand):
    def run(self) -> int:
        import shutil
        import subprocess

        from engine.cli import output
        from engine.editor import editor_command

        args = self.args
        path = self.project.code_path(args.file)
        if args.dependencies:
            added = self.project.install(args.dependencies, on_event=output.event_printer())
            self.console.print(f"requirements.txt: added {', '.join(added) or 'nothing new'}")
        if args.no_edit:
            self.console.print(str(path))
            return 0
        command = editor_command()
        if shutil.which(command[0]) is None:
            raise HajError(f"editor {command[0]!r} not found: set $EDITOR (or use --no-edit)")
        code = subprocess.call([*command, str(path)])
        if code != 0:
            raise HajError(
                f"the editor {command[0]!r} exited with code {code}; {path.name} is as it left it"
            )
        return 0


class CmdStatus(ProjectCommand):
    def result(self) -> ProjectStatus:
        return self.project.status()

    def show(self, info: ProjectStatus) -> None:
        console = self.console
        console.print(
            f"[bold]{info.name}[/] — {info.title} ({info.prediction}, "
            f"metric {info.metric})  {info.path}"
        )
        data = info.data
        latest = data.current_raw
        console.print(
            f"  data       {data.raw_versions} raw, {data.processed_versions} processed"
            + (f"; current {latest.id} ({latest.format}, {latest.rows} rows)" if latest else "")
        )
        runs = info.runs
        console.print(
            "  runs       "
            + (", ".join(f"{n} {s}" for s, n in sorted(runs.items())) if runs else "none")
        )
        champion = info.champion
        console.print(
            "  champion   "
            + (
                f"{champion.model} (run {champion.run_id}) "
                f"{champion.metric}={metric_text(champion.metric, champion.value)}"
                if champion
                else "none"
            )
        )
        if info.champion_notice:
            console.print(
                " " * 13 + info.champion_notice, style="yellow", markup=False, highlight=False
            )
        server = info.server
        console.print(
            "  server     "
            + (
                f"http://{server.host}:{server.port} (pid {server.pid})"
                if server
                else "not running"
            )
        )
        for key, line in (("container", info.container), ("deployment", info.deployment)):
            if line:
                console.print(f"  {key:<10} {line}", markup=False)
        console.print(
            f"  schedule   {_schedule_line(info.schedule)}", markup=False, highlight=False
        )
        last = info.pipeline
        if last:
            from datetime import datetime

            when = datetime.fromisoformat(last["started_at"]).astimezone()
            console.print(
                f"  pipeline   last run {when:%Y-%m-%d %H:%M} ({last['trigger']}): "
                f"{last['status']}: {last.get('summary') or ''}".rstrip(": "),
                markup=False,
                highlight=False,
            )


def _schedule_line(schedule: dict[str, Any] | None) -> str:
    """`haj status`'s schedule line: the expression, in words, when next, who runs it."""
    if not schedule:
        return "none (`haj schedule set NAME CRON`)"
    if schedule.get("error"):
        return f"{schedule['schedule']}: {schedule['error']}"
    from datetime import datetime

    from engine.cli.schedule_cmds import when

    text = schedule["schedule"] + (f" ({schedule['explain']})" if schedule.get("explain") else "")
    if schedule.get("next"):
        text += f"; next {when(datetime.fromisoformat(schedule['next'][0]))}"
    if schedule.get("scheduler"):
        text += f"; the scheduler runs it (pid {schedule['scheduler']['pid']})"
    return text + "; `haj schedule status` says more"


class CmdDemo(Command):
    EXAMPLES = (("breast-cancer", "breast_cancer"), ("diabetes", "diabetes"))

    def run(self) -> int:
        from engine.catalog import for_prediction
        from engine.cli import output
        from engine.errors import ProjectExists
        from engine.workspace import EXAMPLES

        root = self.workspace.root
        console = self.console
        models = self.args.models
        for name, example in self.EXAMPLES:
            prediction = EXAMPLES[example][0]
            # --models may mix both types' names: each project trains those of its own type.
            wanted = for_prediction(prediction, models) if models else None
            try:
                project = self.workspace.create(name, prediction, example=example)
                console.print(f"[bold]Created {name}[/] ({prediction}, example:{example})")
            except ProjectExists:
                project = self.workspace.project(name)
                console.print(f"[bold]Using {name}[/] in {root}")
            printer = output.event_printer(verbose=False)
            project.retrieve(printer)
            project.process(None, printer)
            project.train(wanted or None, on_event=printer)
            result = project.crown()
            console.print(
                f"[green]Champion of {name}:[/] {result.run.model} "
                f"{result.metric}={metric_text(result.metric, result.value)}\n"
            )
        haj = output.command_name()
        console.print(
            f"Done. Try `{haj} --home {root} list`, `{haj} --home {root} runs breast-cancer`, "
            f"or `{haj}` for the full-screen app.",
            markup=False,
            highlight=False,
        )
        return 0
