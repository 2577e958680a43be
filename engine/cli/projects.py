"""`haj list | init | delete | config | impl | status | demo`."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from typing import Any

from engine.cli import home_of
from engine.editor import editor_command
from engine.errors import HajError, UsageError

PREDICTIONS = ("classification", "regression")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "list",
        parents=[common],
        help="list the workspace's projects",
        description="A table of the workspace's projects.",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_list)

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
    p.set_defaults(func=cmd_init)

    p = subparsers.add_parser(
        "delete",
        parents=[common],
        help="delete a project",
        description="Delete a project and everything in it.",
    )
    p.add_argument("name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_delete)

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
        "--api-key",
        action="store_true",
        help="set the API key: hidden prompt on a terminal, else the first line of "
        "stdin; written to .env only",
    )
    p.add_argument("--json", action="store_true", help="print the config as JSON")
    p.set_defaults(func=cmd_config)

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
    p.set_defaults(func=cmd_impl)

    p = subparsers.add_parser(
        "status",
        parents=[common],
        help="a project at a glance",
        description="Data versions, runs, champion and server of a project.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

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
    p.set_defaults(func=cmd_demo)


# ---- commands -----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output

    root = home_of(args)
    rows = workspace.list_projects(root)
    if args.json:
        output.print_json(rows)
        return 0
    if not rows:
        print(
            f"No projects in {root}. Create one with "
            "`haj init NAME -p classification` (or `haj demo`)."
        )
        return 0
    output.fast_table(
        f"Projects in {root}",
        ["Name", "Title", "Type", "Data", "Runs", "Champion", "Score", "Server"],
        [
            [
                r["name"],
                r["title"],
                r["prediction"],
                r["data_versions"],
                r["runs"],
                r["champion"] or "-",
                f"{r['metric']}={output.fmt(r['score'])}" if r["score"] is not None else "-",
                r["server"] or "-",
            ]
            for r in rows
        ],
    )
    for r in rows:
        if r["error"]:
            print(f"haj: {r['name']} is broken: {r['error']}", file=sys.stderr)
    return 0


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


def cmd_init(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output
    from engine.names import validate_name

    validate_name(args.name)
    if args.example is not None and args.example not in workspace.EXAMPLES:
        raise UsageError(
            f"unknown example {args.example!r}: choose from {', '.join(workspace.EXAMPLES)}"
        )
    prediction = args.prediction
    if prediction is None and args.example in workspace.EXAMPLES:
        prediction = workspace.EXAMPLES[args.example][0]
    prediction = prediction or _ask_prediction()
    project = workspace.create_project(
        home_of(args), args.name, prediction, example=args.example, url=args.url, target=args.target
    )
    output.console().print(
        f"Created {prediction} project [bold]{project.name}[/] in {project.path}"
    )
    output.console().print(
        f"Next: `haj retrieve {project.name}`, `haj train {project.name}`, "
        f"`haj evaluate {project.name}`"
        if (args.example or args.url)
        else f"Next: `haj config {project.name} --url URL --target COLUMN`, then `haj retrieve "
        f"{project.name}`"
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output

    root = home_of(args)
    project = workspace.get_project(root, args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to delete without confirmation: add --yes")
        answer = input(f"Delete project {project.name!r} and all its data, runs and models? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            output.console().print("Nothing deleted.")
            return 1
    workspace.delete_project(root, project.name)
    output.console().print(f"Deleted {project.name}")
    return 0


def _read_api_key() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("API key (input hidden): ").strip()
    return sys.stdin.readline().strip()


def cmd_config(args: argparse.Namespace) -> int:
    from engine import configure, workspace
    from engine.cli import output

    root = home_of(args)
    project = workspace.get_project(root, args.name)
    project.read_config()  # a corrupt config is an error before anything changes
    prediction = args.prediction
    if prediction == "ask":
        prediction = _ask_prediction()
    changes = configure.Changes(
        title=args.title,
        prediction=prediction,
        url=args.url,
        target=args.target,
        metric=args.metric,
        api_key=_read_api_key() if args.api_key else None,
        dependencies=args.dependencies or [],
    )
    if changes.empty():
        _print_config(project, args.json)
        return 0
    project, notes = configure.apply(root, project, changes, on_event=output.event_printer())
    for note in notes:
        output.console().print(note, markup=False)
    return 0


def _print_config(project: Any, as_json: bool) -> None:
    from engine import deps
    from engine.cli import output
    from engine.data import redact_url
    from engine.project import mask

    config = project.read_config()
    config["data"]["url"] = redact_url(config["data"]["url"])  # no password or token shown
    secrets = {k: mask(v) for k, v in project.read_secrets().items()}
    if as_json:
        output.print_json(
            {"config": config, "secrets": secrets, "requirements": deps.requirements(project)}
        )
        return
    console = output.console()
    console.print(f"[bold]{project.name}[/]  {project.config_path}")
    for section, values in config.items():
        console.print(f"[{section}]", style="bold cyan", markup=False)
        for key, value in values.items():
            console.print(f"  {key} = {value!r}", markup=False)
    console.print("# .env", style="bold cyan", markup=False)
    if secrets:
        for key, value in secrets.items():
            console.print(f"  {key} = {value}", markup=False)
    else:
        console.print("  (no secrets)")
    requirements = deps.requirements(project)
    console.print("# requirements.txt", style="bold cyan", markup=False)
    console.print("  " + (", ".join(requirements) if requirements else "(none)"), markup=False)


def cmd_impl(args: argparse.Namespace) -> int:
    from engine import deps, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    path = project.code_path(args.file)
    if args.dependencies:
        for package in args.dependencies:
            deps.parse_requirement(package)
        added = deps.install(project, args.dependencies, on_event=output.event_printer())
        output.console().print(f"requirements.txt: added {', '.join(added) or 'nothing new'}")
    if args.no_edit:
        output.console().print(str(path))
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


def cmd_status(args: argparse.Namespace) -> int:
    from engine import status, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    info = status.project_status(project)
    if args.json:
        output.print_json(info)
        return 0
    console = output.console()
    console.print(
        f"[bold]{info['name']}[/] — {info['title']} ({info['prediction']}, "
        f"metric {info['metric']})  {info['path']}"
    )
    data = info["data"]
    latest = data.get("current_raw")
    console.print(
        f"  data       {data.get('raw_versions', 0)} raw, "
        f"{data.get('processed_versions', 0)} processed"
        + (
            f"; current {latest['id']} ({latest['format']}, {latest['rows']} rows)"
            if latest
            else ""
        )
    )
    runs = info["runs"]
    console.print(
        "  runs       "
        + (", ".join(f"{n} {s}" for s, n in sorted(runs.items())) if runs else "none")
    )
    champion = info["champion"]
    console.print(
        "  champion   "
        + (
            f"{champion['model']} (run {champion['run_id']}) "
            f"{champion['metric']}={output.fmt(champion['value'])}"
            if champion
            else "none"
        )
    )
    server = info.get("server")
    console.print(
        "  server     "
        + (
            f"http://{server.get('host')}:{server.get('port')} (pid {server.get('pid')})"
            if server
            else "not running"
        )
    )
    for key in ("container", "deployment"):
        if info.get(key):
            console.print(f"  {key:<10} {info[key]}", markup=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from engine import catalog, champion, data, training, workspace
    from engine.cli import output
    from engine.errors import ProjectExists

    root = home_of(args)
    console = output.console()
    examples = (("breast-cancer", "breast_cancer"), ("diabetes", "diabetes"))
    # --models may mix both types' names: each project trains those of its own type.
    wanted = {
        example: catalog.for_prediction(workspace.EXAMPLES[example][0], args.models)
        if args.models
        else None
        for _, example in examples
    }
    for name, example in examples:
        prediction = workspace.EXAMPLES[example][0]
        try:
            project = workspace.create_project(root, name, prediction, example=example)
            console.print(f"[bold]Created {name}[/] ({prediction}, example:{example})")
        except ProjectExists:
            project = workspace.get_project(root, name)
            console.print(f"[bold]Using {name}[/] in {root}")
        printer = output.event_printer(verbose=False)
        data.retrieve(project, printer)
        data.process(project, None, printer)
        training.train(project, wanted[example] or None, printer)
        result = champion.crown(project)
        console.print(
            f"[green]Champion of {name}:[/] {result['run']['model']} "
            f"{result['metric']}={output.fmt(result['value'])}\n"
        )
    console.print(
        f"Done. Try `haj --home {root} list`, `haj --home {root} runs breast-cancer`, "
        "or `haj` for the full-screen app."
    )
    return 0
