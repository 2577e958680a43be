"""The local backend's worker processes. On Linux they are forks of the runner, which has
already imported scikit-learn and holds the training data: a worker starts fitting at once,
and the data is shared with it (copy-on-write) instead of being pickled to it. Elsewhere (fork
is not safe on macOS, absent on Windows) joblib's loky workers do the same job, each starting
a fresh interpreter.

Both yield ("started", run, "") as a worker takes a run and ("finished", result, None) as it
is done, the first `workers` runs at once and one more with each result.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

Fit = Callable[..., dict[str, Any]]
Tasks = dict[str, dict[str, Any]]  # run id -> what fit() needs for it
Split = tuple[Any, Any, Any, Any]  # X_train, y_train, X_test, y_test
Happening = tuple[str, Any, Any]

# What forked workers read: (tasks by run id, the split, the fit function). Set before the
# pool forks, so every worker has it without anything being sent.
_shared: tuple[Tasks, Split, Fit] | None = None
_loky_used = False


def can_fork() -> bool:
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def fits(
    runs: list[Any], tasks: Tasks, split: Split, workers: int, fit: Fit
) -> Iterator[Happening]:
    """`fit(tasks[run.id], *split)` for every run on `workers` processes, as happenings."""
    if can_fork():
        return _forked_fits(runs, tasks, split, workers, fit)
    return _loky_fits(runs, tasks, split, workers, fit)


def stop_workers() -> None:
    """Kill the workers at once (on cancel: they would finish their model first). Best
    effort, while a KeyboardInterrupt is being raised: nothing here may replace it."""
    import multiprocessing

    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()
    if _loky_used:  # asking for loky's executor otherwise would start one, workers and all
        with contextlib.suppress(Exception):
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor().shutdown(wait=False, kill_workers=True)


def _fit_in_child(run_id: str, answer: Any) -> None:
    """A forked worker's whole life: fit one run, send its result back."""
    # a signal meant for the runner must not become a KeyboardInterrupt in the middle of a
    # fit here: the runner cancels by killing its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert _shared is not None, "a forked worker without the shared tasks"
    tasks, split, fit = _shared
    answer.send(fit(tasks[run_id], *split))
    answer.close()


def _died(run: Any, exitcode: int | None) -> dict[str, Any]:
    how = f"killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"exit {exitcode}"
    return {
        "run_id": run.id,
        "model": run.model,
        "status": "failed",
        "error": f"the worker process fitting it died ({how}: out of memory?)",
    }


def _forked_fits(
    runs: list[Any], tasks: Tasks, split: Split, workers: int, fit: Fit
) -> Iterator[Happening]:
    """One forked process per run, `workers` at a time: a worker that dies (killed, out of
    memory, a crash in native code) fails its own run only."""
    import multiprocessing
    from multiprocessing.connection import wait

    global _shared
    _shared = (tasks, split, fit)
    from threadpoolctl import threadpool_limits

    context = multiprocessing.get_context("fork")
    # The cores are shared out between the workers, as joblib does for its own: BLAS and
    # OpenMP would start a thread per core in every worker, and threads that outnumber the
    # cores spin against each other (a 30 ms fit took 700 ms). Set here, before the forks,
    # the limits are inherited: no worker pays for finding the libraries again.
    limits = threadpool_limits(max(1, (os.cpu_count() or 1) // workers))
    active: dict[Any, tuple[Any, Any]] = {}  # the result's pipe -> (run, process)
    waiting = iter(runs)

    def start(run: Any) -> None:
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_fit_in_child, args=(run.id, writer), daemon=True)
        process.start()
        writer.close()
        active[reader] = (run, process)

    try:
        for run in itertools.islice(waiting, workers):
            start(run)
            yield "started", run, ""
        while active:
            for reader in wait(list(active)):
                run, process = active.pop(reader)
                try:
                    result = reader.recv()
                except (EOFError, OSError):  # it died before answering
                    process.join()
                    result = _died(run, process.exitcode)
                reader.close()
                process.join()
                yield "finished", result, None
                following = next(waiting, None)
                if following is not None:
                    start(following)
                    yield "started", following, ""
    except BaseException:  # a cancel (or the consumer gone): no fit may outlive the runner's say
        stop_workers()
        raise
    finally:
        _shared = None
        limits.restore_original_limits()


def _loky_fits(
    runs: list[Any], tasks: Tasks, split: Split, workers: int, fit: Fit
) -> Iterator[Happening]:
    from joblib import Parallel, delayed

    global _loky_used
    _loky_used = True
    # Workers take the tasks one at a time in this order (batch_size=1), each the next one as it
    # finishes its own.
    waiting = iter(runs)
    for run in itertools.islice(waiting, workers):
        yield "started", run, ""
    parallel = Parallel(n_jobs=workers, return_as="generator_unordered", batch_size=1)
    for result in parallel(delayed(fit)(tasks[run.id], *split) for run in runs):
        yield "finished", result, None
        run = next(waiting, None)
        if run is not None:
            yield "started", run, ""
