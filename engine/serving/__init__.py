"""Serving a project's champion over HTTP: the FastAPI app (app.py), the model and its hot switch
(model.py), request validation (inputs.py), monitoring (monitoring.py) and process control
(control.py: start, detach, status, stop).

Importing this package loads nothing heavy: `create_app` is imported on first use, so the CLI and
the TUI can use `engine.serving.control` without loading FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from engine.serving.app import create_app

        return create_app
    raise AttributeError(name)
