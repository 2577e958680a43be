"""The client of `engine.forkserver`: long-lived processes (the app, a test session) keep one
warm runner and start each retrieve, process or training as a fork of it, about a second
sooner than a fresh `python -m engine.runner`. A one-shot `haj` command does not: starting the
warm runner costs what it saves.

`keep_warm()` turns it on for this process (and starts it in the background); `start()` hands
back a `WarmChild`, which `engine.runner_client` drives like a `subprocess.Popen`, or None when
the fork server cannot serve (never turned on, or it died): then the caller starts a fresh
process as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from engine.errors import HajError
from engine.procs import running

_ENGINE_PARENT = str(Path(__file__).resolve().parent.parent)
MAX_MESSAGE = 1 << 20  # an environment is a few kB; a megabyte is far more than any request
START_TIMEOUT = 60.0
ANSWER_TIMEOUT = 10.0


def runner_environment() -> dict[str, str]:
    """This process's environment as a runner (or the fork server) gets it: unbuffered, and
    with haj's own folder first on PYTHONPATH, whatever interpreter runs it."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH", "")) if p)
    return env


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One message of the fork server's protocol (engine.forkserver), with descriptors."""
    payload = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [payload], fds)
    else:
        sock.send(payload)


class WarmChild:
    """A runner forked by the fork server, with the part of `subprocess.Popen` the runner
    client uses. Its exit status comes from the fork server (which is its parent)."""

    def __init__(self, pid: int, stdout: IO[bytes], stderr: IO[bytes], server: ForkServer):
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._server = server
        self._exited = threading.Event()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        if self.returncode is None and self._server.dead and not running(self.pid):
            self._set_exit(-signal.SIGKILL)  # its server died: the status is lost with it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"runner {self.pid}", timeout or 0)
            self._exited.wait(0.1 if left is None else min(0.1, left))
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One `python -m engine.forkserver` child of this process and the thread reading its
    answers."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = runner_environment()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.forkserver", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # a Ctrl-C at this terminal is for the runner it forks
        )
        theirs.close()
        self.sock = ours
        self.dead = False
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._children: dict[int, WarmChild] = {}
        self._exits: dict[int, int] = {}  # exits read before their child was registered
        self._lock = threading.Lock()
        self._request = threading.Lock()
        self._next_id = 0
        self._ready = threading.Event()
        threading.Thread(target=self._read, name="haj-forkserver", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                message = self.sock.recv(MAX_MESSAGE)
                if not message:
                    break
                answer = json.loads(message)
                if "ready" in answer:
                    self._ready.set()
                elif "code" in answer:
                    self._exited(int(answer["pid"]), int(answer["code"]))
                else:
                    self._answers.put(answer)
        except (OSError, ValueError):
            pass
        self.dead = True
        self._ready.set()
        self._answers.put({"error": "the warm runner stopped"})

    def _exited(self, pid: int, code: int) -> None:
        self._meet(pid, code=code)

    def _meet(self, pid: int, child: WarmChild | None = None, code: int | None = None) -> None:
        """A child and its exit code meet here, whichever arrives first (a quick child can
        exit before start() has registered it)."""
        with self._lock:
            if child is None:
                child = self._children.pop(pid, None)
                if child is None:
                    self._exits[pid] = code if code is not None else -1
                    return
            else:
                code = self._exits.pop(pid, None)
                if code is None:
                    self._children[pid] = child
                    return
        assert code is not None
        child._set_exit(code)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout) and not self.dead

    def start(
        self, argv: list[str], cwd: Path, env: dict[str, str], keep_fds: tuple[int, ...]
    ) -> WarmChild:
        """Fork `python -m engine.runner ARGV`. OSError when the server cannot (nothing was
        started: the caller may start the run elsewhere); HajError when it was asked and did
        not answer (the run may be running)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            with self._request:
                self._next_id += 1
                request = {"id": self._next_id, "argv": argv, "cwd": str(cwd), "env": env}
                send(self.sock, request, [out_w, err_w, *keep_fds])
                try:
                    answer = self._answers.get(timeout=ANSWER_TIMEOUT)
                except queue.Empty:
                    # the run may have started all the same: not started again elsewhere
                    self.dead = True
                    raise HajError(
                        f"the warm runner did not answer within {ANSWER_TIMEOUT:.0f} s; "
                        "try again (a fresh one starts)"
                    ) from None
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        if "pid" not in answer:
            os.close(out_r)
            os.close(err_r)
            raise OSError(answer.get("error", "the warm runner refused"))
        pid = int(answer["pid"])
        child = WarmChild(pid, os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"), self)
        self._meet(pid, child=child)
        return child

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader; the server reads the end
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


_server: ForkServer | None = None
_enabled = False
_guard = threading.Lock()


def keep_warm(start_now: bool = True) -> None:
    """Start runners as forks of a warm runner in this process from now on. With `start_now`
    it starts at once, in the background, so the first run finds it ready; else at the first
    run."""
    global _enabled
    _enabled = True
    if start_now:
        threading.Thread(target=_get, name="haj-forkserver-start", daemon=True).start()


def _get() -> ForkServer | None:
    global _server
    with _guard:
        if _server is not None and _server.dead:
            _server.close()
            _server = None
        if _server is None:
            try:
                _server = ForkServer()
            except OSError:
                return None
        server = _server
    return server if server.wait_ready(START_TIMEOUT) else None


def start(
    argv: list[str], cwd: Path, env: dict[str, str], keep_fds: tuple[int, ...] = ()
) -> WarmChild | None:
    """A runner forked from the warm runner, or None (not turned on here, or it cannot serve:
    the caller then starts a fresh process)."""
    if not _enabled:
        return None
    for _ in range(2):  # a server found dead while asking is replaced once
        server = _get()
        if server is None:
            return None
        try:
            return server.start(argv, cwd, env, keep_fds)
        except OSError:
            server.dead = True
    return None


def stop() -> None:
    """Stop the warm runner (runners it started carry on) and start fresh processes again."""
    global _server, _enabled
    with _guard:
        _enabled = False
        if _server is not None:
            _server.close()
            _server = None
