"""Gated retraining (`haj retrain`): fetch new data, train challengers, and replace the champion
only when the best of them beats it on the same rows.

The steps, each reported as an `events.RetrainStep` and recorded with its seconds and outcome:

1. retrieve (engine.data.retrieve). With `when="new-data"` (the default), nothing new stops here.
2. check (only `when="degraded"`): engine.evaluation.check on the data just retrieved; a
   champion that holds stops here.
3. process (engine.data.process) the current raw version into a processed version.
4. train (engine.training.train) the chosen models on exactly that processed version.
5. score: the best challenger's own test score, and the champion scored on the same test rows:
   the processed version split as training splits it (same test_size, random_state and
   stratification: engine.training._classes / _split), the champion's bundle reading those
   processed columns (engine.evaluation.labelled_matrix / measure). A champion that cannot read
   them cannot compete, and that is said.
6. crown (engine.champion.crown_run, reason "retrain") only when the challenger is better by more
   than `min_improvement` (in the metric's units and direction; 0: strictly better); otherwise
   the challenger is recorded as rejected with both scores and the champion is left alone.
7. redeploy, when a new champion was crowned: a running server switches by itself (it polls the
   store), so haj waits for its /health to name the new run; `container` builds the image and
   restarts a running container; `sagemaker` deploys (with its progress).

Why one gate over the existing verbs: a scheduled retrain must never replace a good model with
a worse one, and the user must be able to see afterwards what each retrain did and why. Every
retrain ends as a row of the store's `retrains` (finished, failed or cancelled) with its steps,
decision and scores; a dry run only says what each step would do and writes nothing.

The caller holds the project's lock for the whole retrain (engine.api.ProjectAPI.retrain); the
lock is re-entrant per thread, so the API verbs called here (build, container, deploy) do not
wait for it, and the runner subprocesses inherit it.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine import events
from engine.errors import Cancelled, DataError, HajError, ServingError, UsageError, one_line

if TYPE_CHECKING:
    from engine.project import Project
    from engine.store import DataVersion

# The project's engine.api.ProjectAPI, whose verbs (server, build, containers, deploy) a redeploy
# calls: typed loosely, since engine.api imports this module (no import cycle in the core).
ProjectAPI = Any

WHEN = ("new-data", "degraded", "always")
REDEPLOY = ("none", "server", "container", "sagemaker")
DECIDED = ("promoted", "rejected")
SWITCH_SECONDS = 10.0  # how long a running server may take to serve the new champion


@dataclass(frozen=True)
class Options:
    """What `haj retrain` was asked: when to go on, which models, the margin, the redeploy."""

    when: str = "new-data"
    models: list[str] | None = None
    min_improvement: float = 0.0
    redeploy: str = "none"
    retrieved: bool = False  # the caller (the pipeline) has just retrieved: no retrieve step

    def check(self) -> None:
        if self.when not in WHEN:
            raise UsageError(f"unknown --when {self.when!r}: choose from {', '.join(WHEN)}")
        if self.redeploy not in REDEPLOY:
            raise UsageError(
                f"unknown --redeploy {self.redeploy!r}: choose from {', '.join(REDEPLOY)}"
            )
        if not math.isfinite(self.min_improvement) or self.min_improvement < 0:
            raise UsageError(
                "--min-improvement must be a number, 0 or more (in the metric's units: 0.01 "
                "on acc is one point)"
            )


@dataclass
class Step:
    """One step of a retrain: done, skipped, failed or cancelled (a dry run's: "would")."""

    name: str
    outcome: str
    seconds: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Contender:
    """The champion or the challenger: its run and its score on the holdout (None: it could
    not be scored, `note` says why)."""

    run_id: str
    label: str
    score: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RetrainResult:
    """What a retrain did (or, with `dry_run`, would do): `status` is how it ended (finished,
    failed, cancelled; "dry-run"), `decision` what it decided (promoted, rejected, skipped;
    None when it stopped before deciding), `reason` why, in one line."""

    id: str
    started_at: str
    trigger: str
    status: str
    metric: str
    higher_is_better: bool
    min_improvement: float
    redeploy: str
    models: list[str] | None = None
    finished_at: str | None = None
    decision: str | None = None
    reason: str = ""
    raw_version: str | None = None
    data_version: str | None = None
    holdout_rows: int | None = None
    champion: Contender | None = None
    challenger: Contender | None = None
    steps: list[Step] = field(default_factory=list)
    dry_run: bool = False

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds}

    def to_record(self) -> dict[str, Any]:
        """The store's row (engine.store.record_retrain)."""
        return {
            "id": self.id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "trigger": self.trigger,
            "status": self.status,
            "decision": self.decision,
            "reason": self.reason,
            "metric": self.metric,
            "champion_run": self.champion.run_id if self.champion else None,
            "champion_score": self.champion.score if self.champion else None,
            "challenger_run": self.challenger.run_id if self.challenger else None,
            "challenger_score": self.challenger.score if self.challenger else None,
            "raw_version": self.raw_version,
            "data_version": self.data_version,
            "steps": [step.to_dict() for step in self.steps],
            "details": {
                "higher_is_better": self.higher_is_better,
                "min_improvement": self.min_improvement,
                "redeploy": self.redeploy,
                "models": self.models,
                "holdout_rows": self.holdout_rows,
                "champion": self.champion.to_dict() if self.champion else None,
                "challenger": self.challenger.to_dict() if self.challenger else None,
            },
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> RetrainResult:
        details = row.get("details") or {}
        champion, challenger = details.get("champion"), details.get("challenger")
        return cls(
            id=row["id"],
            started_at=row["started_at"],
            finished_at=row.get("finished_at"),
            trigger=row["trigger"],
            status=row["status"],
            decision=row.get("decision"),
            reason=row.get("reason") or "",
            metric=row.get("metric") or "",
            higher_is_better=bool(details.get("higher_is_better", True)),
            min_improvement=float(details.get("min_improvement") or 0.0),
            redeploy=str(details.get("redeploy") or "none"),
            models=details.get("models"),
            raw_version=row.get("raw_version"),
            data_version=row.get("data_version"),
            holdout_rows=details.get("holdout_rows"),
            champion=Contender(**champion) if champion else None,
            challenger=Contender(**challenger) if challenger else None,
            steps=[Step(**step) for step in row.get("steps") or []],
        )


# ---- the API ----------------------------------------------------------------------------------
def retrain(
    api: ProjectAPI,
    options: Options,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> RetrainResult:
    """Run a retrain (the caller holds the project's lock) and record it, however it ends:
    a HajError, Ctrl-C or a cancel is recorded (failed / cancelled) and raised again."""
    job = _Retrain(api, options, on_event, cancel)
    try:
        job.run()
    except (KeyboardInterrupt, Cancelled):
        job.finish("cancelled", "cancelled by the user")
        raise
    except HajError as exc:
        job.finish("failed", one_line(exc.message, 300))
        raise
    except Exception as exc:  # a bug: recorded as such, then raised for its traceback
        job.finish("failed", one_line(f"{type(exc).__name__}: {exc}", 300))
        raise
    job.finish("finished")
    return job.result


def plan(api: ProjectAPI, options: Options) -> RetrainResult:
    """What a retrain with `options` would do, step by step; nothing is run or written."""
    job = _Retrain(api, options, events.ignore, None)
    job.result.status = "dry-run"
    job.result.dry_run = True
    job.describe()
    return job.result


def history(project: Project, limit: int | None = None) -> list[RetrainResult]:
    """The recorded retrains, newest first."""
    from engine.store import Store

    if not project.db_path.exists():
        return []
    with Store(project.db_path) as store:
        return [RetrainResult.from_record(row) for row in store.retrains(limit)]


# ---- the steps --------------------------------------------------------------------------------
@dataclass
class _Outcome:
    """What a step's body sets: its outcome (default "done") and its one-line detail."""

    detail: str = ""
    outcome: str = "done"


class _Stop(Exception):
    """A step decided the retrain ends here (nothing new, the champion holds): not an error."""


class _Retrain:
    def __init__(
        self,
        api: ProjectAPI,
        options: Options,
        on_event: events.Callback,
        cancel: threading.Event | None,
    ) -> None:
        from engine.metrics import check_metric
        from engine.store import now_iso

        options.check()
        self.api = api
        self.project = api.project
        self.options = options
        self.emit = on_event
        self.cancel = cancel
        self.config = self.project.read_config()
        self.prediction = self.config["project"]["prediction"]
        metric = check_metric(self.config["training"]["metric"], self.prediction)
        self.metric = metric.name
        self.higher = metric.higher_is_better
        self.models = self._checked_models(options.models)
        self.result = RetrainResult(
            id=uuid.uuid4().hex[:12],
            started_at=now_iso(),
            trigger=options.when,
            status="running",
            metric=self.metric,
            higher_is_better=self.higher,
            min_improvement=options.min_improvement,
            redeploy=options.redeploy,
            models=self.models,
        )

    def _checked_models(self, wanted: list[str] | None) -> list[str] | None:
        """The models named (checked before anything runs), or None: all of them."""
        if not wanted:
            return None
        from engine import catalog

        builtin = catalog.builtin_names(self.prediction)
        if all(name in builtin for name in wanted):
            return list(dict.fromkeys(wanted))
        extra = dict.fromkeys(catalog.project_model_names(self.project))  # model.py's, by a runner
        return catalog.select(self.prediction, extra, wanted)

    # ---- running --------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if not self.options.retrieved:
                self._retrieve()
            if self.options.when == "degraded":
                self._check()
            version = self._process()
            challengers = self._train()
            self._score(version, challengers)
            self._crown()
            self._redeploy()
        except _Stop:
            return

    def finish(self, status: str, reason: str | None = None) -> None:
        """Close the result and record it. After a failure the recording is best effort (a
        damaged store is the failure itself), and a project without haj.db gets none (a failed
        command creates nothing)."""
        from engine.store import Store, now_iso

        result = self.result
        result.status = status
        result.finished_at = now_iso()
        if reason is not None and status != "finished" and result.decision in DECIDED:
            result.reason = f"{result.reason} | then {status}: {reason}"  # both are history
        elif reason is not None and (status != "finished" or not result.reason):
            result.reason = reason
        if status != "finished" and not self.project.db_path.exists():
            return
        try:
            with Store(self.project.db_path) as store:
                store.record_retrain(result.to_record())
        except HajError:
            if status == "finished":
                raise
        except Exception:  # the failure being recorded matters more than its record
            if status == "finished":
                raise

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("retrain cancelled")

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[_Outcome]:
        """Time a step, report it as it starts and ends, and keep it in the result."""
        self._check_cancel()
        self.emit(events.RetrainStep(step=name, status="started"))
        outcome = _Outcome()
        started = time.monotonic()

        def end(status: str, detail: str) -> None:
            seconds = round(time.monotonic() - started, 3)
            self.result.steps.append(Step(name, status, seconds, detail))
            self.emit(events.RetrainStep(step=name, status=status, seconds=seconds, detail=detail))

        try:
            yield outcome
        except (KeyboardInterrupt, Cancelled):
            end("cancelled", "cancelled by the user")
            raise
        except _Stop:
            end(outcome.outcome, outcome.detail)
            raise
        except HajError as exc:
            end("failed", one_line(exc.message, 300))
            raise
        except Exception as exc:
            end("failed", one_line(f"{type(exc).__name__}: {exc}", 300))
            raise
        end(outcome.outcome, outcome.detail)

    def _stop(self, reason: str) -> None:
        self.result.decision = "skipped"
        self.result.reason = reason
        raise _Stop

    def _current_raw(self) -> str | None:
        from engine.store import Store

        if not self.project.db_path.exists():
            return None
        with Store(self.project.db_path) as store:
            current = store.current_raw_version()
        return current.id if current else None

    def _champion(self) -> Any:
        from engine.store import Store

        if not self.project.db_path.exists():
            return None
        with Store(self.project.db_path) as store:
            crowned = store.champion()
            return store.run(crowned.run_id) if crowned else None

    def _retrieve(self) -> None:
        from engine import data

        with self._step("retrieve") as step:
            before = self._current_raw()
            got = data.retrieve(self.project, self.emit, self.cancel)
            version = got["version"]["id"]
            self.result.raw_version = version
            if got["created"]:
                step.detail = f"new raw version {version}"
            elif version != before:
                step.detail = f"{version} is the current raw version again (was {before})"
            else:
                step.detail = f"nothing new: the source returned {version} again"
            fresh = got["created"] or version != before
            if self.options.when == "new-data" and not fresh:
                self._stop(f"nothing new: the source returned {version} again")

    def _check(self) -> None:
        from engine import evaluation
        from engine.errors import NoChampion

        with self._step("check") as step:
            try:
                checked = evaluation.check(self.project)
            except NoChampion:
                step.detail = "no champion to check: retraining"
                return
            except DataError as exc:
                step.detail = f"the champion cannot score the new data ({exc.message}): retraining"
                return
            step.detail = checked.verdict
            if checked.holds:
                self._stop(f"the champion {checked.label} {checked.verdict}")

    def _process(self) -> DataVersion:
        from engine import data
        from engine.store import DataVersion

        with self._step("process") as step:
            processed = data.process(self.project, None, self.emit, self.cancel)
            version = DataVersion(**processed["version"])
            self.result.data_version = version.id
            made = "new processed version" if processed["created"] else "processed into"
            step.detail = f"{made} {version.id} ({version.rows} rows)"
        return version

    def _train(self) -> list[Any]:
        """The finished runs of this training that have the metric."""
        from engine import training
        from engine.store import Store

        with self._step("train") as step:
            trained = training.train(
                self.project, self.models, self.emit, self.cancel, data=self.result.data_version
            )
            ids = [r["run_id"] for r in trained["runs"] if r["status"] == "finished"]
            with Store(self.project.db_path) as store:
                runs = [store.run(run_id) for run_id in ids]
            scored = [run for run in runs if run is not None and self.metric in run.metrics]
            failed = len(trained["runs"]) - len(ids)
            step.detail = (
                f"{len(ids)} finished" + (f", {failed} failed" if failed else "")
                + f" on {trained['data_version']}"
            )  # fmt: skip
            if not scored:
                raise DataError(
                    f"no model finished with a {self.metric}: there is no challenger "
                    "(see logs/train.log)"
                )
        return scored

    def _score(self, version: DataVersion, challengers: list[Any]) -> None:
        result, metric = self.result, self.metric
        with self._step("score") as step:
            best = min(challengers, key=self._rank)
            score = _test_score(best, metric)
            result.challenger = Contender(best.id, best.label, score)
            incumbent = self._champion()
            if incumbent is None:
                result.decision = "promoted"
                result.reason = f"no champion yet: {best.label} ({metric} {score:.4f}) is crowned"
                step.detail = f"challenger {best.label} {metric} = {score:.4f}; no champion yet"
                return
            champion = Contender(incumbent.id, incumbent.label)
            result.champion = champion
            rows = None
            try:
                champion.score, rows = champion_score(
                    self.project, self.config, version, incumbent, metric
                )
            except HajError as exc:
                champion.note = one_line(exc.message, 300)
            result.holdout_rows = rows
            if champion.score is None:
                result.decision = "promoted"
                result.reason = (
                    f"the champion {incumbent.label} cannot score {version.id} ({champion.note}): "
                    f"it cannot compete; {best.label} ({metric} {score:.4f}) is crowned"
                )
                step.detail = f"challenger {best.label} {score:.4f}; champion: {champion.note}"
                return
            gain = score - champion.score if self.higher else champion.score - score
            margin = self.options.min_improvement
            where = f"on the same {rows} test rows of {version.id}"
            step.detail = (
                f"challenger {best.label} {metric} = {score:.4f}, champion {incumbent.label} "
                f"{metric} = {champion.score:.4f} {where}"
            )
            if gain > margin:
                result.decision = "promoted"
                result.reason = (
                    f"{best.label} ({metric} {score:.4f}) beats the champion {incumbent.label} "
                    f"({champion.score:.4f}) by {gain:.4f} {where} (more than {margin:g})"
                )
            else:
                result.decision = "rejected"
                better = "better" if gain > 0 else "worse" if gain < 0 else "the same"
                result.reason = (
                    f"{best.label} ({metric} {score:.4f}) does not beat the champion "
                    f"{incumbent.label} ({champion.score:.4f}) by more than {margin:g} {where} "
                    f"({better}: {gain:+.4f}): the champion stays"
                )

    def _rank(self, run: Any) -> tuple[float, float, str]:
        """Best first: the score in the metric's direction, then the shorter fit, then the run
        that finished first (as the leaderboard breaks ties)."""
        score = _test_score(run, self.metric)
        direction = -score if self.higher else score
        return (direction, run.fit_seconds or math.inf, run.finished_at or "")

    def _crown(self) -> None:
        from engine import champion

        result = self.result
        with self._step("crown") as step:
            assert result.challenger is not None
            if result.decision != "promoted":
                step.outcome = "skipped"
                step.detail = f"{result.challenger.label} rejected: the champion stays"
                return
            crowned = champion.crown_run(
                self.project, result.challenger.run_id, self.metric, reason="retrain"
            )
            step.detail = f"crowned {crowned.run.label} (run {crowned.run.id})"

    def _redeploy(self) -> None:
        how = self.options.redeploy
        if how == "none":
            return
        with self._step("redeploy") as step:
            if self.result.decision != "promoted":
                step.outcome = "skipped"
                step.detail = "the champion did not change: nothing to redeploy"
                return
            assert self.result.challenger is not None
            run_id = self.result.challenger.run_id
            if how == "server":
                step.outcome, step.detail = self._switch_server(run_id)
            elif how == "container":
                step.outcome, step.detail = self._restart_container(run_id)
            else:
                step.detail = self._deploy()

    def _switch_server(self, run_id: str) -> tuple[str, str]:
        """A running server follows the store's champion by itself: wait until its /health
        names the new run (up to SWITCH_SECONDS)."""
        import httpx

        server = self.api.server()
        if server is None:
            return "skipped", "no server is running: nothing to switch"
        started = time.monotonic()
        health: dict[str, Any] = {}
        while True:
            self._check_cancel()
            try:
                health = httpx.get(f"{server.url}/health", timeout=1.0).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            waited = time.monotonic() - started
            if health.get("run_id") == run_id:
                return "done", f"the server at {server.url} serves run {run_id} ({waited:.1f} s)"
            if waited > SWITCH_SECONDS:
                why = health.get("switch_error") or "see its log"
                raise ServingError(
                    f"the server at {server.url} still serves run {health.get('run_id')} "
                    f"{SWITCH_SECONDS:.0f} s after the crowning: {why}"
                )
            time.sleep(0.2)

    def _restart_container(self, run_id: str) -> tuple[str, str]:
        """Build the new champion's image (as the last build was made); restart the running
        container on its port and network, if one runs, and check its /health names the new
        run (the image was built from the champion: anything else is a bug worth saying)."""
        import httpx

        from engine.errors import ContainerError
        from engine.store import Store

        running = self.api.container_status().running()
        image = self.api.build(on_event=self.emit)
        if running is None:
            return "done", f"built {image.image}; no container is running: nothing to restart"
        with Store(self.project.db_path) as store:
            record = store.get_record("container") or {}
        self._check_cancel()
        self.api.stop_container(on_event=self.emit)
        started = self.api.start_container(
            port=int(record.get("port") or 8080),
            network=str(record.get("network") or "bridge"),
            on_event=self.emit,
        )
        try:
            served = httpx.get(f"{started.url}/health", timeout=5.0).json().get("run_id")
        except (httpx.HTTPError, ValueError, AttributeError):
            served = None
        if served != run_id:
            raise ContainerError(
                f"the restarted container at {started.url} serves run {served}, not the new "
                f"champion {run_id} (image {image.image})"
            )
        return "done", f"built {image.image}; the container at {started.url} serves run {run_id}"

    def _deploy_options(self) -> Any:
        """Where the last deploy went (region, registry, bucket, a role it was given, instance
        type and count), else the defaults: the endpoint moves, nothing new is created beside
        it. The role haj made (the record names it) is not "given": haj finds it by its name
        and keeps its policy up to date."""
        previous = self.api.deployment()
        raw = previous.to_dict() if previous else {}
        role, made = raw.get("role_arn"), raw.get("role_name")
        return self.api.deploy_options(
            region=raw.get("region"),
            registry=raw.get("registry"),
            bucket=raw.get("bucket"),
            role_arn=None if not role or (made and role.endswith(f"/{made}")) else role,
            instance_type=raw.get("instance_type"),
            instance_count=raw.get("instance_count"),
        )

    def _deploy(self) -> str:
        """Deploy the new champion to SageMaker, with `_deploy_options`."""
        record = self.api.deploy(self._deploy_options(), on_event=self.emit)
        return (
            f"endpoint {record.endpoint_name} in {record.region} is {record.status} with run "
            f"{record.run_id}"
        )

    # ---- a dry run ------------------------------------------------------------------------------
    def describe(self) -> None:
        """Each step as it would run, from what the project holds now (nothing is run)."""
        from engine.data import redact_url

        options, result, metric = self.options, self.result, self.metric
        incumbent = self._champion()
        raw = self._current_raw()
        result.raw_version = raw
        url = self.config["data"]["url"]
        source = redact_url(url) if url else "retriever.py"
        stop = {
            "new-data": "; stop there if it returns nothing new",
            "degraded": "",
            "always": "; go on whatever it returns",
        }[options.when]
        steps = [
            (
                "retrieve",
                f"run retriever.py ({source}); the current raw version is {raw or 'none'}{stop}",
            )
        ]
        if options.when == "degraded":
            tolerance = float(self.config["monitoring"]["tolerance"])
            steps.append(
                (
                    "check",
                    f"score the champion {incumbent.label} on the retrieved data and stop if it "
                    f"holds ({metric} at most {tolerance:.0%} worse than recorded)"
                    if incumbent
                    else "no champion to check: go on",
                )
            )
        training = self.config["training"]
        how = "stratified by class" if self.prediction == "classification" else "shuffled"
        models = ", ".join(self.models) if self.models else "every model"
        steps += [
            ("process", "run processor.py on the current raw version"),
            ("train", f"train {models} on that processed version"),
            (
                "score",
                f"the best challenger's test {metric}, and the champion {incumbent.label}'s "
                f"{metric} on the same test rows (test_size {training['test_size']}, "
                f"random_state {training['random_state']}, {how})"
                if incumbent
                else f"the best challenger's test {metric} (no champion yet)",
            ),
            (
                "crown",
                f"crown the challenger only if its {metric} is better by more than "
                f"{options.min_improvement:g} ({'higher' if self.higher else 'lower'} is "
                "better); else record it as rejected with both scores",
            ),
        ]
        if options.redeploy != "none":
            steps.append(("redeploy", self._describe_redeploy()))
        result.steps = [Step(name, "would", 0.0, detail) for name, detail in steps]
        if incumbent is not None:
            result.champion = Contender(incumbent.id, incumbent.label)

    def _describe_redeploy(self) -> str:
        how = self.options.redeploy
        first = "if a new champion is crowned: "
        if how == "server":
            server = self.api.server()
            if server is None:
                return first + "no server is running now: nothing to switch"
            return (
                first + f"the server at {server.url} switches by itself; wait up to "
                f"{SWITCH_SECONDS:.0f} s for its /health to name the new run"
            )
        if how == "container":
            return first + self._describe_container()
        options = self._deploy_options()
        deployed = self.api.deployment()
        pushed = f"the registry {options.registry}" if options.registry else "ECR"
        how_many = f"{options.instance_count} x {options.instance_type}"
        if deployed and deployed.endpoint_name:
            return first + (
                f"build and push its image to {pushed}, and move the endpoint "
                f"{deployed.endpoint_name} in {deployed.region} to it ({how_many}), as "
                "`haj deploy` does"
            )
        return first + (
            f"deploy it to SageMaker: build and push its image to {pushed}, and create an "
            f"endpoint ({how_many}), as `haj deploy` does"
        )

    def _describe_container(self) -> str:
        """What `container` would build (the last build's settings) and which container it
        would restart (Docker is asked which one runs; if it cannot answer, that is said)."""
        settings = self.api.build_settings()
        how = f"from {settings.base_image}" + (", wheelhouse" if settings.wheelhouse else "")
        if settings.network == "host":
            how += ", network host"
        made = "as the last build" if self.api.last_build() else "haj build's defaults"
        build = f"build its image ({how}, {made})"
        try:
            running = self.api.container_status().running()
        except HajError as exc:
            return (
                f"{build} and restart the project's container if one runs; Docker cannot say "
                f"now whether one does: {one_line(exc.message, 160)}"
            )
        if running is None:
            return f"{build}; no container is running now: nothing to restart"
        return (
            f"{build} and restart the container {running.name} at {running.url} on its port "
            "and network"
        )


# ---- the holdout --------------------------------------------------------------------------------
def _test_score(run: Any, metric: str) -> float:
    """A run's score on its test split (a cross-validated run keeps it beside its CV mean)."""
    if run.cv_folds and metric in run.test_metrics:
        return float(run.test_metrics[metric])
    return float(run.metrics[metric])


def holdout(project: Project, config: dict[str, Any], version: DataVersion) -> Any:
    """The test rows of processed `version`, split exactly as training splits it: the rows
    with a target, then the same test_size, random_state and stratification (the split's
    indices depend on nothing else)."""
    import numpy as np

    from engine.data import load_frame
    from engine.training import _classes, _split

    target, prediction = config["data"]["target"], config["project"]["prediction"]
    frame = load_frame(project.path / version.path, version.format)
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in {version.id}")
    frame = frame[frame[target].notna()]
    y = frame[target].to_numpy()
    if prediction == "regression":
        y = y.astype(np.float64)
    _, stratify = _classes(y, target, prediction)
    _, _, test_rows, _ = _split(np.arange(len(frame)), y, config["training"], stratify)
    return frame.iloc[test_rows]


def champion_score(
    project: Project, config: dict[str, Any], version: DataVersion, run: Any, metric: str
) -> tuple[float, int]:
    """(`run`'s score on the project's metric, rows) on the holdout of `version`, read as
    processed columns by its own bundle; recorded as an evaluation. A HajError says why it
    cannot be scored (its features are not in the data, its file does not verify...)."""
    from engine.evaluation import labelled_matrix, measure
    from engine.serving.model import load, locate_run
    from engine.store import Store

    prediction = config["project"]["prediction"]
    test = holdout(project, config, version)
    model = load(locate_run(project.path, run.id), project.name)
    names = [f["name"] for f in model.features]
    missing = [name for name in names if name not in test.columns]
    if missing:
        raise DataError(
            f"{version.id} lacks its feature {missing[0]!r} (it was trained on "
            f"{run.data_version}'s columns)"
        )
    X, y = labelled_matrix(model, test, config["data"]["target"], prediction)
    metrics, details = measure(model, X, y, prediction)
    if metric not in metrics:
        raise DataError(f"its {metric} cannot be computed on these rows")
    with Store(project.db_path) as store:
        store.add_evaluation(
            run.id, f"{version.id} (test split)", version.sha256, len(y), metrics, details
        )
    return float(metrics[metric]), len(y)
