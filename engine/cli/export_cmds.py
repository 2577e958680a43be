"""`haj export NAME --mlflow URI`: copy runs to an MLflow tracking server (engine.export_mlflow)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "export",
        parents=[common],
        help="copy runs (params, metrics, tags, model) to an MLflow tracking server",
        description="Copy runs to an MLflow tracking server: params, metrics (CV std as "
        "<metric>_std, held-out scores as test_<metric>), tags (haj's and yours, haj.run_id, "
        "haj.model, haj.data_version, haj.project; haj.champion on the champion), the model "
        "bundle and the pipeline as an MLflow scikit-learn model (runs:/ID/model). By default "
        "the finished runs of the current data version and the champion. Exporting again "
        "adds nothing twice: runs are found again by their haj.run_id tag. Needs MLflow's "
        "client: pip install 'haj[mlflow]'.",
    )
    p.add_argument("name")
    p.add_argument(
        "--mlflow",
        metavar="URI",
        help="the tracking server, e.g. http://127.0.0.1:5000 (default: $MLFLOW_TRACKING_URI)",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        metavar="RUN",
        help="export these runs (ids or MODEL-#, as `haj runs` shows them)",
    )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        help="the MLflow experiment (default: the project's name; created when missing)",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--data",
        metavar="VERSION",
        help="export the finished runs of this data version (default: the current one)",
    )
    scope.add_argument(
        "--any-data", action="store_true", help="export the finished runs of every data version"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=CmdExport)


class CmdExport(ProjectCommand):
    def result(self) -> Any:
        import os

        from engine.errors import UsageError

        uri = self.args.mlflow or os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri:
            raise UsageError(
                "no MLflow tracking server: give --mlflow URI (or MLFLOW_TRACKING_URI)"
            )
        return self.project.export_mlflow(
            uri,
            runs=self.args.runs,
            experiment=self.args.experiment,
            data=self.args.data,
            any_data=self.args.any_data,
            on_event=self.on_event(),
        )

    def show(self, result: Any) -> int | None:
        from engine.export_mlflow import runs_text

        counts = result.counts
        said = ", ".join(f"{n} {action}" for action, n in counts.items() if n)
        lines = [
            f"exported {runs_text(len(result.runs))} of {result.project} to experiment "
            f"{result.experiment!r} (id {result.experiment_id}): {said}"
        ]
        if result.champion:
            lines.append(f"champion {result.champion} marked (tag haj.champion=true)")
        if result.unmarked:
            gone = runs_text(len(result.unmarked))
            lines.append(f"champion mark taken off {gone} no longer champion")
        lines += [f"note: {note}" for note in result.notes]
        if result.experiment_url:
            lines.append(f"open {result.experiment_url}")
        for line in lines:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        return 0
