"""`haj run NAME` (serve the champion over HTTP) and `haj stop NAME`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.command import ProjectCommand


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "run",
        parents=[common],
        help="serve the project's champion over HTTP",
        description="Serve the champion with FastAPI + uvicorn: POST /predict, GET /health, "
        "/metrics (Prometheus), /predictions_count, /latency, /docs, and the MLflow / SageMaker "
        "contract (GET /ping, POST /invocations). Runs in the foreground (Ctrl-C stops it) "
        "unless --detach. A newly crowned champion is picked up while it runs.",
    )
    p.add_argument("name")
    p.add_argument("--host", help="address to bind (default: [serving] host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: [serving] port, 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "-d", "--detach", action="store_true", help="run in the background; stop with `haj stop`"
    )
    p.set_defaults(func=CmdRun)

    p = subparsers.add_parser(
        "stop",
        parents=[common],
        help="stop a project's detached server (or, with --scheduler, the workspace's scheduler)",
        description="Stop the server started with `haj run NAME --detach` (SIGTERM, then SIGKILL "
        "if it has not stopped within 10 s); `haj stop --scheduler` stops the scheduler of "
        "`haj schedule run`, as `haj schedule stop` does.",
    )
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--scheduler", action="store_true", help="stop the workspace's scheduler instead"
    )
    p.set_defaults(func=_stop)


def _stop(args: argparse.Namespace) -> Any:
    """`haj stop NAME` (a server) or `haj stop --scheduler` (the workspace's scheduler)."""
    from engine.errors import UsageError

    if args.scheduler:
        if args.name:
            raise UsageError("--scheduler stops the workspace's scheduler: give no project name")
        from engine.cli.schedule_cmds import CmdScheduleStop

        return CmdScheduleStop(args)
    if not args.name:
        raise UsageError("give the project whose server to stop (or --scheduler)")
    return CmdStop(args)


class CmdRun(ProjectCommand):
    def run(self) -> int:
        from engine.errors import UsageError

        args = self.args
        if args.port is not None and not 0 < args.port < 65536:
            raise UsageError("--port must be from 1 to 65535")
        if args.workers < 1:
            raise UsageError("--workers must be at least 1")
        name = self.project.name
        console = self.console
        if args.detach:
            record = self.project.start_server(args.host, args.port, args.workers)
            console.print(
                f"Serving [bold]{name}[/]'s champion {record.model} (run "
                f"{record.run_id}) at {record.url} (pid {record.pid}).",
                highlight=False,
            )
            console.print(
                f"Try `curl {record.url}/health`; docs at {record.url}/docs; log in "
                f"{record.log}. Stop it with `haj stop {name}`.",
                markup=False,
                highlight=False,
            )
            return 0

        def announce(ref: Any, url: str) -> None:
            console.print(
                f"Serving [bold]{name}[/]'s champion {ref.model} (run {ref.run_id}) at {url} "
                f"(docs: {url}/docs). Ctrl-C to stop.",
                highlight=False,
            )

        self.project.serve(args.host, args.port, args.workers, announce=announce)
        console.print("Server stopped.")
        return 0


class CmdStop(ProjectCommand):
    def run(self) -> int:
        from engine.errors import ServingError

        name = self.project.name
        record = self.project.server()
        if not self.project.stop_server() or record is None:  # stop also clears a stale record
            raise ServingError(f"no server of {name} is running")
        self.console.print(f"Stopped the server of {name} ({record.url}, pid {record.pid}).")
        return 0
