"""`haj retrieve | process | data`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli import home_of
from engine.units import human_size


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "retrieve",
        parents=[common],
        help="run retriever.py and version the data",
        description="Run the project's retriever.py and store "
        "the result as a new raw version when its content is new.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retrieve)

    p = subparsers.add_parser(
        "process",
        parents=[common],
        help="run processor.py on a raw version",
        description="Run processor.py on a raw version (default: the current one, which the "
        "source returned most recently) and store the processed dataset as a version.",
    )
    p.add_argument("name")
    p.add_argument(
        "--version", metavar="V", help="the raw version id (see `haj data NAME`; default: current)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_process)

    p = subparsers.add_parser(
        "data",
        parents=[common],
        help="list data versions",
        description="List a project's raw and processed data versions; ✓ marks the current "
        "raw version and the processed version `haj train` would use.",
    )
    p.add_argument("name")
    p.add_argument("--show", metavar="V", help="print a version's first rows and column summary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data)


def cmd_retrieve(args: argparse.Namespace) -> int:
    from engine import data, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    result = data.retrieve(project, _quiet() if args.json else output.event_printer())
    if args.json:
        output.print_json(result)
    return 0


def _quiet() -> Any:
    from engine import events

    return events.ignore


def cmd_process(args: argparse.Namespace) -> int:
    from engine import data, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    result = data.process(project, args.version, _quiet() if args.json else output.event_printer())
    if args.json:
        output.print_json(result)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from engine import data, workspace
    from engine.cli import output

    project = workspace.get_project(home_of(args), args.name)
    if args.show:
        return _show(project, args.show, args.json)
    versions = data.versions(project)
    if args.json:
        output.print_json(versions)
        return 0
    if not versions:
        output.console().print(f"No data yet: run `haj retrieve {project.name}`.")
        return 0
    output.table(
        f"Data versions of {project.name}",
        [
            "Current",
            "Id",
            "Kind",
            "Format",
            "Rows",
            "Columns",
            "Size",
            "Parent",
            "Source",
            "Created",
            "Retrieved",
            "File",
        ],
        [
            [
                "✓" if v["current"] else "",
                v["id"],
                v["kind"],
                v["format"],
                v["rows"],
                v["columns"],
                human_size(v["bytes"]),
                v["parent"] or "-",
                v["source"],
                _time(v["created_at"]),
                _time(v["last_retrieved_at"]),
                v["path"],
            ]
            for v in versions
        ],
    )
    current = {v["kind"]: v["id"] for v in versions if v["current"]}
    raw, processed = current.get("raw"), current.get("processed")
    output.console().print(
        f"Current: {raw} (retrieved most recently). `haj train {project.name}` uses "
        + (
            f"{processed}."
            if processed
            else f"{raw} processed with the current processor.py and target (not made yet)."
        )
    )
    return 0


def _time(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else "-"


def _show(project: Any, version_id: str, as_json: bool) -> int:
    from engine import data
    from engine.cli import output

    info = data.preview(project, version_id)
    if as_json:
        output.print_json(
            {
                "version": info["version"],
                "summary": info["summary"],
                "head": info["head"].to_dict(orient="records"),
            }
        )
        return 0
    head = info["head"]
    output.table(
        f"{version_id}: first {len(head)} rows",
        [str(c) for c in head.columns],
        [[output.fmt(v) for v in row] for row in head.itertuples(index=False)],
    )
    output.table(
        "Columns",
        ["Column", "Type", "Missing %", "Unique", "Min", "Mean", "Max", "Top"],
        [
            [
                s["column"],
                s["type"],
                s["missing_pct"],
                s["unique"],
                s.get("min"),
                s.get("mean"),
                s.get("max"),
                ", ".join(s.get("top", [])),
            ]
            for s in info["summary"]
        ],
    )
    return 0
