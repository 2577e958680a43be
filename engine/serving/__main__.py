"""`python -m engine.serving [serve] --project-dir DIR [--host H] [--port P] [--workers N]`

The server process. `haj run` starts it with the project's interpreter; a container runs it as its
command (SageMaker appends `serve`, which is accepted and ignored). The environment can supply
HAJ_PROJECT_DIR and PORT (flags win over the environment, the environment over config.toml).

The champion is located and its sha256 verified before uvicorn starts, so a missing champion or a
tampered file stops the start with one clear line and exit code != 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.serving")
    parser.add_argument("mode", nargs="?", choices=["serve"], help="ignored (SageMaker's argument)")
    parser.add_argument("--project-dir", default=os.environ.get("HAJ_PROJECT_DIR"))
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("HAJ_WORKERS", "1")))
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from engine.errors import HajError

    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return serve(args)
    except HajError as exc:
        sys.stderr.write(f"haj serve: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.errors import ServingError
    from engine.serving.app import create_app, serving_settings
    from engine.serving.control import check_port
    from engine.serving.model import locate_champion, verified_bytes

    if not args.project_dir:
        raise ServingError("no project: pass --project-dir DIR or set HAJ_PROJECT_DIR")
    project_dir = Path(args.project_dir).resolve()
    if not project_dir.is_dir():
        raise ServingError(f"project directory not found: {project_dir}")
    settings = serving_settings(project_dir)
    host = args.host or settings.get("host") or "127.0.0.1"
    port = args.port or int(os.environ.get("PORT") or settings.get("port") or 8000)
    workers = max(1, int(args.workers or 1))
    verified_bytes(locate_champion(project_dir))  # fail fast: no champion, missing or tampered
    check_port(host, port)
    options = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": args.log_level,
        "timeout_graceful_shutdown": 10,
        "loop": _best("uvloop", "auto"),
        "http": _best("httptools", "auto"),
    }
    os.environ["HAJ_PROJECT_DIR"] = str(project_dir)
    os.environ["HAJ_SERVING_WORKERS"] = str(workers)
    if workers == 1:
        uvicorn.run(create_app(project_dir), **options)
    else:
        uvicorn.run("engine.serving.app:app_from_env", factory=True, workers=workers, **options)
    return 0


def _best(module: str, fallback: str) -> str:
    import importlib.util

    return module if importlib.util.find_spec(module) else fallback


if __name__ == "__main__":
    sys.exit(main())
