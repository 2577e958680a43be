"""`haj retrieve | process | data`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand
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
    p.set_defaults(func=CmdRetrieve)

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
    p.set_defaults(func=CmdProcess)

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
    p.set_defaults(func=CmdData)


class CmdRetrieve(ProjectCommand):
    def result(self) -> dict[str, Any]:
        return self.project.retrieve(self.on_event())

    def show(self, result: dict[str, Any]) -> None:
        """The events said it all."""


class CmdProcess(ProjectCommand):
    def result(self) -> dict[str, Any]:
        return self.project.process(self.args.version, self.on_event())

    def show(self, result: dict[str, Any]) -> None:
        """The events said it all."""


class CmdData(ProjectCommand):
    """The data versions, or with --show one version's first rows and column summary."""

    def result(self) -> Any:
        if not self.args.show:
            return self.project.versions()
        info = self.project.preview(self.args.show)
        if self.json:
            return {
                "version": info["version"],
                "summary": info["summary"],
                "head": info["head"].to_dict(orient="records"),
            }
        return info

    def show(self, result: Any) -> None:
        if self.args.show:
            _show_version(self.args.show, result)
        else:
            self._show_versions(result)

    def _show_versions(self, versions: list[dict[str, Any]]) -> None:
        from engine.cli import output

        name = self.project.name
        if not versions:
            self.console.print(f"No data yet: run `haj retrieve {name}`.")
            return
        output.table(
            f"Data versions of {name}",
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
        self.console.print(
            f"Current: {raw} (retrieved most recently). `haj train {name}` uses "
            + (
                f"{processed}."
                if processed
                else f"{raw} processed with the current processor.py and target (not made yet)."
            )
        )


def _time(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else "-"


def _show_version(version_id: str, info: dict[str, Any]) -> None:
    from engine.cli import output

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
