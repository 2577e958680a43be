"""Progress events shared by the CLI and the TUI.

Long work runs in a runner subprocess that writes these as JSON lines; `engine.runner_client`
turns each line back into one of these dataclasses and hands it to the caller's callback. The CLI
prints them; the TUI's workers post them as Textual messages. Modelled on Kedro's hook specs:
a small, fixed vocabulary of lifecycle moments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Event:
    def to_json(self) -> dict[str, Any]:
        return {"event": _NAMES[type(self)], **asdict(self)}


@dataclass
class Log(Event):
    """A line for the terminal and the log file (already formatted)."""

    message: str
    level: str = "info"


@dataclass
class Output(Event):
    """A line a child process printed (user code, pip): shown as-is, dimmed."""

    line: str
    stream: str = "stderr"


@dataclass
class Progress(Event):
    done: int
    total: int  # 0: not known (a download without a Content-Length)
    label: str = ""
    unit: str = ""  # "bytes": done/total are bytes (units.transfer_text says them)
    rate: float | None = None  # units per second so far


@dataclass
class DataVersionAdded(Event):
    version: dict[str, Any]
    created: bool


@dataclass
class RunQueued(Event):
    """A run is recorded and waits for a free worker."""

    run_id: str
    model: str
    label: str
    data_version: str | None


@dataclass
class RunStarted(Event):
    """A worker took the run: it is being fitted from now on."""

    run_id: str
    model: str
    label: str
    data_version: str | None


@dataclass
class RunFinished(Event):
    run_id: str
    model: str
    label: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    duration_seconds: float | None = None
    error: str | None = None


@dataclass
class RetrainStep(Event):
    """A step of `haj retrain` (engine.retrain) began ("started") or ended ("done", "skipped",
    "failed", "cancelled"; `seconds` and a one-line `detail` then)."""

    step: str
    status: str
    seconds: float | None = None
    detail: str = ""


@dataclass
class PipelineStep(Event):
    """A step of `haj pipeline run` (engine.pipeline) began ("started"), is tried again
    ("retrying", with the attempt and the error in `detail`) or ended ("done", "skipped",
    "failed", "cancelled")."""

    step: str
    status: str
    attempt: int = 1
    seconds: float | None = None
    detail: str = ""


@dataclass
class TrainBackend(Event):
    """Where a training's fits run: "local" (haj's worker processes) or "dask" (the cluster at
    `address`, engine.cluster); said at its start and whenever the cluster's workers change."""

    backend: str
    workers: int
    threads: int = 0
    address: str = ""


@dataclass
class TrialFinished(Event):
    """A trial of `haj tune` (engine.tuning) ended: "finished" (its score is the folds' mean,
    `std` their spread), "pruned" (stopped after `folds` folds, below the median of earlier
    trials there), "failed" or "cancelled"; with the study's best so far."""

    study: str
    trial: int
    run_id: str
    label: str
    status: str
    metric: str
    value: float | None = None
    std: float | None = None
    higher_is_better: bool = True  # the metric's direction: what "best" means
    folds: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None
    best_trial: int | None = None
    best_value: float | None = None
    error: str | None = None


@dataclass
class Failed(Event):
    """The runner stopped on a user error: re-raised in the parent as the same HajError type."""

    kind: str
    message: str
    hint: dict[str, Any] | None = None  # errors.Hint's fields, when the error carried one


@dataclass
class Result(Event):
    """The runner's final answer."""

    payload: dict[str, Any]


_NAMES: dict[type, str] = {
    Log: "log",
    Output: "output",
    Progress: "progress",
    DataVersionAdded: "data_version",
    RunQueued: "run_queued",
    RunStarted: "run_started",
    RunFinished: "run_finished",
    RetrainStep: "retrain_step",
    PipelineStep: "pipeline_step",
    TrainBackend: "train_backend",
    TrialFinished: "trial_finished",
    Failed: "failed",
    Result: "result",
}
_TYPES = {name: cls for cls, name in _NAMES.items()}

Callback = Callable[[Event], None]


def from_json(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = _TYPES[data.pop("event")]
    return cls(**data)


def ignore(_: Event) -> None:
    """A callback that drops every event (for scripts and tests)."""
