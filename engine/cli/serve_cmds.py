"""`haj run NAME` (serve the champion over HTTP) and `haj stop NAME`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli import home_of


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
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser(
        "stop",
        parents=[common],
        help="stop a project's detached server",
        description="Stop the server started with `haj run NAME --detach` (SIGTERM, then SIGKILL "
        "if it has not stopped within 10 s).",
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_stop)


def cmd_run(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output
    from engine.errors import UsageError
    from engine.serving import control

    project = workspace.get_project(home_of(args), args.name)
    settings = project.read_config()["serving"]
    host = args.host or settings["host"]
    port = args.port if args.port is not None else int(settings["port"])
    if not 0 < port < 65536:
        raise UsageError("--port must be from 1 to 65535")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    console = output.console()
    if args.detach:
        record = control.start_detached(project, host=host, port=port, workers=args.workers)
        console.print(
            f"Serving [bold]{project.name}[/]'s champion {record['model']} (run "
            f"{record['run_id']}) at {record['url']} (pid {record['pid']}).",
            highlight=False,
        )
        console.print(
            f"Try `curl {record['url']}/health`; docs at {record['url']}/docs; log in "
            f"{record['log']}. Stop it with `haj stop {project.name}`.",
            markup=False,
            highlight=False,
        )
        return 0

    def announce(ref: Any, url: str) -> None:
        console.print(
            f"Serving [bold]{project.name}[/]'s champion {ref.model} (run {ref.run_id}) at {url} "
            f"(docs: {url}/docs). Ctrl-C to stop.",
            highlight=False,
        )

    control.serve_foreground(project, host, port, args.workers, announce=announce)
    console.print("Server stopped.")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output
    from engine.errors import ServingError
    from engine.serving import control

    project = workspace.get_project(home_of(args), args.name)
    record = control.server_status(project)
    if record is None or not control.stop(project):
        raise ServingError(f"no server of {project.name} is running")
    output.console().print(
        f"Stopped the server of {project.name} ({record.get('url')}, pid {record['pid']})."
    )
    return 0
