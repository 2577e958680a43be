"""The processing a model was trained with, kept so the served model takes the data's own rows.

At `haj process` the project's processor.py is fitted on a raw data version. Its `Processor`
class (fit / transform / training_rows, shaped like a scikit-learn transformer) is fitted once;
the fitted object is pickled beside the processed version and travels inside every model trained
on it, so the server applies to each request exactly what training applied. A processor.py that
defines only a plain `process()` function is probed on request-sized rows: when it keeps every
row and gives the trained features, it is applied per request too; otherwise the model keeps
taking the processed columns, and haj says why (`Intake.reason`).

Files beside a processed version data/processed/v0002-1a2b3c4d.csv:
    v0002-1a2b3c4d.intake.json     what requests send: the raw columns, kinds, an example row
    v0002-1a2b3c4d.processor.pkl   the fitted processor (cloudpickle: its class lives in
                                   processor.py, which the server does not have)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DataError
from engine.fsutil import atomic_write_bytes, atomic_write_text

PROBE_ROWS = 20  # rows a plain process() is tried on, as a batch request would send them
# What pandas.read_csv reads as missing by default (its documented na_values): a raw CSV version
# was loaded that way, so a request's "NA" must be missing too, as it was at training.
CSV_MISSING_TEXT = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


@dataclass
class Intake:
    """What a model trained on a processed version accepts at serving time."""

    target: str
    inputs: list[dict[str, str]]  # the raw columns a request may send: [{name, kind}]
    required: list[str]  # those the features come from: a request must send them
    accepts_raw: bool  # False: requests send the processed feature columns (see reason)
    style: str  # "processor" (the Processor class) or "process-function" (a plain process())
    passthrough: bool = False  # transform only selects columns: the server may skip calling it
    reason: str | None = None  # why raw rows cannot be taken, when they cannot
    example: dict[str, Any] = field(default_factory=dict)  # a real raw row, target removed
    # text that loading the raw version read as missing (pandas' defaults for CSV: "NA", ...)
    missing_text: list[str] = field(default_factory=list)
    processor: bytes | None = None  # the pickled fitted processor (bundle and .pkl file only)

    def meta(self) -> dict[str, Any]:
        """The JSON-safe description (everything but the pickled processor)."""
        data = asdict(self)
        data.pop("processor")
        return data


def fit(module: Any, raw: Any, target: str, prediction: str) -> tuple[Any, Intake]:
    """(processed training frame, intake) from processor.py's module and a raw frame.

    User code runs unguarded: the caller reports its exceptions as processor.py's. haj's own
    checks of the Processor contract raise DataError."""
    processor_class = getattr(module, "Processor", None)
    if isinstance(processor_class, type):
        return _fit_processor(processor_class, raw, target, prediction)
    process = getattr(module, "process", None)
    if not callable(process):
        raise DataError("processor.py must define a Processor class or a process() function")
    processed = call_process(process, raw, target, prediction)
    return processed, probe_function(process, raw, processed, target, prediction)


def _fit_processor(cls: type, raw: Any, target: str, prediction: str) -> tuple[Any, Intake]:
    import pandas as pd

    processor = cls(target, prediction)
    processor.fit(raw)
    features = processor.transform(raw)
    if not isinstance(features, pd.DataFrame):
        raise DataError(
            f"Processor.transform returned {type(features).__name__}: return a DataFrame"
        )
    if len(features) != len(raw):
        raise DataError(
            f"Processor.transform returned {len(features)} rows for {len(raw)}: it must keep "
            "every row (drop rows in training_rows, which runs at training only)"
        )
    keep = getattr(processor, "training_rows", None)
    processed = keep(features) if callable(keep) else features
    inputs = raw_inputs(raw, target)
    names = [item["name"] for item in inputs]
    required = [str(c) for c in getattr(processor, "inputs_", names) if str(c) in names]
    return processed, Intake(
        target=target,
        inputs=inputs,
        required=required,
        accepts_raw=True,
        style="processor",
        passthrough=bool(getattr(processor, "passthrough", False)),
        example=example_row(raw, names),
        processor=dumps(processor),
    )


def call_process(process: Any, raw: Any, target: str, prediction: str) -> Any:
    """process(raw), process(raw, target) or process(raw, target, prediction)."""
    params = inspect.signature(process).parameters
    args = (raw, target, prediction)[: max(1, min(len(params), 3))]
    return process(*args)


class ProcessFunction:
    """A plain process() applied to request rows: the rows get the target column (a label
    training saw, as process() usually insists on it) and lose it again afterwards."""

    def __init__(self, process: Any, target: str, prediction: str, filler: Any) -> None:
        self.process = process
        self.target = target
        self.prediction = prediction
        self.filler = filler

    def transform(self, raw: Any) -> Any:
        frame = raw.copy()
        frame[self.target] = self.filler
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = call_process(self.process, frame, self.target, self.prediction)
        if len(result) != len(raw):
            raise ValueError(f"processor.py's process() returned {len(result)} rows for {len(raw)}")
        return result.drop(columns=[self.target], errors="ignore")


def probe_function(process: Any, raw: Any, processed: Any, target: str, prediction: str) -> Intake:
    """Whether a plain process() can run on request rows: tried on a batch and on one row."""
    inputs = raw_inputs(raw, target)
    names = [item["name"] for item in inputs]
    base = Intake(
        target=target,
        inputs=inputs,
        required=names,
        accepts_raw=False,
        style="process-function",
        example=example_row(raw, names),
    )
    labelled = raw[raw[target].notna()] if target in raw.columns else raw.iloc[0:0]
    if labelled.empty:
        base.reason = "no raw row has a target value to try process() with"
        return base
    filler = _plain(labelled[target].mode().iloc[0])
    applied = ProcessFunction(process, target, prediction, filler)
    features = [str(c) for c in processed.columns if c != target]
    sample = labelled.drop(columns=[target]).head(PROBE_ROWS)
    try:
        for rows in (sample, sample.head(1)):
            out = applied.transform(rows)
            missing = [name for name in features if name not in out.columns]
            if missing:
                base.reason = f"on request rows, process() does not give the feature {missing[0]!r}"
                return base
    except Exception as exc:  # user code: any failure means "cannot", and why
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        base.reason = f"process() fails on request rows ({text})"
        return base
    base.accepts_raw = True
    base.processor = dumps(applied)
    return base


def raw_inputs(raw: Any, target: str) -> list[dict[str, str]]:
    """The raw columns (but the target) with their kinds, as engine.features names kinds."""
    from engine.features import feature_spec

    return feature_spec(raw.drop(columns=[target], errors="ignore"))


def example_row(raw: Any, names: list[str]) -> dict[str, Any]:
    """The first raw row, as a JSON request would carry it (NaN is null)."""
    if raw.empty:
        return {}
    row = raw.iloc[0]
    return {name: _plain(row[name]) for name in names if name in raw.columns}


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as a plain JSON value; missing is None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if value is not None and not isinstance(value, bool | int | float | str):
        return str(value)
    return value


def dumps(processor: Any) -> bytes:
    """The fitted processor as bytes the server can load without processor.py."""
    try:
        import cloudpickle
    except ImportError:  # older joblib vendors it
        from joblib.externals import cloudpickle  # type: ignore[no-redef]
    try:
        return cloudpickle.dumps(processor)
    except Exception as exc:  # any object may refuse pickling, in any way
        raise DataError(
            f"the fitted Processor cannot be saved with the model ({type(exc).__name__}: {exc})"
        ) from None


def loads(data: bytes) -> Any:
    import pickle

    # only ever bytes from a sha256-verified model bundle or haj's own processed version
    return pickle.loads(data)


# ---- beside a processed version ----------------------------------------------------------------
def _paths(version_file: Path) -> tuple[Path, Path]:
    stem = version_file.with_suffix("")
    return stem.with_name(stem.name + ".intake.json"), stem.with_name(stem.name + ".processor.pkl")


def save(version_file: Path, intake: Intake) -> None:
    """Write the intake beside its processed version (atomically, processor first)."""
    meta_path, pickle_path = _paths(version_file)
    if intake.processor is not None:
        atomic_write_bytes(pickle_path, intake.processor)
    else:
        pickle_path.unlink(missing_ok=True)
    atomic_write_text(meta_path, json.dumps(intake.meta(), indent=2, default=str) + "\n")


def load(version_file: Path) -> Intake | None:
    """The intake saved beside a processed version, or None (made before haj kept one)."""
    meta_path, pickle_path = _paths(version_file)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    processor = None
    if meta.get("accepts_raw"):
        try:
            processor = pickle_path.read_bytes()
        except FileNotFoundError:
            return None
    known = {name for name in Intake.__dataclass_fields__ if name != "processor"}
    return Intake(**{k: v for k, v in meta.items() if k in known}, processor=processor)


def exists(version_file: Path) -> bool:
    return _paths(version_file)[0].exists()
