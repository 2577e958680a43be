"""The served model: find the champion, verify its file, load it, predict, and switch when a new
champion is crowned.

Why the sha256 check comes first: a joblib file is a pickle, and unpickling runs code. The bytes
are read once, hashed, compared with the hash the store recorded at training time, and only those
same bytes are unpickled (no window between the check and the load).

Why a holder with one reference: requests read `holder.current` once and use that model to the end,
so a switch (a background thread loads and warms the new model, then assigns the reference) never
fails or stalls a request in flight.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import Hint, NoChampion, ServingError
from engine.features import BUNDLE_FORMAT
from engine.serving import inputs
from engine.serving.domain import Domain
from engine.serving.raw import RawIntake

log = logging.getLogger("haj.serving")


_NOT_FINITE = (
    "the model's output is not a finite number for these inputs: values far outside the "
    "training range overflow inside the model"
)


@dataclass(frozen=True)
class ChampionRef:
    """Where the champion's model file is and what its bytes must hash to."""

    run_id: str
    model: str
    metric: str | None
    value: float | None
    path: Path
    sha256: str
    crowned_at: str | None


def locate_champion(project_dir: Path) -> ChampionRef:
    """The champion from the store (haj.db); without a store, from models/champion.json.

    A container may ship only config.toml + models/champion.{joblib,json}: that is enough.
    """
    project_dir = Path(project_dir)
    db_path = project_dir / "haj.db"
    if db_path.exists():
        from engine.store import Store

        with Store(db_path, readonly=True) as store:
            champion = store.champion()
            if champion is None:
                raise _no_champion(project_dir)
            run = store.run(champion.run_id)
        if run is None or not run.model_path or not run.model_sha256:
            raise ServingError(f"the champion run {champion.run_id} has no recorded model file")
        return ChampionRef(
            run_id=champion.run_id,
            model=champion.model,
            metric=champion.metric,
            value=champion.value,
            path=project_dir / run.model_path,
            sha256=run.model_sha256,
            crowned_at=champion.crowned_at,
        )
    info_path = project_dir / "models" / "champion.json"
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            return ChampionRef(
                run_id=str(info["run_id"]),
                model=str(info.get("model", "")),
                metric=info.get("metric"),
                value=info.get("value"),
                path=project_dir / "models" / "champion.joblib",
                sha256=str(info["sha256"]),
                crowned_at=info.get("crowned_at"),  # written by `haj build` / `haj deploy`
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ServingError(f"{info_path} is not a valid champion record: {exc}") from None
    raise _no_champion(project_dir)


def locate_run(project_dir: Path, ref: str) -> ChampionRef:
    """The model file of run `ref` (an id or MODEL-#) and the sha256 it must hash to."""
    from engine.errors import UsageError
    from engine.store import Store

    db_path = Path(project_dir) / "haj.db"
    if not db_path.exists():
        raise UsageError(f"no run {ref!r}: the project has no runs yet")
    with Store(db_path, readonly=True) as store:
        run = store.find_run(ref)
    if run is None:
        raise UsageError(f"no run {ref!r} (see `haj runs {Path(project_dir).name}`)")
    if run.status != "finished" or not run.model_path or not run.model_sha256:
        raise UsageError(f"run {run.label} ({run.id}) has no model: it is {run.status}")
    return ChampionRef(
        run_id=run.id,
        model=run.model,
        metric=None,
        value=None,
        path=Path(project_dir) / run.model_path,
        sha256=run.model_sha256,
        crowned_at=None,
    )


def _no_champion(project_dir: Path) -> NoChampion:
    name = project_dir.name
    return NoChampion(f"project {name!r} has no champion to serve yet", Hint("crown", name))


def verified_bytes(ref: ChampionRef) -> bytes:
    """The model file's bytes, only if they hash to the recorded sha256."""
    import hashlib

    try:
        data = ref.path.read_bytes()
    except FileNotFoundError:
        raise ServingError(f"the champion's model file is missing: {ref.path}") from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ServingError(
            f"refusing to load {ref.path}: its sha256 does not match the one recorded for run "
            f"{ref.run_id} (the file was changed after training; retrain or restore it)"
        )
    return data


class LoadedModel:
    """A verified bundle, ready to predict from a 2-D array in the trained feature order."""

    def __init__(self, bundle: dict[str, Any], ref: ChampionRef, project: str) -> None:
        import numpy as np

        if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
            raise ServingError(f"{ref.path} is not a haj model bundle ({BUNDLE_FORMAT})")
        self.ref = ref
        self.project = project
        self.pipeline = bundle["pipeline"]
        self.features: list[dict[str, str]] = list(bundle["features"])
        self.names: list[str] = [f["name"] for f in self.features]
        self.kinds: list[str] = [f["kind"] for f in self.features]
        self.all_numeric = all(kind == "numeric" for kind in self.kinds)
        self.name_set = frozenset(self.names)
        self._raw = self._raw_intake(bundle.get("intake"), ref)
        # what a request sends: the data's own columns when the processing travels with the
        # model (engine.intake), else the processed features
        self.input_names: list[str] = self._raw.names if self._raw else self.names
        self.input_kinds: list[str] = self._raw.kinds if self._raw else self.kinds
        self.input_name_set = (
            self._raw.accepted if self._raw else self.name_set
        )  # names a record may carry ("records" is a field only when one of them)
        self.domain = Domain(bundle.get("domain"), self.names)
        # the training data's reference profile, for drift (engine.profile); None before haj kept it
        self.profile: dict[str, Any] | None = bundle.get("profile")
        self.prediction: str = bundle["prediction"]
        self.target: str = bundle.get("target", "target")
        self.run_id: str = bundle.get("run_id") or ref.run_id
        self.model: str = bundle.get("model") or ref.model
        self.data_version: str | None = bundle.get("data_version")
        self.metrics: dict[str, float] = dict(bundle.get("metrics") or {})
        self.trained_at: str | None = bundle.get("trained_at")
        self.loaded_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.classes = None
        self.labels: list[str] = []  # the classes as text: JSON keys of the probabilities
        self.class_values: list[Any] = []  # the classes as the predictions give them
        self.proba = False
        self.argmax_is_predict = False
        if self.prediction == "classification":
            classes = getattr(self.pipeline, "classes_", None)
            if classes is None and bundle.get("classes"):
                classes = bundle["classes"]
            if classes is not None:
                self.classes = np.asarray(classes)
                self.class_values = self.classes.tolist()
                self.labels = [str(c) for c in self.class_values]
            self.proba = self.classes is not None and hasattr(self.pipeline, "predict_proba")
            # Platt-scaled SVMs may disagree between predict and argmax(predict_proba)
            final = self.pipeline.steps[-1][1] if hasattr(self.pipeline, "steps") else None
            self.argmax_is_predict = self.proba and type(final).__name__ not in {"SVC", "NuSVC"}

        self._predict_fn, self._proba_fn = self._compile()
        self.row_seconds = 0.0  # one row's scoring time, measured at load

    def _raw_intake(self, meta: dict[str, Any] | None, ref: ChampionRef) -> RawIntake | None:
        """The fitted processing for raw rows, or None when the model takes processed columns
        (trained before haj kept it, or processor.py could not run per request)."""
        self.takes_raw_note: str | None = None
        if not meta:
            return None
        if not meta.get("accepts_raw") or not meta.get("processor"):
            self.takes_raw_note = meta.get("reason")
            return None
        try:
            return RawIntake(meta, self.features)
        except Exception as exc:  # unpickling user code can fail in any way
            raise ServingError(
                f"cannot load the processing saved with {ref.path}: {type(exc).__name__}: {exc}"
            ) from None

    @property
    def takes_raw(self) -> bool:
        return self._raw is not None

    @property
    def raw_intake(self) -> RawIntake | None:
        """The processing for raw rows (engine.serving.raw), or None."""
        return self._raw

    def matrix(self, rows: list[Any]) -> Any:
        """The model's input array for request rows (raw or processed, as the model takes)."""
        if self._raw is not None:
            return self._raw.matrix(rows)
        return inputs.to_matrix(rows, self.names, self.kinds, self.all_numeric)

    def example(self) -> dict[str, Any] | None:
        """A real raw row from the training data, when the model takes raw rows."""
        return dict(self._raw.example) if self._raw is not None and self._raw.example else None

    @property
    def required_inputs(self) -> list[str]:
        return self._raw.required if self._raw is not None else self.names

    def scores_inline(self, rows: int) -> bool:
        """Score on the event loop (no thread hop) when it costs under ~1 ms; slower models
        and big batches go to a worker thread so /health and /metrics stay responsive."""
        return rows <= 64 and self.row_seconds * rows < 0.001

    def _compile(self) -> tuple[Any, Any]:
        """The fastest verified way to call the pipeline (engine.serving.fastpath)."""
        from engine.serving import fastpath

        n = len(self.names)
        predict_fn = self.pipeline.predict
        proba_fn = self.pipeline.predict_proba if self.proba else None
        if self.all_numeric:
            if self.proba:
                proba_fn = fastpath.compile_linear(self.pipeline, n, proba=True) or proba_fn
            elif self.prediction == "regression":
                predict_fn = fastpath.compile_linear(self.pipeline, n, proba=False) or predict_fn
        probe = self.blank_row()
        for name in ("predict", "predict_proba") if self.proba else ("predict",):
            current = proba_fn if name == "predict_proba" else predict_fn
            if getattr(current, "__name__", "") == "fast":
                continue  # already compiled and verified
            stepwise = fastpath.general(self.pipeline, proba=name == "predict_proba")
            try:
                import numpy as np

                same = np.array_equal(stepwise(probe), current(probe))
            except Exception:
                same = False
            if same:
                if name == "predict_proba":
                    proba_fn = stepwise
                else:
                    predict_fn = stepwise
        return predict_fn, proba_fn

    def predict(self, X: Any) -> tuple[list[Any], Any]:
        """(predictions as JSON-ready values, class probabilities array or None).

        Raises ValueError (a 422 for the client) when the model's output is not finite: inputs
        far outside the training range (1e308, say) overflow inside the model, and a
        prediction of NaN must not be answered as if it were one."""
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.proba:
                proba = self._proba_fn(X)
                if not np.isfinite(proba).all():
                    raise ValueError(_NOT_FINITE)
                if self.argmax_is_predict:
                    return self.classes[proba.argmax(axis=1)].tolist(), proba  # type: ignore[index]
                return self._predict_fn(X).tolist(), proba
            predictions = self._predict_fn(X)
        if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
            raise ValueError(_NOT_FINITE)
        return predictions.tolist(), None

    def predict_in_thread(self, X: Any) -> tuple[list[Any], Any]:
        """predict() from a worker thread, under the same scikit-learn settings as the loop's."""
        import sklearn

        with sklearn.config_context(assume_finite=True):
            return self.predict(X)

    @property
    def fast_path(self) -> str:
        """Which code scores a request: 'numpy' (compiled linear), 'steps' or 'pipeline'."""
        fn = self._proba_fn if self.proba else self._predict_fn
        if getattr(fn, "__name__", "") == "fast":
            return "numpy"
        return "steps" if getattr(fn, "__name__", "") == "run" else "pipeline"

    def blank_row(self) -> Any:
        """One all-missing row (a warm-up input that every imputing pipeline accepts)."""
        import numpy as np

        if self.all_numeric:
            return np.full((1, len(self.names)), np.nan)
        return np.array([[np.nan] * len(self.names)], dtype=object)

    def info(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "model": self.model,
            "run_id": self.run_id,
            "prediction": self.prediction,
            "target": self.target,
            "metric": self.ref.metric,
            "score": self.ref.value,
            "data_version": self.data_version,
            "trained_at": self.trained_at,
            "crowned_at": self.ref.crowned_at,
            "loaded_at": self.loaded_at,
            "features": len(self.names),
            "inputs": "raw" if self._raw is not None else "processed",
            "input_columns": len(self.input_names),
            "classes": self.class_values or None,
            "scoring": self.fast_path,
        }


def load(ref: ChampionRef, project: str) -> LoadedModel:
    """Verify, unpickle and warm up the model `ref` points at."""
    import joblib

    data = verified_bytes(ref)
    try:
        bundle = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ServingError(f"cannot load {ref.path}: {type(exc).__name__}: {exc}") from None
    loaded = LoadedModel(bundle, ref, project)
    try:
        example = loaded.example()
        row = loaded.matrix([example]) if example else loaded.blank_row()
        loaded.predict(row)  # the first call pays lazy imports and caches
        started = time.perf_counter()
        loaded.predict(loaded.matrix([example]) if example else row)
        loaded.row_seconds = time.perf_counter() - started
    except Exception:
        log.debug("warm-up prediction failed", exc_info=True)
    return loaded


class ModelHolder:
    """The model being served, and a watcher that switches to a newly crowned champion."""

    def __init__(self, project_dir: Path, poll_seconds: float = 0.5) -> None:
        self.project_dir = Path(project_dir)
        self.project = self.project_dir.name
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.error: str | None = None
        self.switches = 0
        self.last_switch_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load_initial(self) -> LoadedModel:
        self.current = load(locate_champion(self.project_dir), self.project)
        return self.current

    def start(self) -> None:
        """Load the champion (if not yet loaded) and watch for a new one, in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="haj-model-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        if self.current is None:
            try:
                self.load_initial()
                log.info("serving %s (run %s)", self.current.model, self.current.run_id)  # type: ignore[union-attr]
            except Exception as exc:
                self.error = str(exc)
                log.error("cannot load the champion: %s", exc)
                return
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check_once()
            except Exception as exc:  # never let the watcher die; report and retry
                message = str(exc)
                if message != self.last_switch_error:
                    log.error("cannot switch to the new champion: %s", message)
                self.last_switch_error = message

    def check_once(self) -> bool:
        """Switch to the champion if it changed; True when a switch happened."""
        try:
            ref = locate_champion(self.project_dir)
        except NoChampion:
            return False  # champion cleared: keep serving the last one rather than fail
        current = self.current
        if current is not None and (ref.run_id, ref.sha256) == (
            current.ref.run_id,
            current.ref.sha256,
        ):
            if ref != current.ref:  # the same run crowned again (another metric): new details
                current.ref = ref
            self.last_switch_error = None  # what is served is the champion
            return False
        started = time.perf_counter()
        new = load(ref, self.project)
        self.current = new
        self.switches += 1
        self.last_switch_error = None
        log.info(
            "switched to the new champion %s (run %s) in %.0f ms",
            new.model,
            new.run_id,
            (time.perf_counter() - started) * 1000,
        )
        return True
