"""`haj diagnose`: a project's health at a glance (engine.diagnose)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "diagnose",
        parents=[common],
        help="missing values, step timings, outdated dependencies, champion age, predictions/day",
        description="A project's health: missing values per column of the current data and of "
        "live traffic (a running server's /diagnostics), how long retrieve, process and the "
        "last training took, the outdated packages of the project's environment "
        "(requirements.txt and haj's serving packages; offline, the installed versions), the "
        "champion's age and the predictions logged per day over the last 7 days.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdDiagnose)


class CmdDiagnose(ProjectCommand):
    def result(self) -> Any:
        import sys

        if self.json or not sys.stdout.isatty():
            return self.project.diagnose()
        with self.console.status("diagnosing (asking the package index)…"):
            return self.project.diagnose()

    def show(self, result: Any) -> int | None:
        console = self.console
        notes = result.notes
        console.print(f"[bold]{result.project}[/] — diagnosis at {result.at}")
        _missing(console, result.data_missing, result.live_missing, notes)
        _timings(console, result.timings, notes)
        _dependencies(console, result.dependencies)
        _champion(console, result.champion)
        _predictions(console, result.predictions, notes)
        return 0


def _line(console: Any, text: str, style: str = "") -> None:
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _share(share: float | None) -> str:
    if share is None:
        return "-"
    if share == 0:
        return "0%"
    percent = share * 100
    return "<0.1%" if percent < 0.1 else f"{percent:.1f}%"


def _table(console: Any, title: str, columns: list[tuple[str, str]]) -> Any:
    """A table under its title (a line of its own: a title as wide as the table would wrap)."""
    from rich.table import Table

    _line(console, title, "bold")
    table = Table(header_style="bold")
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    return table


def _missing(console: Any, data: Any, live: Any, notes: dict[str, str]) -> None:
    console.print()
    if data is None and live is None:
        _line(console, f"missing values: {notes.get('data', 'no data yet')}; {notes['live']}")
        return
    parts = [f"{data.source} ({data.rows:,} rows)" if data else notes.get("data", "no data")]
    parts.append(f"live: {live.rows:,} rows from {live.source}" if live else notes["live"])
    columns = [("column", "left")]
    if data:
        columns += [("data missing", "right"), ("data %", "right")]
    if live:
        columns += [("live missing", "right"), ("live %", "right")]
    table = _table(console, "missing values: " + "; ".join(parts), columns)
    in_data = {c.column: c for c in data.columns} if data else {}
    in_live = {c.column: c for c in live.columns} if live else {}
    for name in [*in_data, *(n for n in in_live if n not in in_data)]:
        row = [name]
        for source, present in ((in_data, data), (in_live, live)):
            if present:
                entry = source.get(name)
                row += [f"{entry.count:,}", _share(entry.share)] if entry else ["-", "-"]
        table.add_row(*row)
    console.print(table)


def _timings(console: Any, timings: list[Any], notes: dict[str, str]) -> None:
    from engine.api import duration_text

    console.print()
    if not timings:
        _line(console, f"step timings: {notes.get('timings', 'none')}")
        return
    table = _table(
        console,
        "step timings",
        [("step", "left"), ("what", "left"), ("time", "right"), ("fit", "right")],
    )
    for t in timings:
        what = t.subject if t.status in (None, "finished") else f"{t.subject} ({t.status})"
        table.add_row(t.step, what, duration_text(t.seconds) or "-", duration_text(t.fit_seconds))
    console.print(table)


def _dependencies(console: Any, deps: Any) -> None:
    console.print()
    count = len(deps.packages)
    about = f"{count} packages: requirements.txt and haj's serving stack, for {deps.python}"
    if deps.not_installed:
        _line(console, f"not installed: {', '.join(deps.not_installed)}", "yellow")
    if not deps.index_checked:
        _line(console, f"dependencies: {deps.note}", "yellow")
        table = _table(
            console, f"installed ({about})", [("package", "left"), ("installed", "right")]
        )
        for package in deps.packages:
            table.add_row(package.package, package.installed or "-")
        console.print(table)
        return
    if not deps.outdated:
        _line(console, f"dependencies: all up to date ({about})")
        return
    table = _table(
        console,
        f"outdated dependencies ({len(deps.outdated)} of {about})",
        [("package", "left"), ("installed", "right"), ("latest", "right")],
    )
    for package in deps.outdated:
        table.add_row(package.package, package.installed or "-", package.latest or "-")
    console.print(table)


def age_text(seconds: float) -> str:
    """How long ago, as people say it: `42s`, `5m`, `3h 05m`, `2d 04h`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes}m"
    if hours < 24:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24:02d}h"


def _champion(console: Any, champion: Any) -> None:
    from engine.api import metric_text

    console.print()
    if champion is None:
        _line(console, "champion: none")
        return
    score = (
        f", {champion.metric} {metric_text(champion.metric, champion.value)}"
        if champion.metric and champion.value is not None
        else ""
    )
    _line(
        console,
        f"champion: {champion.label} (run {champion.run_id}{score}), crowned "
        f"{age_text(champion.age_seconds)} ago ({champion.crowned_at})",
    )


def _predictions(console: Any, days: list[Any], notes: dict[str, str]) -> None:
    console.print()
    if "predictions" in notes:
        _line(console, f"predictions per day: {notes['predictions']}")
        return
    table = _table(
        console,
        "predictions per day (UTC; batch: the sample `haj predict` logs)",
        [("day", "left"), ("served", "right"), ("requests", "right"), ("batch", "right")],
    )
    for day in days:
        table.add_row(day.day, f"{day.served:,}", f"{day.requests:,}", f"{day.batch_logged:,}")
    console.print(table)
