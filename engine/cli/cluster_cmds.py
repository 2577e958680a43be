"""`haj cluster start | stop | status | check | run`: a Dask cluster for training (engine.cluster).

A project trains on a cluster with `[training] backend = "dask"` (and `scheduler`, or
$HAJ_DASK_SCHEDULER), or for one command with `haj train NAME --cluster ADDR`.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import Command


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "cluster",
        parents=[common],
        help="a Dask cluster to train on: start a local one, check one's workers",
        description="Training runs its fits on a Dask cluster with [training] backend = "
        '"dask" and [training] scheduler = "tcp://HOST:8786" (or $HAJ_DASK_SCHEDULER), or '
        "for one command with `haj train NAME --cluster ADDR`. `haj cluster start` runs a "
        "local one on 127.0.0.1 (a scheduler and worker processes) to try it with.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def sizing(v: argparse.ArgumentParser) -> None:
        v.add_argument("--workers", type=int, required=True, metavar="N", help="worker processes")
        v.add_argument(
            "--threads", type=int, default=1, metavar="T", help="threads per worker (default 1)"
        )
        v.add_argument(
            "--port",
            type=int,
            default=8786,
            metavar="P",
            help="the scheduler's port on 127.0.0.1 (default 8786; 0: any free port)",
        )

    v = verbs.add_parser(
        "start",
        parents=[common],
        help="start a local Dask cluster on 127.0.0.1 in the background",
        description="A Dask scheduler and N worker processes on 127.0.0.1, in the background, "
        "recorded in the workspace (log: WORKSPACE/.haj-cluster.log); a project whose "
        '[training] backend is "dask" and names no scheduler trains on it. `haj cluster '
        "stop` stops it.",
    )
    sizing(v)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=CmdClusterStart)

    v = verbs.add_parser(
        "stop",
        parents=[common],
        help="stop the workspace's local Dask cluster",
        description="Stop the cluster of `haj cluster start` (SIGTERM: it closes its workers; "
        "then its process group is killed).",
    )
    v.set_defaults(func=CmdClusterStop)

    v = verbs.add_parser(
        "status",
        parents=[common],
        help="the workspace's local Dask cluster, if one runs",
        description="The address, pid and size of the cluster `haj cluster start` started.",
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=CmdClusterStatus)

    v = verbs.add_parser(
        "check",
        parents=[common],
        help="a cluster's workers (cores, memory) and their packages beside this environment's",
        description="Connect to the scheduler at ADDR (default: the project's [training] "
        "scheduler, else $HAJ_DASK_SCHEDULER, else the local cluster) and compare each worker's "
        "packages with this environment's: haj's serving stack, dask and distributed, haj's "
        "engine, Python, and with --project the project's requirements.txt. Training refuses a "
        "cluster where they differ. Exit code 14 when they do.",
    )
    v.add_argument("address", nargs="?", metavar="ADDR", help="tcp://HOST:8786")
    v.add_argument("-p", "--project", metavar="NAME", help="also the project's requirements")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=CmdClusterCheck)

    v = verbs.add_parser(
        "run",
        parents=[common],
        help="run a local Dask cluster in the foreground (what `start` runs)",
        description="A Dask scheduler and N worker processes on 127.0.0.1 until Ctrl-C or "
        "SIGTERM, recorded in the workspace while it runs.",
    )
    sizing(v)
    v.set_defaults(func=CmdClusterRun)


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size else "-"


class CmdClusterStart(Command):
    def run(self) -> int:
        from engine.cli import output

        args = self.args
        record = self.workspace.start_cluster(args.workers, args.threads, args.port)
        if self.json:
            output.write_json(record)
            return 0
        self.console.print(
            f"Local Dask cluster at {record['address']} (pid {record['pid']}): "
            f"{record['workers']} worker process(es) of {record['threads']} thread(s); log in "
            f"{record['log']}.\nTrain on it: `haj train NAME --cluster {record['address']}`, or "
            '[training] backend = "dask" in a project\'s config.toml. `haj cluster stop` '
            "stops it.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 0


class CmdClusterStop(Command):
    def run(self) -> int:
        from engine.errors import HajError

        record = self.workspace.stop_cluster()
        if record is None:
            raise HajError(f"no local cluster runs for {self.workspace.root}")
        self.console.print(
            f"Stopped the local Dask cluster at {record['address']} (pid {record['pid']}).",
            markup=False,
            highlight=False,
        )
        return 0


class CmdClusterStatus(Command):
    def result(self) -> dict[str, Any] | None:
        return self.workspace.cluster()

    def show(self, record: dict[str, Any] | None) -> None:
        if record is None:
            self.console.print(
                f"No local cluster runs for {self.workspace.root} (`haj cluster start "
                "--workers N` starts one).",
                markup=False,
                highlight=False,
            )
            return
        self.console.print(
            f"Local Dask cluster at {record['address']} (pid {record['pid']}, since "
            f"{record.get('started_at')}): {record['workers']} worker process(es) of "
            f"{record['threads']} thread(s); log in {record.get('log')}.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


class CmdClusterCheck(Command):
    def run(self) -> int:
        from engine.cli import output
        from engine.errors import ClusterError

        report = self.workspace.check_cluster(self.args.address, self.args.project)
        if self.json:
            output.write_json(report.to_dict())
        else:
            self.show(report)
        return 0 if report.ok else ClusterError.exit_code

    def show(self, report: Any) -> None:
        from engine.cli import output
        from engine.cluster import workers_text

        say = self.console.print
        say(
            f"Dask cluster {report.address}: {workers_text(report.workers)}",
            markup=False,
            highlight=False,
        )
        output.table(
            None,
            ["Worker", "Host", "Pid", "Threads", "Memory"],
            [
                [w.address, w.host, str(w.pid or "-"), str(w.threads), _gib(w.memory)]
                for w in report.workers
            ],
        )
        addresses = [w.address for w in report.workers]
        wrong = [row for row in report.packages if not row.ok]
        if not wrong:
            listed = ", ".join(f"{row.name} {row.here}" for row in report.packages)
            say(
                f"Packages: every worker has this environment's versions ({listed}).",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return
        output.table(
            "Packages that differ (- : not installed)",
            ["Package", "Here", *addresses],
            [
                [row.name, row.here or "-", *(row.workers.get(a) or "-" for a in addresses)]
                for row in wrong
            ],
        )
        say(
            f"{len(report.packages) - len(wrong)} other package(s) match. Training refuses "
            f"this cluster until the workers have the same versions: {report.differences}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


class CmdClusterRun(Command):
    def run(self) -> int:
        args = self.args

        def say(text: str) -> None:
            print(text, flush=True)

        self.workspace.run_cluster(args.workers, args.threads, args.port, say=say)
        return 0
