"""`haj tune`: a hyperparameter search for one model, with Optuna, kept in the project.

Each trial takes parameters from the model's search space (engine.spaces, or model.py's
`search_space(name, trial)`) and is scored by K-fold cross-validation of the **training split
only** (training's own `_split`, so the holdout `haj train` scores on stays unseen), fold by fold:
after each fold the running mean is reported to Optuna, and a trial below the median of the
earlier trials there (MedianPruner, from the second fold on) is stopped. Every trial is a run in
the store (tagged `study=NAME`, `trial=N`): finished with the folds' mean ± std as its metrics
(as `haj train --cv` records them), or cancelled with "pruned at fold k", or failed. The best
parameters are then refit on the whole training split and scored on the holdout by training's
own `fit_and_save` (same metrics, same bundle, artifacts), a normal run `haj evaluate` can crown.

The study lives in `studies/NAME.journal` (Optuna's JournalStorage over a JournalFileBackend: an
append-only file of JSON lines, no database server), so `--study NAME` resumes it: the trials
already run guide the sampler, `--trials N` adds N more. A cancelled tune (Ctrl-C, SIGTERM)
records its running trials as cancelled in both the store and the journal before it stops;
those bookkeeping writes hold the signals back, so nothing is half-written.

Parallel trials (`--jobs J`) are worker processes (joblib's loky executor, as training uses),
each fitting with one thread (OpenMP and BLAS limited to 1: several threads per fit on a shared
2-core machine made one fit many times slower; parallelism comes from the trials). The runner's
main process asks Optuna for trials, hands folds to the workers and records every outcome, so
the journal and the store have one writer. `tune()` is the API side (the lock is taken by
engine.api); `tune_in_process()` runs inside `engine.runner tune`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import events
from engine.errors import ConfigError, UsageError
from engine.numbers import metric_text
from engine.project import Project

STUDIES_DIR = "studies"
DEFAULT_TRIALS = 20
DEFAULT_FOLDS = 5
STARTUP_TRIALS = 5  # MedianPruner: no pruning until this many trials finished...
WARMUP_FOLDS = 2  # ...nor before a trial's second fold (one fold is too noisy to judge)
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# "processes" (default) or "threads": how parallel trials run (bench/tune_speed.py compares them)
POOL_ENV = "HAJ_TUNE_POOL"


def studies_dir(project: Project) -> Path:
    return project.path / STUDIES_DIR


def journal_path(project: Project, study: str) -> Path:
    return studies_dir(project) / f"{study}.journal"


def studies(project: Project) -> list[str]:
    """The project's studies (names of studies/*.journal), oldest first."""
    found = sorted(studies_dir(project).glob("*.journal"), key=lambda p: p.stat().st_mtime)
    return [p.stem for p in found]


def check_options(
    trials: int | None, timeout: float | None, cv: int | None, jobs: int | None, study: str | None
) -> None:
    """A usage error for an option that cannot be (said before any runner starts)."""
    from engine.validation import check_folds

    if trials is not None and (isinstance(trials, bool) or int(trials) < 1):
        raise UsageError(f"--trials needs at least 1 trial (got {trials})")
    if timeout is not None and not float(timeout) > 0:
        raise UsageError(f"--timeout needs a positive number of seconds (got {timeout})")
    check_folds(cv)
    if jobs is not None and (isinstance(jobs, bool) or int(jobs) < 1):
        raise UsageError(f"--jobs needs at least 1 (got {jobs})")
    if study is not None and not _STUDY_NAME.match(study):
        raise UsageError(
            f"--study {study!r}: use letters, digits, '.', '_' and '-' (at most 64, starting "
            "with a letter or digit)"
        )


def tune(
    project: Project,
    model: str,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    metric: str | None = None,
    cv: int | None = None,
    study: str | None = None,
    jobs: int | None = None,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Tune `model` in the runner (see the module's docstring); returns the study's outcome:
    {"study", "model", "metric", "trials": [...], "best", "refit", ...}. `cluster`: a Dask
    scheduler's address whose workers run the folds (else [training] backend says)."""
    from engine import runner_client
    from engine.cluster import configured_address, normalize, probe
    from engine.data import select_version
    from engine.metrics import check_metric
    from engine.runs import custom_metrics

    config = project.read_config()
    check_options(trials, timeout, cv, jobs, study)
    if metric is not None:
        prediction = config["project"]["prediction"]
        metric = check_metric(metric, prediction, custom_metrics(project, prediction)).name
    select_version(project, None)  # no data: said at once, not by a runner
    if cluster:
        cluster = normalize(cluster)
    cluster = cluster or configured_address(config["training"], project.path.parent)
    if cluster:
        probe(cluster)  # a scheduler nobody answers: one line within 3 s, before any runner
    options = {
        "cluster": cluster,
        "model": model,
        "trials": trials,
        "timeout": timeout,
        "metric": metric,
        "cv": cv,
        "study": study,
        "jobs": jobs,
    }
    return runner_client.run(project, "tune", options, on_event, cancel)


# ---- inside the runner ------------------------------------------------------------------------
def tune_in_process(
    project: Project, options: dict[str, Any], emit: events.Callback
) -> dict[str, Any]:
    """Run the trials and the refit (see the module's docstring). Everything that can fail on
    the user's model, space, data or study fails before the first trial is recorded."""
    from engine import catalog, validation
    from engine.metrics import check_metric
    from engine.runs import custom_metrics
    from engine.training import TrainLog, _classes, _split, _training_data, _unstratified

    config = project.read_config()
    prediction = config["project"]["prediction"]
    training = config["training"]
    model_file = project.code_path("model")
    extra = catalog.load_project_models(model_file, prediction)
    name = options["model"]
    catalog.select(prediction, extra, [name])  # an unknown name fails here
    base = (
        extra[name] if name in extra else catalog.build(prediction, name, training["random_state"])
    )
    space = _space_of(model_file, name, base, prediction)
    metric = check_metric(
        options.get("metric") or training["metric"],
        prediction,
        custom_metrics(project, prediction),
    )
    log = TrainLog(project, emit)
    version, X, y, spec = _training_data(project, config, None, log)
    target = config["data"]["target"]
    classes, stratify = _classes(y, target, prediction)
    if classes is not None and stratify is None:
        log("session", version.id, _unstratified(y, target), "warning")
    split = _split(X, y, training, stratify)
    study_name = options.get("study") or _new_study_name(project, name)
    wanted = {
        "model": name,
        "metric": metric.name,
        "prediction": prediction,
        "data_version": version.id,
        "cv": options.get("cv"),
    }
    study, earlier = _open_study(
        project, study_name, wanted, metric.higher_is_better, training, split[1]
    )
    folds = study.user_attrs["haj"]["cv"]
    pool = None  # the folds on a Dask cluster (engine.cluster): its workers checked first
    if options.get("cluster"):
        from engine.cluster import executor_for

        pool = executor_for(options["cluster"], project)
    if pool is None:
        jobs = _jobs(options.get("jobs"), training["n_jobs"], options.get("trials"))
    else:  # trials at a time: --jobs, else one per thread of the cluster's workers
        jobs = _jobs(options.get("jobs") or pool.threads, 1, options.get("trials"))
    tuner = _Tuner(
        project=project,
        config=config,
        study=study,
        study_name=study_name,
        model=name,
        base=base,
        space=space,
        metric=metric.name,
        folds=list(
            validation.splitter(folds, split[1], prediction, training["random_state"]).split(
                split[0], split[1]
            )
        ),
        split=split,
        version=version,
        spec=spec,
        classes=classes,
        log=log,
        emit=emit,
        jobs=jobs,
        trials=options.get("trials"),
        timeout=options.get("timeout"),
        cluster=pool,
    )
    log.start()
    log(
        "session",
        version.id,
        f"tuning {name} in study {study_name} ({earlier} earlier trial(s); resume with --study "
        f"{study_name}): {folds}-fold cross-validation of {metric.name} on the "
        f"{len(split[1])} training rows ({len(split[3])} held out), {jobs} trial(s) at a time",
    )
    if pool is not None:
        from engine.cluster import workers_text

        where = f"{pool.cluster.address} ({workers_text(pool.workers)})"
        log("session", version.id, f"the folds run on the Dask cluster {where}")
    try:
        return tuner.run()
    finally:
        log.close()


def _jobs(jobs: int | None, n_jobs: int, trials: int | None) -> int:
    """Trials at a time: --jobs, else [training] n_jobs (-1: every core), never more than the
    trials asked for."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = jobs or (cores or 1 if n_jobs < 0 else n_jobs)
    return max(1, min(count, trials or count))


def _space_of(
    model_file: Path, name: str, estimator: Any, prediction: str
) -> Callable[[Any, str], dict[str, Any]]:
    """The search space of `name`: model.py's `search_space(name, trial)` when it gives one
    (a dict), else the built-in one of the catalog model of that name or, for a model.py model,
    of the catalog model of the same estimator class; a model with neither is a usage error."""
    from engine import catalog, spaces

    module = catalog._project_module(model_file)
    own = getattr(module, "search_space", None) if module is not None else None
    if own is not None and not callable(own):
        raise ConfigError("model.py: search_space must be a function (name, trial) -> dict")
    builtin = spaces.builtin(name if name in catalog.builtin_names(prediction) else "")
    if builtin is None:  # model.py's LogisticRegression(...) tunes as logistic_regression
        specs = catalog.CLASSIFIERS if prediction == "classification" else catalog.REGRESSORS
        cls = f":{type(estimator).__name__}("
        twin = next((n for n, spec in specs.items() if cls in spec), "")
        builtin = spaces.builtin(twin)

    def space(trial: Any, prediction: str) -> dict[str, Any]:
        if own is not None:
            try:
                params = own(name, trial)
            except Exception as exc:  # user code: said as a config error
                raise ConfigError(
                    f"model.py: search_space({name!r}, trial) failed: {type(exc).__name__}: {exc}"
                ) from None
            if params is not None:
                if not isinstance(params, dict):
                    raise ConfigError(
                        f"model.py: search_space({name!r}, trial) must return a dict of "
                        "parameters (or None for the built-in space)"
                    )
                return params
        if builtin is None:
            raise UsageError(
                f"no search space for {name!r}: define search_space(name, trial) in model.py "
                "(see the README, Tuning)"
            )
        return builtin(trial, prediction)

    if own is None and builtin is None:
        raise UsageError(
            f"no search space for {name!r}: define search_space(name, trial) in model.py "
            "(see the README, Tuning)"
        )
    return space


def _new_study_name(project: Project, model: str) -> str:
    """MODEL-# for a new study: one more than the model's highest numbered one."""
    taken = [
        int(match[1])
        for stem in studies(project)
        if (match := re.fullmatch(re.escape(model) + r"-(\d+)", stem))
    ]
    return f"{model}-{max(taken, default=0) + 1}"


def _open_study(
    project: Project,
    name: str,
    wanted: dict[str, Any],
    higher_is_better: bool,
    training: dict[str, Any],
    y_train: Any,
) -> tuple[Any, int]:
    """(the study `name` from its journal, created when new; how many trials it held). A
    study resumed must tune the same model on the same data by the same metric and folds;
    trials a killed tune left running are closed as failed (this tune holds the project's
    lock: nothing else runs them). A new study's journal is written only once its folds fit
    the training rows."""
    import warnings

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    from engine.validation import check_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    path = journal_path(project, name)
    # a lock file left by a killed tune (the project's lock keeps other tunes out)
    path.with_name(path.name + ".lock").unlink(missing_ok=True)
    existing = None
    if path.exists():
        with contextlib.suppress(KeyError):  # a journal without this study: started anew
            existing = optuna.load_study(
                study_name=name, storage=JournalStorage(JournalFileBackend(str(path)))
            )
    earlier = 0
    meta = dict(wanted)
    if existing is not None:
        meta = dict(existing.user_attrs.get("haj") or {})
        _check_resumable(name, meta, wanted)
        earlier = len(existing.trials)
    else:
        meta["cv"] = wanted["cv"] or DEFAULT_FOLDS
    check_rows(meta["cv"], y_train)
    if existing is not None:
        for trial in existing.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            existing.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=JournalStorage(JournalFileBackend(str(path))),
        study_name=name,
        direction="maximize" if higher_is_better else "minimize",
        # seeded, and differently at each resume: a resumed study does not repeat its first
        # random trials
        sampler=optuna.samplers.TPESampler(seed=int(training["random_state"]) + earlier),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_FOLDS
        ),
        load_if_exists=True,
    )
    if existing is None:
        study.set_user_attr("haj", meta)
    return study, earlier


def _check_resumable(name: str, meta: dict[str, Any], wanted: dict[str, Any]) -> None:
    said = {
        "model": "tunes",
        "metric": "scores by",
        "prediction": "does",
        "data_version": "was tuned on",
    }
    for key, verb in said.items():
        if meta.get(key) != wanted[key]:
            what = {"data_version": "the current data is", "prediction": "this project does"}
            now = what.get(key, "you asked for")
            raise UsageError(
                f"study {name} {verb} {meta.get(key)}, {now} {wanted[key]}: resume it as it was "
                "or give another --study"
            )
    if wanted["cv"] is not None and wanted["cv"] != meta.get("cv"):
        raise UsageError(
            f"study {name} uses {meta.get('cv')} folds, you asked for {wanted['cv']}: resume it "
            "without --cv or give another --study"
        )


@dataclass
class _Trial:
    """A trial under way: its Optuna trial, its run, and its folds so far."""

    trial: Any
    run: Any
    params: dict[str, Any]
    task: dict[str, Any]
    started: float
    started_at: str
    scores: list[dict[str, float]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    fit_seconds: float = 0.0


@dataclass
class _Tuner:
    """The trial loop of one tune, in the runner's main process: asks Optuna for trials,
    hands their folds to the pool, reports each fold's running mean, records every outcome in
    the store and the journal, then refits the best parameters."""

    project: Project
    config: dict[str, Any]
    study: Any
    study_name: str
    model: str
    base: Any  # the unfitted estimator the trials' parameters are set on
    space: Callable[[Any, str], dict[str, Any]]
    metric: str
    folds: list[tuple[Any, Any]]  # (training rows, held rows) of each fold
    split: tuple[Any, Any, Any, Any]  # training's (X_train, y_train, X_test, y_test)
    version: Any
    spec: list[dict[str, str]]
    classes: list[Any] | None
    log: Any  # engine.training.TrainLog
    emit: events.Callback
    jobs: int
    trials: int | None
    timeout: float | None
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    active: dict[int, _Trial] = field(default_factory=dict)  # trial number -> under way
    pending: dict[Any, tuple[_Trial, int]] = field(default_factory=dict)  # future -> fold
    asked: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: {"finished": 0, "pruned": 0, "failed": 0}
    )
    limit: int | None = None
    deadline: float | None = None
    custom: Any = None  # model.py's metrics (catalog.project_metrics), scored in every fold
    store: Any = None
    pool: _Pool | None = None
    auto_tags: dict[str, str] = field(default_factory=dict)
    cluster: Any = None  # engine.cluster.ClusterExecutor: the folds on a Dask cluster

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from engine import catalog, tags
        from engine.store import Store

        self.custom = catalog.project_metrics(self.project.code_path("model"))
        started = time.monotonic()
        self.deadline = started + float(self.timeout) if self.timeout else None
        self.limit = self.trials if self.trials or self.timeout else DEFAULT_TRIALS
        with Store(self.project.db_path) as store:
            self.store = store
            store.reap_orphans()
            self.auto_tags = tags.session_tags(self.project, self.config, self.session)
            self.pool = _Pool(self.jobs, self.split[0], self.split[1], cluster=self.cluster)
            try:
                self._trials()
            except BaseException as exc:  # Ctrl-C, SIGTERM, or an error every trial would meet
                self._cancel_all(interrupted=isinstance(exc, KeyboardInterrupt))
                self.pool.close(kill=True)
                raise
            self.pool.close()
            seconds = time.monotonic() - started
            self._said_summary(seconds)
            refit = self._refit()
        return self._payload(seconds, refit)

    def _trials(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        total = self.limit or 0
        self.emit(events.Progress(done=0, total=total, label="tuning"))
        while True:
            while len(self.active) < self.jobs and self._more():
                self._start_trial()
            if not self.pending:
                return
            done, _ = wait(list(self.pending), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                state, fold = self.pending.pop(future)
                self._on_fold(state, fold, future)

    def _more(self) -> bool:
        if self.limit is not None and self.asked >= self.limit:
            return False
        return self.deadline is None or time.monotonic() < self.deadline

    def _start_trial(self) -> None:
        from sklearn.base import clone

        from engine import tags
        from engine.sessions import STARTED
        from engine.store import now_iso
        from engine.training import _params_of

        prediction = self.config["project"]["prediction"]
        with _signals_held():  # a trial asked is a trial recorded (or told failed)
            trial = self.study.ask()
            self.asked += 1
            try:
                params = self.space(trial, prediction)
                estimator = clone(self.base).set_params(**params)
            except (ConfigError, UsageError):
                self._tell(trial, state="fail")
                raise
            except (ValueError, TypeError) as exc:  # a parameter the estimator refuses
                self._tell(trial, state="fail")
                raise ConfigError(
                    f"the search space of {self.model} gives parameters it refuses: "
                    f"{type(exc).__name__}: {exc}".splitlines()[0]
                ) from None
            (run,) = self.store.start_runs(
                session=self.session,
                models=[(self.model, _params_of(estimator))],
                prediction=prediction,
                data_version=self.version.id,
                pid=os.getpid(),
            )
            tags.record(self.store, self.project, self.session, [run.id], self.auto_tags)
            self.store.set_tags(
                run.id, {"study": self.study_name, "trial": str(trial.number)}, source="auto"
            )
            trial.set_user_attr("run_id", run.id)
            trial.set_user_attr("label", run.label)
            trial.set_user_attr("params", _jsonable(params))
            task = {
                "spec": self.spec,
                "prediction": prediction,
                "estimator": estimator,
                "custom_metrics": self.custom,
            }
            state = _Trial(trial, run, params, task, time.perf_counter(), now_iso())
            self.active[trial.number] = state  # from here on, a cancel closes it
            self.log(run.label, self.version.id, STARTED)
        self._submit(state, 0)

    def _submit(self, state: _Trial, fold: int) -> None:
        assert self.pool is not None
        train_rows, held_rows = self.folds[fold]
        future = self.pool.submit(state.task, train_rows, held_rows)
        self.pending[future] = (state, fold)

    def _on_fold(self, state: _Trial, fold: int, future: Any) -> None:
        try:
            result = future.result()
        except Exception as exc:  # a worker that died (killed, out of memory)
            result = {"error": f"the worker stopped: {type(exc).__name__}: {exc}", "seconds": 0}
        for line in result.get("warnings") or []:
            self.log(state.run.label, self.version.id, f"warning: {line}", level="warning")
        if "error" in result:
            self._close(state, "failed", error=result["error"])
            return
        state.scores.append(result["scores"])
        for metric, why in result["notes"].items():
            state.notes.setdefault(metric, f"{why} (in a cross-validation fold)")
        state.fit_seconds += result["seconds"]
        done = len(state.scores)
        if not all(self.metric in scores for scores in state.scores):
            why = state.notes.get(self.metric, f"{self.metric} not computed")
            self._close(state, "failed", error=why)
            if "no class probabilities" in why:  # every trial would fail the same way
                raise UsageError(
                    f"{self.model} gives no class probabilities, so {self.metric} cannot rank its "
                    "trials: give another --metric"
                )
            return
        if done == len(self.folds):
            self._close(state, "finished")
            return
        running = sum(s[self.metric] for s in state.scores) / done
        state.trial.report(running, step=done)
        if state.trial.should_prune():
            self._close(state, "pruned")
        else:
            self._submit(state, done)

    # -- outcomes ----------------------------------------------------------------------------
    def _close(self, state: _Trial, status: str, error: str | None = None) -> None:
        """Record a trial's outcome in the store and the journal and say it, signals held:
        an interrupt finds the trial either under way or closed everywhere."""
        from engine.validation import summarize

        means: dict[str, float] = {}
        stds: dict[str, float] = {}
        notes = dict(state.notes)
        if state.scores:
            means, stds, notes = summarize(state.scores, notes)
        done = len(state.scores)
        value, std = means.get(self.metric), stds.get(self.metric)
        duration = time.perf_counter() - state.started
        if status == "pruned":
            error = (
                f"pruned at fold {done} of {len(self.folds)}: {self.metric} "
                f"{metric_text(self.metric, value)} so far, below the median of earlier trials"
            )
        elif status == "cancelled":
            error = f"cancelled by the user at fold {done + 1} of {len(self.folds)}"
        elif status == "stopped":
            status, error = "cancelled", "the tune stopped on an error (see the log)"
        stored = {"finished": "finished", "failed": "failed"}.get(status, "cancelled")
        with _signals_held():
            self.store.finish_run(
                state.run.id,
                status=stored,
                metrics=means or None,
                metrics_std=stds or None,
                cv_folds=done or None,
                notes=notes or None,
                error=error,
                fit_seconds=state.fit_seconds,
                duration_seconds=duration,
                started_at=state.started_at,
            )
            for key, attr in (("std", std), ("folds", done), ("seconds", duration)):
                state.trial.set_user_attr(key, attr)
            if status == "cancelled":
                state.trial.set_user_attr("cancelled", True)
            if status == "finished":
                self._tell(state.trial, value=value)
            else:
                self._tell(state.trial, state="pruned" if status == "pruned" else "fail")
            self.active.pop(state.trial.number, None)
            if status in self.outcomes:
                self.outcomes[status] += 1
            self._say(state, status, value, std, done, duration, error)

    def _tell(self, trial: Any, value: float | None = None, state: str | None = None) -> None:
        from optuna.trial import TrialState

        if state is None:
            self.study.tell(trial, value)
        else:
            found = {"pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[state]
            self.study.tell(trial, state=found, skip_if_finished=True)

    def _best(self) -> Any:
        try:
            return self.study.best_trial
        except ValueError:  # no finished trial yet
            return None

    def _say(
        self,
        state: _Trial,
        status: str,
        value: float | None,
        std: float | None,
        folds: int,
        duration: float,
        error: str | None,
    ) -> None:
        best = self._best()
        number = state.trial.number
        params = params_text(state.params)
        if status == "finished":
            text = (
                f"trial {number} finished in {duration:.2f}s: {self.metric}="
                f"{metric_text(self.metric, value, std)} ({folds} folds)"
            )
        elif status == "pruned":
            text = f"trial {number} {error}"
        else:
            text = f"trial {number} {status}: {error}"
        if best is not None:
            text += (
                f"; best: trial {best.number} {self.metric}={metric_text(self.metric, best.value)}"
            )
        level = {"failed": "error", "cancelled": "warning"}.get(status, "info")
        self.log(state.run.label, self.version.id, f"{text} | {params}", level=level)
        self.emit(
            events.TrialFinished(
                study=self.study_name,
                trial=number,
                run_id=state.run.id,
                label=state.run.label,
                status=status,
                metric=self.metric,
                value=value,
                std=std,
                higher_is_better=self.study.direction.name == "MAXIMIZE",
                folds=folds,
                params=_jsonable(state.params),
                duration_seconds=duration,
                best_trial=best.number if best is not None else None,
                best_value=best.value if best is not None else None,
                error=error if status != "finished" else None,
            )
        )
        ended = sum(self.outcomes.values())
        self.emit(events.Progress(done=ended, total=self.limit or 0, label="tuning"))

    def _cancel_all(self, interrupted: bool = True) -> None:
        """Ctrl-C / SIGTERM (or an error that stops the tune): the trials under way are
        recorded as cancelled (store and journal), then the interrupt goes on."""
        for state in list(self.active.values()):
            try:
                self._close(state, "cancelled" if interrupted else "stopped")
            except Exception as exc:  # best effort while an interrupt is raised: said, not raised
                self.log(
                    state.run.label,
                    self.version.id,
                    f"trial {state.trial.number} not recorded as cancelled: {exc!r}",
                    level="warning",
                )
        self.log(
            "session",
            self.version.id,
            f"{'cancelled' if interrupted else 'stopped'}: study {self.study_name} keeps its "
            "finished trials; resume with "
            f"--study {self.study_name}",
            level="warning",
        )

    def _said_summary(self, seconds: float) -> None:
        ran = sum(self.outcomes.values())
        rate = ran / seconds if seconds > 0 else 0.0
        counts = ", ".join(f"{n} {what}" for what, n in self.outcomes.items())
        best = self._best()
        text = (
            f"study {self.study_name}: {ran} trial(s) in {seconds:.1f}s ({rate:.2f} trials/s; "
            f"{counts})"
        )
        if best is not None:
            text += (
                f"; best: trial {best.number} {self.metric}="
                f"{metric_text(self.metric, best.value, best.user_attrs.get('std'))} | "
                f"{params_text(best.user_attrs.get('params') or best.params)}"
            )
        self.log("session", self.version.id, text)

    # -- the refit ---------------------------------------------------------------------------
    def _refit(self) -> dict[str, Any] | None:
        """Fit the best trial's parameters on the whole training split, score them on the
        holdout and save the bundle: training's fit_and_save, recorded as training records a
        run. A study whose best trial was already refit (and kept) is not refit again."""
        best = self._best()
        if best is None:
            self.log("session", self.version.id, "no trial finished: nothing to refit", "warning")
            return None
        known = self.study.user_attrs.get("refit") or {}
        run = self.store.run(known["run_id"]) if known.get("trial") == best.number else None
        kept = run is not None and run.status == "finished" and run.model_path
        if kept and (self.project.path / run.model_path).exists():
            self.log(
                run.label,
                self.version.id,
                f"trial {best.number} is still the best: its refit {run.label} stands",
            )
            return {**_run_summary(run), "trial": best.number, "reused": True}
        return self._fit_best(best)

    def _fit_best(self, best: Any) -> dict[str, Any]:
        from sklearn.base import clone

        from engine import tags
        from engine.sessions import STARTED
        from engine.training import (
            _emit_finished,
            _params_of,
            _record_result,
            _remove_partial_models,
            fit_and_save,
        )

        params = best.user_attrs.get("params") or best.params
        estimator = clone(self.base).set_params(**params)
        session = uuid.uuid4().hex[:12]
        self.project.models_dir.mkdir(parents=True, exist_ok=True)
        (run,) = self.store.start_runs(
            session=session,
            models=[(self.model, _params_of(estimator))],
            prediction=self.config["project"]["prediction"],
            data_version=self.version.id,
            pid=os.getpid(),
        )
        tags.record(self.store, self.project, self.session, [run.id], self.auto_tags)
        self.store.set_tags(run.id, {"study": self.study_name, "trial": "refit"}, source="auto")
        task = {
            **self._common(),
            "run_id": run.id,
            "model": self.model,
            "estimator": estimator,
            "model_path": str(self.project.models_dir / f"{run.id}.joblib"),
        }
        self.log(
            run.label,
            self.version.id,
            f"refitting trial {best.number}'s parameters on the {len(self.split[1])} training "
            f"rows; scored on the {len(self.split[3])} held-out rows",
        )
        self.log(run.label, self.version.id, STARTED)
        self.emit(
            events.RunStarted(
                run_id=run.id, model=run.model, label=run.label, data_version=self.version.id
            )
        )
        try:
            with _one_thread():
                result = fit_and_save(task, *self.split)
            _record_result(self.project, self.store, run, result, self.version.id, self.log)
        except KeyboardInterrupt:
            self.store.close_unfinished(session, "cancelled", "cancelled by the user")
            _remove_partial_models(self.project)
            raise
        _emit_finished(self.emit, run, result)
        recorded = self.store.run(run.id)
        assert recorded is not None
        if result["status"] == "finished":
            with _signals_held():
                self.study.set_user_attr(
                    "refit", {"trial": best.number, "run_id": run.id, "label": run.label}
                )
        return {**_run_summary(recorded), "trial": best.number, "reused": False}

    def _common(self) -> dict[str, Any]:
        """What the refit carries, as a training session's fits do (no cross-validation)."""
        from engine.training import session_task

        return session_task(
            self.project, self.config, self.version, self.spec, self.classes, self.split,
            custom_metrics=self.custom,
        )  # fmt: skip

    # -- the answer --------------------------------------------------------------------------
    def _payload(self, seconds: float, refit: dict[str, Any] | None) -> dict[str, Any]:
        trials = [trial_record(t) for t in self.study.get_trials(deepcopy=False)]
        best = self._best()
        ran = sum(self.outcomes.values())
        return {
            "study": self.study_name,
            "journal": str(
                journal_path(self.project, self.study_name).relative_to(self.project.path)
            ),
            "model": self.model,
            "metric": self.metric,
            "higher_is_better": self.study.direction.name == "MAXIMIZE",
            "data_version": self.version.id,
            "cv": len(self.folds),
            "jobs": self.jobs,
            "train_rows": len(self.split[1]),
            "test_rows": len(self.split[3]),
            "new_trials": ran,
            "outcomes": dict(self.outcomes),
            "seconds": seconds,
            "trials_per_second": ran / seconds if seconds > 0 else None,
            "trials": trials,
            "best": trial_record(best) if best is not None else None,
            "refit": refit,
        }


def trial_record(trial: Any) -> dict[str, Any]:
    """One trial of a study as plain values: number, status (finished, pruned, failed,
    cancelled, running), value, std, folds, params, run id and label, seconds."""
    state = trial.state.name
    status = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}.get(
        state, state.lower()
    )
    attrs = trial.user_attrs
    if status == "failed" and attrs.get("cancelled"):
        status = "cancelled"
    value = trial.value if status == "finished" else None
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    return {
        "trial": trial.number,
        "status": status,
        "value": value,
        "std": attrs.get("std"),
        "folds": attrs.get("folds"),
        "params": attrs.get("params") or dict(trial.params),
        "run_id": attrs.get("run_id"),
        "label": attrs.get("label"),
        "seconds": attrs.get("seconds"),
    }


def _run_summary(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "label": run.label,
        "status": run.status,
        "metrics": dict(run.metrics),
        "test_rows": run.test_rows,
        "error": run.error,
        "model_path": run.model_path,
    }


def params_text(params: dict[str, Any]) -> str:
    """`learning_rate=0.0312 max_iter=231`: a trial's parameters on one line, floats to 4
    significant digits."""

    def text(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return " ".join(f"{key}={text(value)}" for key, value in params.items())


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, bool | int | float | str | type(None)) else repr(value)
        for key, value in params.items()
    }


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends (then interrupt as usual): a trial's
    outcome is written to the store and the journal whole. In the main thread only.

    The signals are deferred by swapping their Python handlers, not by masking them: with
    other threads alive (the fold pool, the runner's relays) the kernel may hand a signal to
    a thread that does not mask it, and Python would still run the handler in the main
    thread, in the middle of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def defer(signum: int, _frame: Any) -> None:
        caught.append(signum)

    previous = {number: signal.signal(number, defer) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)  # now handled as it would have been


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """OpenMP and BLAS limited to one thread for the block (see the module's docstring)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


# ---- the folds, in workers --------------------------------------------------------------------
_DATA: dict[str, tuple[Any, Any]] = {}


def _data(ref: Any) -> tuple[Any, Any]:
    """(X_train, y_train): given as is (in-process and thread pools), or as the path of the
    file the runner wrote them to (process pools: read once per worker, memory-mapped)."""
    if not isinstance(ref, str):
        return ref
    if ref not in _DATA:
        import joblib

        _DATA.clear()
        _DATA[ref] = joblib.load(ref, mmap_mode="r")
    return _DATA[ref]


def score_fold(data: Any, task: dict[str, Any], train_rows: Any, held_rows: Any) -> dict[str, Any]:
    """Fit one fold with training's own `_fit` (haj's preprocessing pipeline around the
    estimator) and score it with training's `_score`: {"scores", "notes", "seconds",
    "warnings"}, or {"error", ...}. Never raises for the model's own failures."""
    import warnings

    from engine.training import _fit, _score, _warning_lines

    X, y = _data(data)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, _one_thread():
        warnings.simplefilter("always")
        try:
            pipeline, _ = _fit(task, X[train_rows], y[train_rows], started)
            scores, notes = _score(
                pipeline, task["prediction"], X[held_rows], y[held_rows], task.get("custom_metrics")
            )
        except Exception as exc:  # user models may raise anything
            return {
                "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                "seconds": time.perf_counter() - started,
                "warnings": _warning_lines(caught),
            }
    return {
        "scores": scores,
        "notes": notes,
        "seconds": time.perf_counter() - started,
        "warnings": _warning_lines(caught),
    }


class _Pool:
    """Where folds run: in this process (one trial at a time), or in `jobs` worker processes
    (loky, as training's joblib uses; `HAJ_TUNE_POOL=threads`: threads instead)."""

    def __init__(self, jobs: int, X: Any, y: Any, cluster: Any = None) -> None:
        self.jobs = jobs
        self.kind = "inline" if jobs == 1 else os.environ.get(POOL_ENV, "processes")
        self.data: Any = (X, y)
        self.folder: str | None = None
        self.executor: Any = None
        if cluster is not None:  # a Dask cluster's workers (engine.cluster.ClusterExecutor)
            self.kind = "cluster"
            self.executor = cluster
            self.data = cluster.scatter((X, y))  # once, to every worker
        elif self.kind == "processes":
            import tempfile

            import joblib
            from joblib.externals.loky import get_reusable_executor

            self.folder = tempfile.mkdtemp(prefix="haj-tune-")
            self.data = os.path.join(self.folder, "train.joblib")
            joblib.dump((X, y), self.data)
            self.executor = get_reusable_executor(max_workers=jobs, reuse=False)
        elif self.kind == "threads":
            from concurrent.futures import ThreadPoolExecutor

            self.executor = ThreadPoolExecutor(max_workers=jobs)
        elif self.kind != "inline":
            raise ConfigError(f"{POOL_ENV} must be processes or threads (got {self.kind!r})")

    def submit(self, task: dict[str, Any], train_rows: Any, held_rows: Any) -> Any:
        if self.executor is not None:
            return self.executor.submit(score_fold, self.data, task, train_rows, held_rows)
        from concurrent.futures import Future

        future: Future[dict[str, Any]] = Future()
        future.set_result(score_fold(self.data, task, train_rows, held_rows))
        return future

    def close(self, kill: bool = False) -> None:
        import shutil

        if self.executor is not None:
            if self.kind == "processes":
                with contextlib.suppress(Exception):  # best effort, also while interrupted
                    self.executor.shutdown(wait=not kill, kill_workers=kill)
            else:
                self.executor.shutdown(wait=not kill, cancel_futures=True)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
