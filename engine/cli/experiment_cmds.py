"""`haj tag | rerun`, and the side-by-side view `haj runs NAME --compare` prints."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.command import ProjectCommand

if TYPE_CHECKING:
    from engine.api import Comparison, RerunResult, Tagged

NOT_REPRODUCED = 3  # `haj rerun`'s exit code when the metrics do not match


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "tag",
        parents=[common],
        help="set or remove tags of a run",
        description="Set tags of a run (key=value), or remove them (key=); with none, list the "
        "run's tags: yours and those haj records at training (user, host, versions, git "
        "commit, code and environment hashes, seed and test split), which cannot be changed. "
        "Keys: lowercase letters, digits, _ . -. Find runs by tag with "
        "`haj runs NAME --filter tag.KEY=VALUE`.",
    )
    p.add_argument("name")
    p.add_argument("run", metavar="RUN", help="a run id, or MODEL-# as `haj runs` shows it")
    p.add_argument("tags", nargs="*", metavar="KEY=VALUE", help="key=value sets, key= removes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdTag)

    p = subparsers.add_parser(
        "rerun",
        parents=[common],
        help="train a run again and check that it reproduces",
        description="Train the run's model again with the same data version, parameters, seed, "
        "test split and cross-validation folds, as a new run tagged rerun_of=RUN; then say "
        "whether every metric matches (to 1e-9) and, when not, what differs: code hashes, "
        "the environment's packages, haj / scikit-learn / Python versions, parameters. Exit "
        f"code {NOT_REPRODUCED} when it does not reproduce.",
    )
    p.add_argument("name")
    p.add_argument("run", metavar="RUN", help="a run id, or MODEL-# as `haj runs` shows it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdRerun)


class CmdTag(ProjectCommand):
    def result(self) -> Tagged:
        return self.project.tag(self.args.run, self.args.tags)

    def show(self, tagged: Tagged) -> None:
        say = self.console.print
        done = [f"set {k}={v}" for k, v in tagged.set.items()]
        done += [f"removed {k}" for k in tagged.removed]
        done += [f"{k} was not set" for k in tagged.absent]
        head = f"{tagged.label} (run {tagged.run_id})"
        say(f"{head}: {'; '.join(done)}" if done else head, highlight=False, markup=False)
        mine = ", ".join(f"{k}={v}" for k, v in tagged.tags.items()) or "none"
        say(f"  tags: {mine}", highlight=False, markup=False, soft_wrap=True)
        if not self.args.tags:  # a listing: haj's own tags too
            for key, value in tagged.automatic.items():
                say(f"  {key} = {value}", style="dim", highlight=False, markup=False)


class CmdRerun(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output

        result = self.project.rerun(self.args.run, on_event=self.on_event(verbose=False))
        if self.json:
            output.write_json(result)
        else:
            self.show(result)
        return 0 if result.matches else NOT_REPRODUCED

    def show(self, result: RerunResult) -> None:
        from engine.compare import delta_text
        from engine.numbers import metric_text

        say = self.console.print
        style = "bold green" if result.matches else "bold red"
        say(result.verdict(), style=style, highlight=False, markup=False, soft_wrap=True)
        source, run = result.source["label"], result.run["label"]
        if result.metrics:
            from rich.table import Table

            table = Table(box=None, padding=(0, 2), header_style="bold")
            for title in ("metric", source, run, "delta", ""):
                table.add_column(title, justify="left" if title == "metric" else "right")
            for check in result.metrics:
                table.add_row(
                    check.name,
                    metric_text(check.name, check.before),
                    metric_text(check.name, check.after),
                    delta_text(check.name, check.delta),
                    "=" if check.same else "≠",
                )
            say(table)
        for difference in result.differences:
            say(
                f"  differs: {difference.what}: {_short(difference.before)} -> "
                f"{_short(difference.after)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            for line in difference.detail:
                say(f"    {line}", highlight=False, markup=False)
        for note in result.notes:
            say(f"  note: {note}", style="yellow", highlight=False, markup=False, soft_wrap=True)
        say(f"  the rerun is run {result.run['id']} ({run}, tagged rerun_of={result.source['id']})")


def _short(value: Any, width: int = 12) -> str:
    """A recorded value as shown: a sha256 cut to its first 12 digits."""
    if value is None:
        return "not recorded"
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:width]
    return text


def show_comparison(console: Any, comparison: Comparison) -> None:
    """`haj runs NAME --compare`: the runs in columns, what differs in rows (≠ flags a
    difference), metrics with their difference to the first run."""
    from rich.table import Table
    from rich.text import Text

    labels = comparison.labels
    table = Table(
        title=f"{' vs '.join(labels)} (differences to {labels[0]})",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("", no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right", no_wrap=True)
    flag = Text("≠ ", style="bold yellow")

    def name(text: str, differs: bool) -> Text:
        return Text.assemble(flag if differs else "  ", text)

    same = comparison.same_params
    table.add_row(Text(f"parameters ({same} the same, not shown)", style="bold"))
    if not comparison.params:
        table.add_row(Text("  none differs", style="dim"))
    for row in comparison.params:
        cells = ["-" if gone else str(v) for v, gone in zip(row.values, row.absent, strict=True)]
        table.add_row(name(row.name, True), *cells)
    table.add_section()
    table.add_row(Text("metrics", style="bold"))
    for metric in comparison.metrics:
        cells = []
        for i, value in enumerate(metric.texts):
            text = Text(value)
            if i:
                better = metric.better[i]
                style = "green" if better else "red" if better is False else "dim"
                text.append(f" ({metric.delta_texts[i]})", style=style)
            cells.append(text)
        table.add_row(name(metric.name, metric.differs), *cells)
    table.add_section()
    rows = [comparison.data] if comparison.data else []
    table.add_row(Text("data, code and environment", style="bold"))
    for row in [*rows, *comparison.provenance]:
        table.add_row(name(row.name, row.differs), *(_short(v) for v in row.values))
    if comparison.tags:
        table.add_section()
        table.add_row(Text("tags", style="bold"))
        for row in comparison.tags:
            table.add_row(
                name(row.name, row.differs), *("-" if v is None else v for v in row.values)
            )
    console.print(table)
    if comparison.unrecorded:
        console.print(
            f"{', '.join(comparison.unrecorded)}: trained before haj recorded code and "
            "environment hashes",
            style="yellow",
            highlight=False,
            markup=False,
        )
    differs = comparison.differences()
    if differs:
        console.print(
            f"≠ recorded at training: {', '.join(differs)} differ",
            style="yellow",
            highlight=False,
            markup=False,
        )
