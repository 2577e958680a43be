"""`haj train | runs | evaluate | models`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli import home_of


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
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "models",
        parents=[common],
        help="list the models a project can train",
        description="The built-in catalog for the project's type, and the models model.py adds.",
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_models)

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
    p.set_defaults(func=cmd_runs)

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
    p.set_defaults(func=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    from engine import training, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    if args.json:
        from engine import events

        output.print_json(training.train(project, args.models, events.ignore, data=args.data))
        return 0
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine import events

    console = output.console()
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

        result = training.train(project, args.models, on_event, data=args.data)
    finished = [r for r in result["runs"] if r["status"] == "finished"]
    failed = [r for r in result["runs"] if r["status"] != "finished"]
    console.print(
        f"[green]{len(finished)} finished[/]"
        + (f", [red]{len(failed)} failed[/]" if failed else "")
        + f" on {result['data_version']}. Next: `haj runs {project.name}`, "
        f"`haj evaluate {project.name}`"
    )
    return 0 if finished else 1


def cmd_models(args: argparse.Namespace) -> int:
    from engine import catalog, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    prediction = project.read_config()["project"]["prediction"]
    extra = catalog.project_model_names(project)  # a name clash in model.py is an error here
    output.console().print(
        f"Built-in {prediction} models: " + ", ".join(catalog.builtin_names(prediction))
    )
    output.console().print("From model.py: " + (", ".join(extra) if extra else "none"))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from engine import runs, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    board = runs.leaderboard(project, metric=args.metric, limit=args.limit, include_all=args.all)
    if args.json:
        output.print_json(board)
        return 0
    if not board["runs"]:
        output.console().print(_no_runs(project, args))
        return 0
    champion = board["champion"]["run_id"] if board["champion"] else None
    metric_names = board["metrics"]
    direction = "higher" if board["higher_is_better"] else "lower"
    errors = any(r["error"] for r in board["runs"])
    output.table(
        f"Runs of {project.name} by {board['metric']}, best first ({direction} is better)",
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
            for i, r in enumerate(board["runs"], 1)
        ],
    )
    return 0


def _no_runs(project: Any, args: argparse.Namespace) -> str:
    """Why the leaderboard is empty: no run at all, or only runs it does not show."""
    from collections import Counter

    from engine import runs

    if args.all:
        return f"No runs yet: `haj train {project.name}`."
    hidden = runs.leaderboard(project, metric=args.metric, include_all=True)["runs"]
    if not hidden:
        return f"No runs yet: `haj train {project.name}`."
    counts = Counter(
        r["status"] if r["status"] != "finished" else f"finished {r['prediction']}" for r in hidden
    )
    listed = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (
        f"No finished runs to rank, but {len(hidden)} run(s) exist: {listed}. "
        f"See them and their errors with `haj runs {project.name} --all`."
    )


def _short(error: str | None, width: int = 60) -> str:
    if not error:
        return ""
    line = error.splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine import champion, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    result = champion.crown(project, args.metric)
    if args.json:
        output.print_json(result)
        return 0
    console = output.console()
    run = result["run"]
    console.print(
        f"♛ Champion of [bold]{project.name}[/]: [bold green]{run['model']}[/] "
        f"(run {run['id']}, data {run['data_version']})  "
        f"{result['metric']} = [bold]{output.fmt(result['value'])}[/]"
    )
    if result["runner_up"]:
        runner = result["runner_up"]
        console.print(
            f"  margin to runner-up {runner['model']} ({output.fmt(runner['value'])}): "
            f"{output.fmt(result['margin'])}"
        )
    previous = result["previous"]
    if previous and previous["run_id"] != run["id"]:
        console.print(
            f"  replaces {previous['model']} (run {previous['run_id']}, "
            f"{previous['metric']}={output.fmt(previous['value'])})"
        )
    console.print(f"  model file: {result['path']}")
    return 0
