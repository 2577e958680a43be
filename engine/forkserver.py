"""A warm runner: `python -m engine.forkserver FD` imports what the runner needs once (pandas,
scikit-learn, haj's training and data code), then forks one child per request, so a retrieve or
a training started from a long-lived process (the app, a scheduler) begins at once instead of
spending a second importing. `engine.warm_runner` is its client.

The protocol, on a SOCK_SEQPACKET Unix socket (FD) whose other end the client holds:
- client → server: `{"id", "argv", "cwd", "env"}` (JSON) with the child's stdout and stderr, and
  optionally the project's lock, as file descriptors (SCM_RIGHTS);
- server → client: `{"id", "pid"}` once the child is forked (or `{"id", "error"}`), then
  `{"pid", "code"}` when it exits (a negative code is the signal that ended it, as in Popen).

Each child is what `python -m engine.runner ARGV` would be: its own session (so cancelling
signals it and its workers as one group), the given working directory and environment, stdin
from /dev/null, fresh random seeds. When the client goes away, the server exits; children still
running carry on.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from engine.warm_runner import MAX_MESSAGE, send

PRELOAD = (
    "numpy",
    "pandas",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "joblib",
    "engine.runner",
    "engine.training",
    "engine.data",
    "engine.catalog",
)


def _preload() -> None:
    """Import the heavy modules the children would import anyway; one that fails to import is
    left for the child to report in its own words."""
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _run_child(
    sock: socket.socket,
    wakeup: tuple[int, int],
    request: dict[str, Any],
    fds: list[int],
    settled: int,
) -> None:
    """In the forked child: become `python -m engine.runner ARGV` and exit with its code.
    Closing `settled` tells the server the child leads its own session (what the client may
    signal as a group from the moment it has the pid)."""
    code = 1
    try:
        sock.close()
        for fd in wakeup:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        os.close(settled)
        out, err = fds[0], fds[1]
        os.dup2(out, 1)
        os.dup2(err, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd in (out, err, null):
            os.close(fd)
        # fds[2:] (the project's lock) stay open as they are: holding them is their whole job
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = _import_path(request["cwd"], request["env"].get("PYTHONPATH", ""))
        _reseed()
        from engine import runner

        sys.argv = [runner.__file__, *request["argv"]]
        code = runner.main(list(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the child must exit, whatever happened
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


_INSTALLED_PATH: list[str] = []  # sys.path less its script folder and PYTHONPATH: set in main()


def _pythonpath(value: str) -> list[str]:
    return [os.path.abspath(entry) for entry in value.split(os.pathsep) if entry]


def _import_path(cwd: str, pythonpath: str) -> list[str]:
    """The sys.path `python -m` would have in `cwd` with this PYTHONPATH: the working folder
    first (a project's own helper modules import from there), then PYTHONPATH, then what is
    installed."""
    return [cwd, *_pythonpath(pythonpath), *_INSTALLED_PATH]


def _reseed() -> None:
    """Children forked from one parent share its random state; numpy's global generator would
    give every run the same numbers where a fresh process gives new ones (random reseeds itself
    after a fork)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _reap(sock: socket.socket) -> None:
    """Tell the client about every child that has exited."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send(sock, {"pid": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Fork a runner per request until the client closes its end."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the client's terminal is not ours
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            _reap(sock)
        if sock not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 8)
        if not message:
            return  # the client is gone
        try:
            request = json.loads(message)
            settled_r, settled_w = os.pipe()
            pid = os.fork()
        except (ValueError, OSError) as exc:
            for fd in fds:
                os.close(fd)
            send(sock, {"id": None, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if pid == 0:
            os.close(settled_r)
            _run_child(sock, (wake_r, wake_w), request, fds, settled_w)
        os.close(settled_w)
        os.read(settled_r, 1)  # end of file once the child has its own session (or is gone)
        os.close(settled_r)
        for fd in fds:
            os.close(fd)
        send(sock, {"id": request.get("id"), "pid": pid})
        _reap(sock)  # a child may already be gone before its SIGCHLD is read


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    own = set(_pythonpath(os.environ.get("PYTHONPATH", "")))
    _INSTALLED_PATH[:] = [entry for entry in sys.path[1:] if os.path.abspath(entry) not in own]
    _preload()
    send(sock, {"ready": os.getpid()})
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client left
        serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
