"""A fake engine for the app's tests: `FakeWorkspace` / `FakeProject` have engine.api's method
names and return its types, from data held in memory (no files, no processes, no sockets).

The app receives its workspace as an object (as Harlequin receives its adapter), so a screen
test hands it `FakeWorkspace.populated()` and runs in milliseconds. What a verb did is recorded
in `FakeWorkspace.calls` for tests to assert on. Plain engine data (metric names, the model
catalog, name rules) comes from the engine itself, so the fake cannot drift from it there.

`FakeProject.train_gate`: when set to a threading.Event, training waits for it (or for the
cancel token) before each model, so a test can look at the app while training "runs".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine import events
from engine.api import (
    CODE_FILES,
    PREDICTION_TYPES,
    BuildSettings,
    Champion,
    Changes,
    ContainerRecord,
    ContainerStatus,
    CrownResult,
    DataSummary,
    DeployDefaults,
    DeploymentRecord,
    ImageRecord,
    MonitorResult,
    ProjectAPI,
    ProjectRow,
    ProjectStatus,
    Run,
    RunnerUp,
    ServerRecord,
    ServerStats,
    SessionRun,
    TestReply,
    TrainSession,
    default_metric,
    known_fields,
    mask,
    metrics_for,
    validate_config,
)
from engine.catalog import builtin_names
from engine.configure import check_changes
from engine.errors import (
    Cancelled,
    ConfigError,
    DataError,
    Hint,
    NoChampion,
    ProjectExists,
    ProjectNotFound,
    UsageError,
)
from engine.metrics import check_metric
from engine.names import name_for_title, validate_name
from engine.project import DEFAULTS
from engine.runs import Leaderboard

FAKE_ROOT = Path("/fake/ml_projects")
T0 = "2026-01-05T09:00:00+00:00"

CODE = {
    "retriever": "def retrieve(config, secrets):\n    return load_example()\n",
    "processor": "def process(raw):\n    return raw.dropna()\n",
    "model": "def models():\n    return {}\n",
}
# deterministic scores: model -> metric -> value (what a fake training reports)
CLASSIFICATION_SCORES = {
    "acc": 0.95,
    "precision": 0.93,
    "recall": 0.96,
    "f1": 0.94,
    "roc_auc": 0.97,
}
REGRESSION_SCORES = {"rmse": 54.1, "mae": 43.2, "mse": 2926.8, "r2": 0.45}
HIGHER_IS_BETTER = {"acc", "precision", "recall", "f1", "roc_auc", "r2"}


def _config(name: str, prediction: str, url: str = "", target: str = "target") -> dict[str, Any]:
    config: dict[str, Any] = {
        "project": {"title": name.capitalize(), "prediction": prediction, "id": f"id-{name}"},
        "data": {
            "url": url,
            "target": target,
            "api_key_header": "X-API-Key",
            "timeout": 60,
            "dedupe": False,
        },
        "training": {
            "test_size": 0.2,
            "random_state": 42,
            "n_jobs": -1,
            "metric": default_metric(prediction),
        },
        "serving": {
            "host": "127.0.0.1",
            "port": 8000,
            "max_body_mb": 10,
            "prediction_log_mb": 50,
            "prediction_log_files": 5,
            "unknown_categories": "accept",
        },
    }
    for section, values in DEFAULTS.items():  # what the engine adds later is there too
        config.setdefault(section, {})
        for key, value in values.items():
            config[section].setdefault(key, value)
    return config


class FakeWorkspace:
    """engine.api.Workspace in memory."""

    def __init__(self, root: Path = FAKE_ROOT) -> None:
        self.root = Path(root)
        self._projects: dict[str, FakeProject] = {}
        self.calls: list[tuple[Any, ...]] = []  # (verb, project, args...) in order

    @classmethod
    def populated(cls, root: Path = FAKE_ROOT) -> FakeWorkspace:
        """cancer (trained, crowned, served), diabetes (trained, crowned), wine (just created)."""
        ws = cls(root)
        cancer = ws.add("cancer", "classification", url="example:breast_cancer")
        cancer.add_data(rows=569, columns=31)
        cancer.add_runs(
            ["logistic_regression", "gaussian_nb"],
            crown=True,
            scores={"logistic_regression": {"acc": 0.9825, "f1": 0.986}},
        )
        cancer.serving = ServerRecord(
            pid=4242, host="127.0.0.1", port=8000, url="http://127.0.0.1:8000", started_at=T0
        )
        diabetes = ws.add("diabetes", "regression", url="example:diabetes")
        diabetes.add_data(rows=442, columns=11)
        diabetes.add_runs(
            ["linear_regression", "ridge"], crown=True, scores={"ridge": {"rmse": 53.78}}
        )
        for trained in (cancer, diabetes):  # as `haj demo` trains: one job
            trained._config["training"]["n_jobs"] = 1
        ws.add("wine", "classification", url="example:wine")
        return ws

    def add(self, name: str, prediction: str, url: str = "", target: str = "target") -> FakeProject:
        project = FakeProject(self, name, _config(name, prediction, url, target))
        self._projects[name] = project
        return project

    # ---- engine.api.Workspace --------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._projects)

    def projects(self) -> list[ProjectRow]:
        return [self._projects[name].row() for name in self.names()]

    def project(self, name: str) -> FakeProject:
        if name not in self._projects:
            raise ProjectNotFound(f"no project named {name!r} in {self.root}", Hint("init"))
        return self._projects[name]

    def create(
        self,
        name: str,
        prediction: str,
        *,
        example: str | None = None,
        url: str | None = None,
        target: str | None = None,
        title: str | None = None,
    ) -> FakeProject:
        validate_name(name)
        if name in self._projects:
            raise ProjectExists(f"a project named {name!r} already exists in {self.root}")
        if prediction not in PREDICTION_TYPES:
            raise UsageError(f"prediction must be one of {', '.join(PREDICTION_TYPES)}")
        self.calls.append(("create", name, prediction, example))
        source = f"example:{example}" if example else (url or "")
        project = self.add(name, prediction, source, target or "target")
        if title:
            project._config["project"]["title"] = title
        return project

    def validate_name(self, name: str) -> str:
        return validate_name(name)

    def rename(self, name: str, new_name: str, title: str | None = None) -> FakeProject:
        project = self.project(name)
        validate_name(new_name)
        if new_name != name and new_name in self._projects:
            raise ProjectExists(f"a project named {new_name!r} already exists in {self.root}")
        self.calls.append(("rename", name, new_name))
        del self._projects[name]
        project.name = new_name
        self._projects[new_name] = project
        if title is not None:
            project._config["project"]["title"] = title
        return project

    def delete(self, name: str) -> None:
        self.project(name)
        self.calls.append(("delete", name))
        del self._projects[name]


class FakeProject:
    """engine.api.ProjectAPI in memory. One object per project: every call sees its state."""

    def __init__(self, workspace: FakeWorkspace, name: str, config: dict[str, Any]) -> None:
        self.workspace = workspace
        self.name = name
        self._config = config
        self.broken: str | None = None  # a ConfigError message: config() raises it
        self.code: dict[str, str] = dict(CODE)
        self.env: dict[str, str] = {}
        self.packages: list[str] = []
        self.data: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.champion: dict[str, Any] | None = None
        self.serving: ServerRecord | None = None
        self.extra_models: list[str] = []  # what model.py adds
        self.train_gate: threading.Event | None = None
        self.editor: list[str] | None = None  # editor_command(); None: "not found"
        self.train_lines: list[str] = []  # logs/train.log (compacted), as train_log() reads it
        self.monitor_reports: list[dict[str, Any]] = []  # monitor(save=True)'s headlines

    def __repr__(self) -> str:
        return f"FakeProject({self.name!r})"

    @property
    def path(self) -> Path:
        return self.workspace.root / self.name

    @property
    def prediction(self) -> str:
        return str(self._config["project"]["prediction"])

    def _call(self, verb: str, *args: Any) -> None:
        self.workspace.calls.append((verb, self.name, *args))

    # ---- building the state ----------------------------------------------------------------
    def add_data(self, rows: int = 100, columns: int = 5) -> dict[str, Any]:
        """A raw version and its processed version (the current pair)."""
        n = len(self.data) // 2 + 1
        raw = {
            "id": f"raw-{n:03d}",
            "kind": "raw",
            "seq": n,
            "sha256": f"{n:064x}",
            "bytes": rows * columns * 8,
            "format": "csv",
            "rows": rows,
            "columns": columns,
            "source": str(self._config["data"]["url"]),
            "parent": None,
            "path": f"data/raw/raw-{n:03d}.csv",
            "created_at": f"2026-01-0{min(n, 9)}T09:00:00+00:00",
            "last_retrieved_at": None,
        }
        processed = {
            **raw,
            "id": f"processed-{n:03d}",
            "kind": "processed",
            "format": "parquet",
            "source": "processor.py",
            "parent": raw["id"],
            "path": f"data/processed/processed-{n:03d}.parquet",
            "created_at": f"2026-01-0{min(n, 9)}T09:01:00+00:00",
        }
        for version in self.data:
            version["current"] = False
        self.data += [{**raw, "current": True}, {**processed, "current": True}]
        return raw

    def _scores(self, model: str) -> dict[str, float]:
        """Made-up metrics, different by model and always the same."""
        base = CLASSIFICATION_SCORES if self.prediction == "classification" else REGRESSION_SCORES
        shift = (sum(map(ord, model)) % 7) / 100
        worse = {k: -shift if k in HIGHER_IS_BETTER else shift * 100 for k in base}
        return {k: round(v + worse[k], 4) for k, v in base.items()}

    def add_runs(
        self,
        models: list[str],
        crown: bool = False,
        scores: dict[str, dict[str, float]] | None = None,
    ) -> list[dict[str, Any]]:
        """Finished runs of `models` (scores: fixed metrics of some models, else made up)."""
        added = []
        for model in models:
            seq = sum(1 for run in self.runs if run["model"] == model) + 1
            run = {
                "id": f"{self.name}-run-{len(self.runs) + 1:02d}",
                "session": "s1",
                "model": model,
                "seq": seq,
                "label": f"{model}-{seq}",
                "status": "finished",
                "prediction": self.prediction,
                "data_version": self._current("processed"),
                "params": {},
                "error": None,
                "started_at": T0,
                "finished_at": T0,
                "fit_seconds": 0.5,
                "duration_seconds": 0.6,
                "model_path": f"runs/{model}.joblib",
                "model_sha256": None,
                "pid": None,
                "metrics": {**self._scores(model), **(scores or {}).get(model, {})},
                "notes": {},
            }
            self.runs.append(run)
            added.append(run)
        if crown:
            self.crown()
        return added

    def _current(self, kind: str) -> str | None:
        ids = [v["id"] for v in self.data if v["kind"] == kind and v.get("current")]
        return ids[-1] if ids else None

    def row(self) -> ProjectRow:
        if self.broken:
            return ProjectRow(self.name, "", "?", error=self.broken)
        champion = self.champion
        server = None
        if self.serving is not None:  # as engine.workspace.list_projects says it
            server = f"{self.serving.host}:{self.serving.port}"
        return ProjectRow(
            name=self.name,
            title=str(self._config["project"]["title"]),
            prediction=self.prediction,
            data_versions=sum(1 for v in self.data if v["kind"] == "raw"),
            runs=len(self.runs),
            champion=champion["model"] if champion else None,
            champion_run=champion["run_id"] if champion else None,
            metric=champion["metric"] if champion else None,
            score=champion["value"] if champion else None,
            server=server,
        )

    # ---- config and code -------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        if self.broken:
            raise ConfigError(self.broken)
        return self._config

    def secrets(self) -> dict[str, str]:
        return {key: mask(value) for key, value in self.env.items()}

    def validate_changes(self, changes: Changes) -> None:
        check_changes(  # the engine's own checks, on the fake's values
            changes,
            name=self.name,
            prediction=self.config()["project"]["prediction"],
            taken=lambda name: name in self.workspace.names(),
        )

    def apply_changes(
        self, changes: Changes, on_event: events.Callback = events.ignore
    ) -> tuple[FakeProject, list[str]]:
        self.validate_changes(changes)
        self._call("apply_changes", changes)
        notes: list[str] = []
        config = self._config
        trial = {section: dict(values) for section, values in config.items()}
        if changes.url is not None:
            trial["data"]["url"] = changes.url
            notes.append(f"data.url = {changes.url}")
        if changes.target:
            trial["data"]["target"] = changes.target.strip()
            notes.append(f"data.target = {changes.target.strip()}")
        trial["training"].update(changes.training)
        notes += [f"training.{k} = {v}" for k, v in changes.training.items()]
        if changes.prediction and changes.prediction != self.prediction:
            trial["project"]["prediction"] = changes.prediction
            trial["training"]["metric"] = default_metric(changes.prediction)
            self.champion = None
            notes.append(f"prediction = {changes.prediction}; champion cleared (old runs kept)")
        if changes.metric:
            trial["training"]["metric"] = changes.metric.lower()
            notes.append(f"training.metric = {changes.metric.lower()}")
        validate_config(trial, where="config.toml")
        self._config.update(trial)
        if changes.api_key is not None:
            self.env["HAJ_API_KEY"] = changes.api_key
            notes.append("HAJ_API_KEY saved to .env")
        if changes.dependencies:
            added = self.install(changes.dependencies, on_event)
            notes.append(f"requirements.txt: added {', '.join(added) or 'nothing new'}")
        if changes.title is not None and changes.title != self.name:
            new_name = name_for_title(changes.title)
            title = None if new_name == changes.title else changes.title
            if new_name != self.name:
                self.workspace.rename(self.name, new_name, title)
                notes.append(f"renamed to {self.name} ({self.path})")
            if title is not None:
                self._config["project"]["title"] = title
                notes.append(f"title = {title}")
        return self, notes

    def metrics(self) -> list[str]:
        return list(metrics_for(self.config()["project"]["prediction"]))

    # ---- watching (engine.api's changed_since: here a stamp of the state in memory) ---------

    def stamp(self) -> tuple[Any, ...]:
        return (
            tuple((r["id"], r["status"]) for r in self.runs),
            repr(self.champion),
            len(self.data),
            repr(self._config),
            len(self.train_lines),
        )

    def changed_since(self, stamp: Any) -> tuple[Any, frozenset[str]]:
        now = self.stamp()
        if stamp is None:
            return now, frozenset({"store", "config", "code", "log"})
        changed = set()
        if now[:3] != stamp[:3]:
            changed.add("store")
        if now[3] != stamp[3]:
            changed.add("config")
        if now[4] != stamp[4]:
            changed.add("log")
        return now, frozenset(changed)

    def code_path(self, which: str) -> Path:
        if which not in CODE_FILES:
            raise UsageError(f"no code file {which!r}")
        return self.path / f"{which}.py"

    def read_code(self, which: str) -> str:
        self.code_path(which)
        if which not in self.code:
            raise FileNotFoundError(self.code_path(which))
        return self.code[which]

    def write_code(self, which: str, text: str) -> None:
        self.code_path(which)
        self._call("write_code", which)
        self.code[which] = text

    code_problem = staticmethod(ProjectAPI.code_problem)  # the engine's own check

    def columns(self) -> list[str]:
        current = [v for v in self.versions("raw") if v.get("current")]
        return list(self.preview(current[0]["id"], 1)["head"].columns) if current else []

    def editor_command(self) -> list[str]:
        if self.editor is None:
            raise UsageError("no editor: set $VISUAL or $EDITOR")
        return list(self.editor)

    def requirements(self) -> list[str]:
        return list(self.packages)

    def install(
        self, packages: Sequence[str] = (), on_event: events.Callback = events.ignore
    ) -> list[str]:
        self._call("install", list(packages))
        added = [p for p in packages if p not in self.packages]
        for package in packages:
            on_event(events.Output(f"Requirement already satisfied: {package}", "stdout"))
        self.packages += added
        return added

    # ---- data ------------------------------------------------------------------------------
    def retrieve(
        self, on_event: events.Callback = events.ignore, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        self._call("retrieve")
        self.config()
        if not self._config["data"]["url"]:
            raise DataError("no data source: set data.url", Hint("set-url", self.name))
        if cancel is not None and cancel.is_set():
            raise Cancelled("retrieve cancelled")
        on_event(events.Log(f"retrieving {self._config['data']['url']}"))
        raw = self.add_data()
        version = {**raw, "current": True}
        on_event(events.DataVersionAdded(version, True))
        return {"version": version, "created": True}

    def process(
        self,
        version: str | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        self._call("process", version)
        processed = [v for v in self.data if v["kind"] == "processed" and v.get("current")]
        if not processed:
            raise DataError("no data yet", Hint("retrieve", self.name))
        on_event(events.Log("processing"))
        return {"version": processed[-1], "created": False}

    def versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        self.config()
        return [dict(v) for v in self.data if kind is None or v["kind"] == kind]

    def preview(self, version_id: str, rows: int = 20) -> dict[str, Any]:
        import pandas as pd

        version = next((v for v in self.data if v["id"] == version_id), None)
        if version is None:
            raise DataError(f"no data version {version_id!r} in {self.name!r}")
        frame = pd.DataFrame({"x1": [1.5, 2.0, 3.25], "x2": ["a", "b", "a"], "target": [0, 1, 0]})
        summary = [
            {
                "column": "x1",
                "type": "float64",
                "missing_pct": 0.0,
                "min": 1.5,
                "mean": 2.25,
                "max": 3.25,
            },
            {"column": "x2", "type": "object", "missing_pct": 0.0, "top": ["a", "b"]},
            {
                "column": "target",
                "type": "int64",
                "missing_pct": 0.0,
                "min": 0,
                "mean": 0.33,
                "max": 1,
            },
        ]
        return {"version": version, "head": frame.head(rows), "summary": summary}

    def example_record(self, index: int = 0) -> dict[str, Any]:
        if not self.data:
            raise DataError("no data yet", Hint("retrieve", self.name))
        return {"x1": 1.5 + index, "x2": "a"}

    # ---- training and runs -----------------------------------------------------------------
    def models(self, project_models: bool = True) -> list[str]:
        builtin = builtin_names(self.config()["project"]["prediction"])
        return builtin + (list(self.extra_models) if project_models else [])

    def train(
        self,
        models: list[str] | None = None,
        *,
        data: str | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        self._call("train", models, data)
        available = self.models()
        chosen = models or available
        unknown = [m for m in chosen if m not in available]
        if unknown:
            raise UsageError(f"unknown model {unknown[0]!r}")
        if not self.data:
            raise DataError("no data yet", Hint("retrieve", self.name))
        done: list[dict[str, Any]] = []
        for i, model in enumerate(chosen):
            if self.train_gate is not None:
                while not self.train_gate.wait(0.01):
                    if cancel is not None and cancel.is_set():
                        break
            if cancel is not None and cancel.is_set():
                raise Cancelled("training cancelled: unfinished runs recorded as cancelled")
            on_event(events.Progress(i, len(chosen)))
            [run] = self.add_runs([model])
            on_event(events.RunQueued(run["id"], model, run["label"], run["data_version"]))
            on_event(events.RunStarted(run["id"], model, run["label"], run["data_version"]))
            on_event(
                events.RunFinished(run["id"], model, run["label"], "finished", run["metrics"], 0.6)
            )
            done.append(run)
        on_event(events.Progress(len(chosen), len(chosen)))
        return {
            "session": "s2",
            "data_version": data or self._current("processed"),
            "runs": [
                {
                    "run_id": r["id"],
                    "model": r["model"],
                    "status": r["status"],
                    "metrics": r["metrics"],
                    "error": None,
                    "duration_seconds": 0.6,
                }
                for r in done
            ],
        }

    def tune(
        self,
        model: str,
        *,
        trials: int | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """engine.tuning's outcome, made up: trial n scores 0.80 + 0.01 * (7n mod 10), every
        fourth is pruned; waits on train_gate before each trial, as train() does."""
        self._call("tune", model, trials)
        if model not in self.models():
            raise UsageError(f"unknown model {model!r}")
        if not self.data:
            raise DataError("no data yet", Hint("retrieve", self.name))
        metric = str(self.config()["training"]["metric"])
        done: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for n in range(trials or 20):
            if self.train_gate is not None:
                while not self.train_gate.wait(0.01) and not (cancel and cancel.is_set()):
                    pass
            if cancel is not None and cancel.is_set():
                raise Cancelled("tune cancelled; unfinished work was recorded as cancelled")
            value, status = 0.80 + 0.01 * ((7 * n) % 10), "pruned" if n % 4 == 3 else "finished"
            trial = {"trial": n, "status": status, "value": value, "std": 0.01, "params": {}}
            trial["params"] = {"C": 0.1 * (n + 1), "class_weight": None}
            if status == "finished" and (best is None or value > best["value"]):
                best = trial
            done.append(trial)
            on_event(
                events.TrialFinished(
                    study=f"{model}-1",
                    trial=n,
                    run_id=f"trial{n}",
                    label=f"{model}-{n + 1}",
                    status=status,
                    metric=metric,
                    value=value,
                    std=0.01,
                    folds=5 if status == "finished" else 2,
                    params=trial["params"],
                    duration_seconds=0.2,
                    best_trial=best["trial"] if best else None,
                    best_value=best["value"] if best else None,
                )
            )
            on_event(events.Progress(n + 1, trials or 20, label="tuning"))
        label = f"{model}-{len(done) + 1}"
        refit = {"status": "finished", "label": label, "metrics": {metric: 0.9}}
        return {
            "study": f"{model}-1",
            "metric": metric,
            "trials": done,
            "best": best,
            "refit": refit,
        }

    def last_session(self) -> TrainSession | None:
        """The runs of the last session (the fake's `session` key), queued ones included."""
        if not self.runs:
            return None
        session = self.runs[-1]["session"]
        runs = [r for r in self.runs if r["session"] == session]
        return TrainSession(
            session,
            runs[0]["data_version"],
            [
                SessionRun(
                    run_id=r["id"],
                    model=r["model"],
                    label=r["label"],
                    status=r["status"],
                    metrics=dict(r["metrics"]),
                    duration_seconds=r.get("duration_seconds"),
                    started=r.get("started"),
                    error=r.get("error"),
                )
                for r in runs
            ],
        )

    def train_estimates(
        self, models: list[str], data_version: str | None = None
    ) -> dict[str, float]:
        durations: dict[str, float] = {}
        for run in self.runs:
            if run["model"] in models and run["status"] == "finished":
                durations[run["model"]] = float(run.get("duration_seconds") or 0.6)
        return durations

    def train_log(self, offset: int | None = None, lines: int = 300) -> tuple[list[str], int]:
        start = max(0, len(self.train_lines) - lines) if offset is None else offset
        return list(self.train_lines[start:]), len(self.train_lines)

    def leaderboard(
        self, metric: str | None = None, limit: int | None = None, include_all: bool = True
    ) -> Leaderboard:
        config = self.config()
        chosen = check_metric(metric or config["training"]["metric"], self.prediction)
        finished = [r for r in self.runs if r["status"] == "finished"]
        others = [r for r in self.runs if r["status"] != "finished"]
        finished.sort(
            key=lambda r: r["metrics"].get(chosen.name, 0.0), reverse=chosen.higher_is_better
        )
        runs = finished + (others if include_all else [])
        return Leaderboard(
            chosen.name,
            chosen.higher_is_better,
            list(metrics_for(self.prediction)),
            [dict(r) for r in runs[:limit]],
            dict(self.champion) if self.champion else None,
        )

    def crown(self, metric: str | None = None) -> CrownResult:
        board = self.leaderboard(metric)
        best = board.finished()
        if not best:
            raise NoChampion("no finished run to crown", Hint("train", self.name))
        run = best[0]
        previous = dict(self.champion) if self.champion else None
        value = run["metrics"][board.metric]
        self.champion = {
            "run_id": run["id"],
            "metric": board.metric,
            "value": value,
            "previous_run_id": previous["run_id"] if previous else None,
            "crowned_at": T0,
            "model": run["model"],
        }
        second = best[1] if len(best) > 1 else None
        runner_up = (
            RunnerUp(second["id"], second["model"], second["metrics"][board.metric])
            if second
            else None
        )
        return CrownResult(
            champion=Champion(**self.champion),
            run=known_fields(Run, run),
            metric=board.metric,
            higher_is_better=board.higher_is_better,
            value=value,
            runner_up=runner_up,
            margin=abs(value - runner_up.value) if runner_up else None,
            previous=Champion(**previous) if previous else None,
            path=str(self.path / "models" / "champion.joblib"),
        )

    def champion_history(self) -> list[dict[str, Any]]:
        return [dict(self.champion)] if self.champion else []

    # ---- monitoring (the Monitor tab) -------------------------------------------------------
    def monitor(
        self,
        current: str | None = None,
        *,
        since: str | None = None,
        last: int | None = None,
        method: str | None = None,
        save: bool = True,
    ) -> MonitorResult:
        """Two numeric features, neither drifted, over 200 rows of `current` (default: live
        when serving, else the current raw version)."""
        from engine.drift import ColumnDrift, DriftReport, Quality

        if self.champion is None:
            raise NoChampion("no champion to monitor", Hint("crown", self.name))
        self._call("monitor", current, save)
        raw = next((v["id"] for v in self.data if v["kind"] == "raw" and v["current"]), None)
        source = current or ("live" if self.serving else raw or "log")
        features = [
            ColumnDrift(name, "numeric", "ks", 0.05, 0.05, 0.5, False, 200, 0.0, 0.0, 0)
            for name in ("x1", "x2")
        ]
        report = DriftReport(
            rows=200, reference_rows=400, min_rows=100, too_small=False, regime="tests",
            features=features, drift_share=0.0, drift_share_threshold=0.5, dataset_drift=False,
            prediction=None, target=None, quality=Quality(), missing_share=0.0,
        )  # fmt: skip
        result = MonitorResult(
            report, str(self.champion["run_id"]), str(self.champion.get("model") or ""), source,
            "all rows", f"2026-01-15T09:{len(self.monitor_reports):02d}:00+00:00",
        )  # fmt: skip
        if save:
            self.monitor_reports.append(
                {"created_at": result.created_at, "source": source, "window": "all rows",
                 "rows": 200, "too_small": False, "dataset_drift": False, "drift_share": 0.0,
                 "missing_share": 0.0, "quality_issues": 0}
            )  # fmt: skip
        return result

    def monitor_history(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.monitor_reports[-limit:] if limit else list(self.monitor_reports)

    def evaluations(self, run: str | None = None) -> list[dict[str, Any]]:
        return []

    def run_artifacts(self, run: str) -> dict[str, Any]:
        """No artifacts: the fake's runs have none, as runs trained before haj kept them."""
        return {"run_id": run, "files": []}

    def diagnose(self, live: Any = None, *, index_timeout: float | None = None) -> Any:
        """An empty diagnosis: the fake has no files, no traffic and no package index."""
        from engine.diagnose import Dependencies, Diagnosis

        self._call("diagnose")
        return Diagnosis(
            project=self.name,
            at="2026-01-15T09:30:00+00:00",
            data_missing=None,
            live_missing=None,
            timings=[],
            dependencies=Dependencies("python", [], [], False, "the fake has no package index"),
            champion=None,
            predictions=[],
            notes={"data": "no data read by the fake", "live": "no live traffic",
                   "timings": "nothing timed", "predictions": "no predictions logged"},
        )  # fmt: skip

    # ---- status and serving ----------------------------------------------------------------
    def status(self) -> ProjectStatus:
        config = self.config()
        runs: dict[str, int] = {}
        for run in self.runs:
            runs[run["status"]] = runs.get(run["status"], 0) + 1
        return ProjectStatus(
            name=self.name,
            path=str(self.path),
            title=str(config["project"]["title"]),
            prediction=self.prediction,
            metric=str(config["training"]["metric"]),
            data=DataSummary(
                raw_versions=sum(v["kind"] == "raw" for v in self.data),
                processed_versions=sum(v["kind"] == "processed" for v in self.data),
            ),
            runs=runs,
            champion=Champion(**self.champion) if self.champion else None,
            server=self.serving,
        )

    def server(self) -> ServerRecord | None:
        return self.serving

    def serving_address(self) -> str:
        serving = self.config()["serving"]
        return f"http://{serving['host']}:{serving['port']}"

    def start_server(
        self, host: str | None = None, port: int | None = None, workers: int | None = None
    ) -> ServerRecord:
        self._call("start_server")
        if self.champion is None:
            raise NoChampion("no champion to serve", Hint("crown", self.name))
        serving = self.config()["serving"]
        host = host or serving["host"]
        port = int(port or serving["port"])
        self.serving = ServerRecord(4242, host, port, f"http://{host}:{port}", workers or 1, T0)
        return self.serving

    def stop_server(self) -> bool:
        self._call("stop_server")
        running = self.serving is not None
        self.serving = None
        return running

    def server_stats(self, server: ServerRecord, timeout: float = 1.0) -> ServerStats:
        return ServerStats(
            server.url,
            True,
            {"status": "ok", "model": self.champion["model"] if self.champion else None},
            {"total": 3},
            {"window": {"p50_ms": 1.2, "p95_ms": 2.5, "p99_ms": 3.0, "mean_ms": 1.4}},
        )

    def test_request(self, server: ServerRecord, index: int = 0) -> TestReply:
        return TestReply(index, self.example_record(index), 200, 1.5, {"prediction": [0]})

    # ---- images, containers, AWS (fixed answers) -------------------------------------------
    def build_settings(
        self,
        base_image: str | None = None,
        wheelhouse: bool | None = None,
        network: str | None = None,
    ) -> BuildSettings:
        return BuildSettings(
            base_image or "python:3.12-slim", bool(wheelhouse), network or "bridge"
        )

    def last_build(self) -> ImageRecord | None:
        return None

    def images(self) -> list[dict[str, Any]]:
        return []

    def container_status(self) -> ContainerStatus:
        return ContainerStatus()

    def container_logs(self, tail: int = 100, follow: bool = False) -> Iterator[str]:
        return iter(())

    def deploy_defaults(self) -> DeployDefaults:
        return DeployDefaults("eu-west-1", "ml.t2.medium", 1)

    def deployment(self) -> DeploymentRecord | None:
        return None

    # ---- added for the Container and Deploy tab tests ----------------------------------------
    deployed: DeploymentRecord | None = None  # what deploy() recorded (deployment() stays None)

    def build(
        self,
        settings: BuildSettings | None = None,
        *,
        tag: str | None = None,
        on_event: events.Callback = events.ignore,
    ) -> ImageRecord:
        settings = settings or self.build_settings()
        self._call("build", settings)
        if self.champion is None:
            raise NoChampion("no champion to build", Hint("crown", self.name))
        image = f"haj/{self.name}:{self.champion['run_id']}"
        on_event(events.Log(f"building {image} from {settings.base_image}"))
        on_event(events.Progress(1, 2, "Step 1/2"))
        return ImageRecord(
            image=image,
            tags=[image],
            size=123_000_000,
            base_image=settings.base_image,
            network=settings.network,
            run_id=self.champion["run_id"],
            model=self.champion["model"],
            wheelhouse=settings.wheelhouse,
            built_at=T0,
            seconds=1.0,
        )

    def start_container(
        self,
        *,
        image: str | None = None,
        port: int = 8080,
        network: str = "bridge",
        on_event: events.Callback = events.ignore,
    ) -> ContainerRecord:
        self._call("start_container", port, network)
        name = f"haj-{self.name}-id"
        url = f"http://127.0.0.1:{port}"
        return ContainerRecord(f"{name}-0", name, f"haj/{self.name}:latest", url, port, network, T0)

    def stop_container(self, on_event: events.Callback = events.ignore) -> int:
        self._call("stop_container")
        return 0

    def deploy_options(self, **values: Any) -> Any:
        from engine.deploy.plan import Options

        return Options(**{k: v for k, v in values.items() if v is not None})

    def deploy_plan(self, options: Any) -> Any:
        """A plan like the engine's for a champion with no image yet (built with
        build_settings())."""
        from engine.deploy.plan import Plan, Step

        self._call("deploy_plan", options)
        if self.champion is None:
            raise NoChampion("no champion yet: crown a run first", Hint("crown", self.name))
        region = options.region or self.deploy_defaults().region or "eu-west-1"
        run_id = self.champion["run_id"]
        base = f"haj-{self.name}-id"
        image = f"haj/{self.name}:{run_id}"
        uri = f"<account>.dkr.ecr.{region}.amazonaws.com/haj/{self.name}:{run_id}"
        plan = Plan(
            self.name, f"id-{self.name}", "sagemaker", region, "<account>", run_id,
            self.champion["model"], image, uri, f"haj/{self.name}", f"haj-<account>-{region}",
            f"{base}/{run_id}/model.tar.gz", "haj-sagemaker-execution",
            "arn:aws:iam::<account>:role/haj-sagemaker-execution", f"{base}-{run_id}",
            f"{base}-{run_id}", base, options.instance_type, options.instance_count,
            build=self.build_settings().to_dict(),
        )  # fmt: skip
        plan.steps = [
            Step("build", "docker image", image, "none for this champion yet"),
            Step("create", "ecr repository", plan.repository, "if missing"),
            Step("create", "endpoint", plan.endpoint_name),
        ]
        return plan

    def deploy(self, options: Any, on_event: events.Callback = events.ignore) -> DeploymentRecord:
        self._call("deploy", options)
        plan = self.deploy_plan(options)
        on_event(events.Progress(3, 1800, "waiting for the endpoint"))
        on_event(events.Log(f"endpoint {plan.endpoint_name}: InService"))
        self.deployed = DeploymentRecord(
            project=self.name,
            region=plan.region,
            status="InService",
            endpoint_name=plan.endpoint_name,
            run_id=plan.run_id,
            model=plan.model,
            deployed_at=T0,
        )
        return self.deployed

    def undeploy(self, on_event: events.Callback = events.ignore) -> list[str]:
        self._call("undeploy")
        removed = [str(self.deployed.endpoint_name)] if self.deployed else []
        self.deployed = None
        return removed
