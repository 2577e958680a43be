"""Work on a Dask cluster (dask.distributed): a small executor, the workers' packages, and a local
cluster to try it with.

- `connect(address)` answers within CONNECT_TIMEOUT (3 s): a plain TCP probe first (a refused or
  silent port is one line at once, before dask is even imported), then dask's own handshake.
- `Cluster` is the executor training uses (and tuning can): `scatter(value)` sends a value to
  every worker once (broadcast: a worker that dies takes no data with it); `submit(key, fn,
  *args)` runs `fn` on a worker, its args resolved from scattered values and other tasks;
  `events()` yields what happens as it happens: `TaskStarted` (a worker began it: said by the
  task itself, through the scheduler's event stream), `TaskDone`, `TaskFailed` and
  `WorkersChanged`; `cancel()` cancels the tasks and interrupts those already running. A worker
  that dies while running a task fails that task (`TaskFailed.lost_worker`), and it is not run
  again elsewhere; the tasks merely queued there are rescheduled by the scheduler as usual.
- Interrupting a running task: Dask cannot stop a task's thread, so each task registers its
  thread on the worker, and `cancel()` raises `TaskInterrupted` in it
  (PyThreadState_SetAsyncExc). Python code stops at once; a long call into C (libsvm's fit)
  stops when it returns to Python.
- `compare(...)` / `Cluster.require(...)`: the workers must have the packages the project
  needs (haj's serving stack, the project's requirements.txt, dask, distributed, haj's engine
  and Python's minor version) at this environment's versions: pickles of fitted models only
  load under the versions that wrote them.
- `haj cluster start`: `run_local()` holds a LocalCluster (scheduler and worker processes, all
  on 127.0.0.1) in a detached haj process, recorded in WORKSPACE/.haj-cluster.json like the
  scheduler of schedules; `stop()` ends it (SIGTERM, then its whole process group).

Nothing here imports dask at module level: with the local backend dask is never imported (a
test checks), and haj without the `dask` extra says what to install.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import ClusterError, UsageError, one_line
from engine.fsutil import atomic_write_text
from engine.procs import (
    forget_record,
    kill_group,
    live_record,
    read_record,
    start_in_background,
    terminate,
)

CONNECT_TIMEOUT = 3.0
WORKER_WAIT = 10.0  # how long a scheduler without workers is given to get one
DEFAULT_PORT = 8786
ENV_ADDRESS = "HAJ_DASK_SCHEDULER"
BACKENDS = ("local", "dask")
TOPIC = "haj-task"  # the event topic a task announces its start on
RECORD_NAME = ".haj-cluster.json"
LOG_NAME = ".haj-cluster.log"
MARKER = b"cluster\x00run"  # in the local cluster's command line: `... cluster run ...`
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
# what the workers need beside the project's packages: the cluster's own, at our versions
CLUSTER_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack", "tornado")
_ENGINE_PARENT = str(Path(__file__).resolve().parent.parent)
INSTALL_HINT = "install haj's dask extra: pip install 'haj[dask]' (dask and distributed)"


# ---- addresses ----------------------------------------------------------------------------------
def normalize(address: str) -> str:
    """'host', 'host:port' or 'tcp://host:port' -> 'tcp://host:port' (port 8786 by default)."""
    text = str(address).strip()
    if not text:
        raise UsageError("the Dask scheduler address is empty (tcp://HOST:8786)")
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if scheme not in ("tcp", "tls"):
        raise UsageError(f"{address!r} is not a Dask scheduler address (tcp://HOST:8786)")
    host, colon, port = rest.rpartition(":")
    if not colon or "]" in port:
        host, port = rest, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise UsageError(f"{address!r} is not a Dask scheduler address (tcp://HOST:8786)")
    return f"{scheme}://{host}:{int(port)}"


def _host_port(address: str) -> tuple[str, int]:
    rest = address.partition("://")[2]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def configured_address(training: dict[str, Any], root: Path | None = None) -> str | None:
    """The scheduler a project's training goes to, or None for the local backend: with
    `[training] backend = "dask"`, `[training] scheduler`, else $HAJ_DASK_SCHEDULER, else the
    workspace's `haj cluster start` cluster."""
    if training.get("backend", "local") != "dask":
        return None
    address = training.get("scheduler") or os.environ.get(ENV_ADDRESS)
    if not address and root is not None:
        record = status(root)
        address = record["address"] if record else None
    if not address:
        raise ClusterError(
            '[training] backend is "dask" but no scheduler is given: set [training] scheduler '
            f"or ${ENV_ADDRESS}, or start a local cluster with `haj cluster start`"
        )
    return normalize(address)


def resolve(address: str | None, root: Path | None, training: dict[str, Any] | None = None) -> str:
    """The address `haj cluster check` looks at: the one given, else the project's, else
    $HAJ_DASK_SCHEDULER, else the workspace's local cluster."""
    if address:
        return normalize(address)
    found = (training or {}).get("scheduler") or os.environ.get(ENV_ADDRESS)
    if not found and root is not None:
        record = status(root)
        found = record["address"] if record else None
    if not found:
        raise UsageError(
            f"which cluster? give its address (tcp://HOST:8786), set ${ENV_ADDRESS}, or start "
            "a local one with `haj cluster start`"
        )
    return normalize(found)


# ---- connecting ---------------------------------------------------------------------------------
def probe(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A plain TCP connection to the scheduler's port, and its first byte (a scheduler sends
    its handshake at once), with the standard library only: a ClusterError at once when it is
    refused, within `timeout` s when nobody answers or what answers says nothing."""
    host, port = _host_port(address)
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if address.startswith("tcp://"):  # a scheduler speaks first: its handshake
                sock.settimeout(max(0.1, timeout - (time.monotonic() - started)))
                if not sock.recv(1):
                    raise ClusterError(
                        f"{address} closed the connection at once: is it a Dask scheduler?"
                    )
    except TimeoutError:
        raise ClusterError(
            f"no answer from the Dask scheduler at {address} within {timeout:.0f} s: is it "
            "running, and is the address right?"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}: {reason.lower()}"
        ) from None


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Cluster:
    """A client of the scheduler at `address`, or a one-line ClusterError within `timeout` s
    (refused, silent, not a Dask scheduler, no workers)."""
    address = normalize(address)
    probe(address, timeout)
    try:
        import warnings

        from distributed import Client
    except ImportError:
        raise ClusterError(f"the Dask backend needs dask and distributed: {INSTALL_HINT}") from None
    _quiet_logs()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version mismatches: require() says them better
            client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot connect to the Dask scheduler at {address}: {one_line(exc, 200)}"
        ) from None
    cluster = Cluster(client, address)
    if not cluster.workers():
        try:  # a cluster that is starting its workers, or scaling up: a little patience
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except Exception:
            cluster.close()
            raise ClusterError(
                f"the Dask scheduler at {address} has no workers (none joined within "
                f"{WORKER_WAIT:.0f} s): start some, or scale the cluster up"
            ) from None
    return cluster


def _quiet_logs() -> None:
    """distributed logs to stderr, which the runner shows as the app's log lines: errors only."""
    import logging

    for name in ("distributed", "distributed.client", "distributed.worker", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# ---- the workers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerInfo:
    address: str
    name: str
    host: str
    threads: int
    memory: int  # bytes: the worker's memory limit (0: none)
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"


def workers_text(workers: Sequence[WorkerInfo]) -> str:
    """'2 workers, 2 threads, 23.5 GiB'."""
    threads = sum(w.threads for w in workers)
    memory = sum(w.memory for w in workers)
    text = f"{len(workers)} worker{'s' if len(workers) != 1 else ''}, {threads} thread"
    text += "s" if threads != 1 else ""
    return text + (f", {_gib(memory)}" if memory else "")


# The probe a worker runs: sent by value (defined from source, in no importable module), so it
# answers even where haj's engine cannot be imported.
_PROBE_SOURCE = """
def probe(names, paths=None, dask_worker=None):
    import importlib.metadata, os, platform, sys
    search = list(paths or []) + sys.path
    found = {}
    for name in names:
        dist = next(iter(importlib.metadata.distributions(name=name, path=search)), None)
        found[name] = dist.version if dist is not None else None
    try:
        import engine
        found["haj"] = str(getattr(engine, "__version__", "unknown"))
    except Exception:
        found["haj"] = None
    found["python"] = platform.python_version()
    info = {"versions": found, "pid": os.getpid()}
    if dask_worker is not None:
        info["threads"] = dask_worker.state.nthreads
        info["memory"] = dask_worker.memory_manager.memory_limit or 0
    return info
"""


def _probe_function() -> Callable[..., dict[str, Any]]:
    namespace: dict[str, Any] = {"__name__": "haj_cluster_probe"}
    exec(compile(_PROBE_SOURCE, "<haj cluster probe>", "exec"), namespace)
    return namespace["probe"]


def local_versions(names: Sequence[str], paths: Sequence[str] = ()) -> dict[str, str | None]:
    """This environment's versions of `names` (plus haj and python), the way workers say them;
    `paths` are searched first (a project's own site-packages)."""
    return _probe_function()(list(names), list(paths))["versions"]


@dataclass(frozen=True)
class PackageRow:
    """One package: its version here and on each worker (None: not installed)."""

    name: str
    here: str | None
    workers: dict[str, str | None]

    def same(self, version: str | None) -> bool:
        if version is None:
            return False
        if self.name == "python":  # bytecode and pickles follow the minor version
            return version.split(".")[:2] == (self.here or "").split(".")[:2]
        return version == self.here

    @property
    def ok(self) -> bool:
        return all(self.same(v) for v in self.workers.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def differences_text(rows: Sequence[PackageRow], most: int = 6) -> str:
    """What differs, on one line: 'orjson 3.11.5 here, 3.10.0 on tcp://…; foo not installed on
    2 workers'."""
    parts = []
    for row in rows:
        if row.ok:
            continue
        missing = [w for w, v in row.workers.items() if v is None]
        other = sorted({v for w, v in row.workers.items() if v is not None and not row.same(v)})
        name = "haj's engine" if row.name == "haj" else row.name
        if missing:
            where = missing[0] if len(missing) == 1 else f"{len(missing)} workers"
            parts.append(f"{name} not installed on {where}")
        if other:
            count = sum(1 for v in row.workers.values() if v in other)
            where = (
                next(w for w, v in row.workers.items() if v in other)
                if count == 1
                else f"{count} workers"
            )
            parts.append(
                f"{name} {row.here or 'not installed'} here, {', '.join(other)} on {where}"
            )
    if len(parts) > most:
        parts = [*parts[:most], f"and {len(parts) - most} more"]
    return "; ".join(parts)


def wanted_packages(requirements: Sequence[str] = ()) -> list[str]:
    """What the workers must have: haj's serving stack (what a bundle needs to load and
    predict, as an image built by `haj build` has it), the cluster's own packages, then
    `requirements` (canonical names)."""
    from engine.deps import canonical
    from engine.serving.packages import SERVING_PACKAGES

    names = [canonical(spec.split("[", 1)[0]) for spec in SERVING_PACKAGES]
    names += [canonical(name) for name in CLUSTER_PACKAGES]
    names += [canonical(name) for name in requirements]
    return list(dict.fromkeys(names))


def project_packages(project: Any) -> tuple[list[str], list[str]]:
    """(the packages a project's work on the cluster needs: the above and its requirements.txt,
    its virtualenv's site-packages, where their versions are read first)."""
    from engine import deps

    required = []
    for line in deps.requirements(project):
        with contextlib.suppress(UsageError):  # -r other.txt, a URL: not one package
            required.append(deps.parse_requirement(line))
    paths = sorted(str(p) for p in project.venv_dir.glob("lib/python*/site-packages"))
    return wanted_packages(required), paths


# ---- what happens on the cluster ----------------------------------------------------------------
@dataclass(frozen=True)
class TaskStarted:
    key: str
    worker: str
    pid: int | None
    at: float  # time.time() on the worker


@dataclass(frozen=True)
class TaskDone:
    key: str
    result: Any


@dataclass(frozen=True)
class TaskFailed:
    key: str
    error: str
    lost_worker: str | None = None  # the worker that died while running it


@dataclass(frozen=True)
class WorkersChanged:
    workers: list[WorkerInfo]
    lost: str | None = None
    added: str | None = None


ClusterEvent = TaskStarted | TaskDone | TaskFailed | WorkersChanged


@dataclass
class Cluster:
    """A connected client, and the tasks this process submitted through it."""

    client: Any
    address: str
    _futures: dict[str, Any] = field(default_factory=dict)
    _pending: set[str] = field(default_factory=set)  # submitted, not yet reported
    _running: dict[str, TaskStarted] = field(default_factory=dict)  # started, not reported
    _gone: set[str] = field(default_factory=set)  # workers already reported lost
    _inbox: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)
    _listening: bool = False

    # ---- the workers ----
    def workers(self) -> list[WorkerInfo]:
        info = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return sorted(
            (
                WorkerInfo(
                    address=address,
                    name=str(w.get("name", address)),
                    host=str(w.get("host", "")),
                    threads=int(w.get("nthreads") or 0),
                    memory=int(w.get("memory_limit") or 0),
                    pid=w.get("pid"),
                )
                for address, w in info.items()
            ),
            key=lambda w: w.address,
        )

    def inspect(
        self, names: Sequence[str], paths: Sequence[str] = ()
    ) -> tuple[list[WorkerInfo], list[PackageRow]]:
        """The workers (with their pids) and each package's version here and on every worker."""
        try:
            answers = self.client.run(_probe_function(), list(names))
        except Exception as exc:
            raise ClusterError(
                f"the Dask workers at {self.address} could not be asked for their packages: "
                f"{one_line(exc, 200)}"
            ) from None
        here = local_versions(names, paths)
        workers = [
            WorkerInfo(
                w.address, w.name, w.host,
                int(answers.get(w.address, {}).get("threads") or w.threads),
                int(answers.get(w.address, {}).get("memory") or w.memory),
                answers.get(w.address, {}).get("pid"),
            )
            for w in self.workers()
        ]  # fmt: skip
        rows = [
            PackageRow(
                name,
                here.get(name),
                {addr: answer["versions"].get(name) for addr, answer in sorted(answers.items())},
            )
            for name in [*names, "haj", "python"]
        ]
        return workers, rows

    def require(self, names: Sequence[str], paths: Sequence[str] = ()) -> list[WorkerInfo]:
        """The workers, if every one has `names` (and haj, and this Python) at this
        environment's versions; else a one-line ClusterError saying what differs. Nothing has
        been sent to the cluster yet."""
        workers, rows = self.inspect(names, paths)
        text = differences_text(rows)
        if text:
            raise ClusterError(
                f"the Dask workers at {self.address} differ from this environment: {text} "
                f"(`haj cluster check {self.address}` compares them all)"
            )
        return workers

    # ---- tasks ----
    def scatter(self, value: Any) -> Any:
        """`value` on every worker, once: a handle to pass to submit()."""
        [handle] = self.client.scatter([value], broadcast=True, hash=False)
        return handle

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, priority: int = 0) -> Any:
        """Run `fn(*args)` on a worker as task `key` (unique on the cluster); handles among
        `args` (from scatter or submit, also inside a list) are resolved first. Returns the
        task's handle."""
        self._listen()
        future = self.client.submit(
            _run_task, key, fn, *args, key=key, pure=False, priority=priority, retries=0
        )
        self._futures[key] = future
        self._pending.add(key)
        future.add_done_callback(lambda f: self._inbox.put(("done", key)))
        return future

    def events(self, poll: float = 0.1) -> Iterator[ClusterEvent]:
        """What happens to the submitted tasks, as it happens, until each has ended (done,
        failed or cancelled). Blocks in short waits, so Ctrl-C lands at once."""
        while self._pending:
            yield from self.poll(poll)

    def poll(self, timeout: float = 0.1) -> list[ClusterEvent]:
        """What happened next (one message of the scheduler's, or nothing within `timeout`)."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return []
        return list(self._handle(item))

    def _handle(self, item: tuple[Any, ...]) -> Iterator[ClusterEvent]:
        kind = item[0]
        if kind == "started":
            msg = item[1]
            key = str(msg.get("key"))
            if key not in self._pending:  # a failed task the scheduler ran again: stop it
                if key in self._futures:
                    self._interrupt([key])
                return
            first = self._running.get(key)
            if first is None:
                started = TaskStarted(key, str(msg.get("worker")), msg.get("pid"), msg.get("at"))
                self._running[key] = started
                yield started
            elif (str(msg.get("worker")), msg.get("pid")) != (first.worker, first.pid):
                # started again elsewhere: its first worker died, whether or not the
                # scheduler's word of it has arrived yet (on a loaded machine the rerun can
                # even finish first)
                yield from self._worker_lost(first.worker)
        elif kind == "done":
            yield from self._finished(item[1])
        elif kind == "lost":
            yield from self._worker_lost(item[1])
        elif kind == "added":
            yield WorkersChanged(self._safe_workers(), added=item[1])

    def _worker_lost(self, worker: str) -> Iterator[ClusterEvent]:
        """The tasks `worker` was running fail (they are not run again elsewhere), and the
        workers' change is told once."""
        for key, started in list(self._running.items()):
            if started.worker == worker and key in self._pending:
                self.cancel([key])
                pid = f" (pid {started.pid})" if started.pid else ""
                yield TaskFailed(
                    key,
                    f"the Dask worker {worker}{pid} died while running it (killed, or out "
                    "of memory?)",
                    lost_worker=worker,
                )
        if worker not in self._gone:
            self._gone.add(worker)
            yield WorkersChanged(self._safe_workers(), lost=worker)

    def _finished(self, key: str) -> Iterator[ClusterEvent]:
        if key not in self._pending:
            return
        future = self._futures[key]
        status = future.status
        if status == "finished":
            try:
                result = future.result(timeout=60)
            except Exception as exc:  # the worker holding it died since: say so, go on
                self._forget(key)
                yield TaskFailed(key, f"its result could not be fetched: {_reason(exc)}")
                return
            self._forget(key)
            yield TaskDone(key, result)
        elif status == "error":
            try:
                exc = future.exception(timeout=10)
            except Exception as other:
                exc = other
            self._forget(key)
            yield TaskFailed(key, _reason(exc))
        elif status in ("cancelled", "lost"):
            self._forget(key)
            yield TaskFailed(key, f"{status} on the cluster")

    def _forget(self, key: str) -> None:
        self._pending.discard(key)
        self._running.pop(key, None)

    def _safe_workers(self) -> list[WorkerInfo]:
        try:
            return self.workers()
        except Exception:
            return []

    def cancel(self, keys: Sequence[str] | None = None) -> None:
        """Cancel `keys` (default: every task not yet reported) on the cluster, and interrupt
        those a worker is running. Best effort and quick: it runs while Ctrl-C is handled."""
        keys = list(self._pending if keys is None else keys)
        for key in keys:
            self._forget(key)
        futures = [self._futures[k] for k in keys if k in self._futures]
        if not futures:
            return
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)
        self._interrupt(keys)

    def _interrupt(self, keys: Sequence[str], timeout: float = 2.0) -> None:
        """Ask every worker to interrupt `keys`, waiting `timeout` s at most (a worker busy in
        C code may answer late: the cancel must not wait for it)."""

        def ask() -> None:
            with contextlib.suppress(Exception):
                self.client.run(interrupt_tasks, list(keys))

        asking = threading.Thread(target=ask, name="haj-cluster-interrupt", daemon=True)
        asking.start()
        asking.join(timeout)

    def _listen(self) -> None:
        if self._listening:
            return
        self._listening = True
        inbox = self._inbox

        def on_task(event: tuple[float, dict[str, Any]]) -> None:
            inbox.put(("started", event[1]))

        def on_cluster(event: tuple[float, dict[str, Any]]) -> None:
            msg = event[1]
            if not isinstance(msg, dict):
                return
            if msg.get("action") == "remove-worker" and not msg.get("expected"):
                inbox.put(("lost", msg.get("worker")))
            elif msg.get("action") == "remove-worker":
                inbox.put(("added", None))  # a worker closed on purpose: just a new count
            elif msg.get("action") == "add-worker":
                inbox.put(("added", msg.get("worker")))

        self.client.subscribe_topic(TOPIC, on_task)
        self.client.subscribe_topic("all", on_cluster)

    def close(self) -> None:
        """Cancel what is left and disconnect."""
        if self._pending:
            self.cancel()
        with contextlib.suppress(Exception):
            if self._listening:
                self.client.unsubscribe_topic(TOPIC)
                self.client.unsubscribe_topic("all")
        with contextlib.suppress(Exception):
            self.client.close(timeout=2)


class ClusterExecutor:
    """A Cluster behind concurrent.futures' face, for code written against an executor (the
    trials of `haj tune`): submit() returns a concurrent.futures.Future, resolved when its task
    ends; a task that failed, or whose worker died while running it, raises ClusterError."""

    def __init__(self, cluster: Cluster, workers: Sequence[WorkerInfo] = ()) -> None:
        self.cluster = cluster
        self.workers = list(workers)
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._run, name="haj-cluster-pump", daemon=True)
        self._pump.start()

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.workers) or 1

    def scatter(self, value: Any) -> Any:
        return self.cluster.scatter(value)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        import uuid
        from concurrent.futures import Future

        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        key = f"haj-{uuid.uuid4().hex}"
        with self._lock:
            self._futures[key] = future
            self.cluster.submit(key, fn, *args)
        return future

    def _run(self) -> None:
        while not self._stop.is_set():
            try:  # waited for without the lock: submit() goes on meanwhile
                item = self.cluster._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            with self._lock:
                happened = list(self.cluster._handle(item))
            for event in happened:
                future = self._futures.get(getattr(event, "key", ""))
                if isinstance(event, TaskDone) and future is not None:
                    self._futures.pop(event.key, None)
                    future.set_result(event.result)
                elif isinstance(event, TaskFailed) and future is not None:
                    self._futures.pop(event.key, None)
                    future.set_exception(ClusterError(f"on the Dask cluster: {event.error}"))

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        """Stop: cancel what is left on the cluster (its running tasks interrupted) and
        disconnect. `wait` and concurrent.futures' other arguments are taken and ignored: a
        shutdown here never leaves work behind."""
        self._stop.set()
        self._pump.join(timeout=2)
        with self._lock:
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(ClusterError("cancelled on the Dask cluster"))
            self._futures.clear()
        self.cluster.close()


def executor_for(address: str, project: Any) -> ClusterExecutor:
    """A ClusterExecutor on the cluster at `address`, its workers' packages checked against
    the project's environment first (a one-line ClusterError before anything is sent)."""
    names, paths = project_packages(project)
    cluster = connect(address)
    try:
        workers = cluster.require(names, paths)
    except BaseException:
        cluster.close()
        raise
    return ClusterExecutor(cluster, workers)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "failed on the cluster"
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"the workers running it died ({one_line(exc, 200)})"
    return f"{name}: {one_line(exc, 300)}"


# ---- on the workers ------------------------------------------------------------------------------
class TaskInterrupted(BaseException):
    """Raised in a worker's thread by cancel(): the cluster no longer wants its task. A
    BaseException, so user code's `except Exception` does not swallow it."""


_RUNNING: dict[str, int] = {}  # on a worker: task key -> the thread running it
_RUNNING_LOCK = threading.Lock()


def _run_task(key: str, fn: Callable[..., Any], *args: Any) -> Any:
    """A task as a worker runs it: announce its start (TaskStarted), run it where cancel() can
    interrupt it."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(
        TOPIC, {"key": key, "worker": worker.address, "pid": os.getpid(), "at": time.time()}
    )
    thread = threading.get_ident()
    try:
        try:
            with _RUNNING_LOCK:
                _RUNNING[key] = thread
            return fn(*args)
        finally:
            with _RUNNING_LOCK:
                if _RUNNING.pop(key, None) is None:  # interrupted: never let it land later
                    _async_raise(thread, None)
    except TaskInterrupted:
        return None


def interrupt_tasks(keys: Sequence[str]) -> list[str]:
    """On a worker: raise TaskInterrupted in the threads running `keys`; the keys it hit."""
    hit = []
    with _RUNNING_LOCK:
        for key in keys:
            thread = _RUNNING.pop(key, None)
            if thread is not None:
                _async_raise(thread, TaskInterrupted)
                hit.append(key)
    return hit


def _async_raise(thread: int, exc: type[BaseException] | None) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(exc) if exc is not None else None
    )


# ---- the check: `haj cluster check` --------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    address: str
    workers: list[WorkerInfo]
    packages: list[PackageRow]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.packages)

    @property
    def differences(self) -> str:
        return differences_text(self.packages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "ok": self.ok,
            "workers": [w.to_dict() for w in self.workers],
            "packages": [row.to_dict() for row in self.packages],
        }


def check(address: str, names: Sequence[str], paths: Sequence[str] = ()) -> CheckReport:
    """The workers of the cluster at `address` and their packages beside this environment's."""
    cluster = connect(address)
    try:
        workers, rows = cluster.inspect(names, paths)
    finally:
        cluster.close()
    return CheckReport(cluster.address, workers, rows)


# ---- a local cluster: `haj cluster start | stop | run` ------------------------------------------
def record_path(root: Path) -> Path:
    return Path(root) / RECORD_NAME


def status(root: Path) -> dict[str, Any] | None:
    """The workspace's local cluster record while its process runs, else None (a pure read)."""
    return live_record(record_path(root), MARKER)


def _check_args(workers: int, threads: int, port: int) -> None:
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    if threads < 1:
        raise UsageError("--threads must be 1 or more")
    if not 0 <= port < 65536:
        raise UsageError("--port must be from 0 (any free port) to 65535")


def _check_port(port: int) -> None:
    if port == 0:
        return
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(
                f"port {port} on 127.0.0.1 is in use (a cluster already?): choose another "
                "with --port"
            ) from None


def start_detached(
    root: Path, workers: int, threads: int = 1, port: int = DEFAULT_PORT
) -> dict[str, Any]:
    """Start `haj cluster run` in the background (its own session, output to
    WORKSPACE/.haj-cluster.log); its record once its scheduler and workers are up."""
    import subprocess

    root = Path(root).absolute()
    _check_args(workers, threads, port)
    running = status(root)
    if running is not None:
        raise UsageError(
            f"a local cluster already runs for {root} at {running['address']} (pid "
            f"{running['pid']}): `haj cluster stop` stops it"
        )
    record_path(root).unlink(missing_ok=True)
    _check_port(port)
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH", "")) if p)

    def recorded(child: subprocess.Popen[bytes]) -> dict[str, Any] | None:
        record = read_record(record_path(root))
        return record if record is not None and int(record.get("pid") or 0) == child.pid else None

    return start_in_background(
        [sys.executable, "-m", "engine", "--home", str(root), "cluster", "run",
         "--workers", str(workers), "--threads", str(threads), "--port", str(port)],
        cwd=root,
        env=env,
        log_path=root / LOG_NAME,
        ready=recorded,
        what="the local cluster",
        timeout=START_TIMEOUT,
        error=ClusterError,
        poll=0.1,
    )  # fmt: skip


def stop(root: Path, timeout: float = STOP_TIMEOUT) -> dict[str, Any] | None:
    """Stop the workspace's local cluster (SIGTERM: it closes its workers; then its whole
    process group is killed); its record, or None when none ran."""
    record = status(root)
    if record is None:
        record_path(root).unlink(missing_ok=True)  # a dead one's record
        return None
    pid = int(record["pid"])
    try:
        terminate(pid, timeout)
    except PermissionError:
        raise ClusterError(
            f"cannot stop the local cluster (pid {pid}): it belongs to another user"
        ) from None
    kill_group(pid)  # worker processes left behind by a cluster that could not close them
    forget_record(record_path(root), pid)
    return record


def run_local(
    root: Path,
    workers: int,
    threads: int = 1,
    port: int = DEFAULT_PORT,
    say: Callable[[str], None] | None = None,
) -> None:
    """A LocalCluster on 127.0.0.1 (a scheduler and `workers` worker processes of `threads`
    threads each) until SIGTERM or SIGINT; recorded in WORKSPACE/.haj-cluster.json while it
    runs."""
    import signal

    root = Path(root).absolute()
    _check_args(workers, threads, port)
    try:
        from distributed import LocalCluster
    except ImportError:
        raise ClusterError(f"a local cluster needs dask and distributed: {INSTALL_HINT}") from None
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            scheduler_port=port,
            dashboard_address=None,
        )
    except Exception as exc:
        raise ClusterError(f"the local cluster could not start: {one_line(exc, 300)}") from None
    try:
        record = {
            "pid": os.getpid(),
            "address": cluster.scheduler_address,
            "workers": workers,
            "threads": threads,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "log": str(root / LOG_NAME),
        }
        atomic_write_text(record_path(root), json.dumps(record, indent=2) + "\n")
        if say is not None:
            say(
                f"local Dask cluster at {record['address']}: {workers} worker process(es) of "
                f"{threads} thread(s) (Ctrl-C stops it)"
            )
        while not stopping.wait(0.5):
            pass
    finally:
        forget_record(record_path(root), os.getpid())
        with contextlib.suppress(Exception):
            cluster.close(timeout=10)
