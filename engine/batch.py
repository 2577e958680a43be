"""Batch and stream scoring (`haj predict`): a file, a data version or a stream of JSON lines,
scored by the same verified model, processing and checks as the server.

Why two input paths: a CSV file is read by pandas in chunks and checked column by column
(vectorized: a million rows must not cost a Python loop per value), then goes through the
model's fitted processing and engine.features.to_matrix exactly as training did; JSON records
(a .json or .jsonl file, or stdin) go through the server's own per-record validation
(LoadedModel.matrix), so a row refused by /predict is refused here with the same words. Either
way memory is bounded by the chunk, and the output is written to a temporary file renamed into
place at the end (a crash leaves no half file).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from engine import events
from engine.errors import DataError, UsageError
from engine.project import Project

CHUNK_ROWS = 50_000  # rows read, checked and scored at a time
LOG_SHARE = 0.01  # share of a file's rows kept in the prediction log (a seeded sample)...
LOG_SAMPLE = 1_000  # ...at most this many per chunk (a stream logs every line)
BATCH_LOG = Path("logs") / "batch-predictions.jsonl"
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass
class PredictResult:
    """What a batch scoring did: the model, rows scored and refused, where they went."""

    run_id: str
    model: str
    rows: int = 0
    rejected: int = 0
    output: str | None = None  # None: written to stdout
    rejects: str | None = None
    seconds: float = 0.0
    unknown: dict[str, int] = field(default_factory=dict)  # "feature (unseen|out_of_range)": rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


class BadRow(Exception):
    """A row refused, with its line number (1-based, in the input as the user sees it)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


# ---- the model -----------------------------------------------------------------------------------
def open_model(project: Project, run: str | None = None) -> Any:
    """The champion (or run `run`), sha256-verified and loaded as the server loads it."""
    from engine.serving.model import load, locate_champion, locate_run

    ref = locate_run(project.path, run) if run else locate_champion(project.path)
    return load(ref, project.name)


class BatchScorer:
    """Scores chunks for one model: checks rows, applies the processing, predicts, flags values
    training never saw, and shapes the output (kept columns, prediction, proba_<class>)."""

    def __init__(
        self, model: Any, keep: list[str], skip_bad: bool, reject_unseen: bool = False
    ) -> None:
        self.model = model
        self.keep = list(keep)
        self.skip_bad = skip_bad
        self.reject_unseen = reject_unseen
        raw = model.raw_intake
        self.names: list[str] = model.input_names
        self.kinds: list[str] = model.input_kinds
        self.required: list[str] = model.required_inputs
        self.missing_text = frozenset(raw.missing_text) if raw else frozenset()
        known = set(self.names) | ({raw.target} if raw else set())
        self.allowed = known | set(self.keep)
        self.keep_only = set(self.keep) - known  # columns kept for the output, not for the model
        self.unknown: dict[str, int] = {}

    # ---- columns: a CSV chunk ----
    def check_columns(self, columns: list[str]) -> None:
        """Refuse a file whose columns the model cannot take, before any row is scored."""
        shown = ", ".join(repr(n) for n in self.names[:6]) + (
            ", ..." if len(self.names) > 6 else ""
        )
        for name in columns:
            if name not in self.allowed:
                raise DataError(
                    f"unknown column {name!r} (the model takes {shown}; keep it in the output "
                    f"with --keep {name!r})"
                )
        for name in self.required:
            if name not in columns:
                raise DataError(f"column {name!r} is missing (the model takes {shown})")
        for name in self.keep:
            if name not in columns:
                raise UsageError(f"--keep {name!r}: the input has no such column")

    def score_frame(self, frame: Any, first_line: int) -> tuple[Any, list[BadRow]]:
        """(output rows, refused rows) of a chunk read from a CSV file; `first_line` is the
        line number of its first row."""
        import numpy as np
        import pandas as pd

        work, reasons = self._normalized(frame)
        refused = [BadRow(first_line + i, reasons[i]) for i in sorted(reasons)]
        if refused and not self.skip_bad:
            raise DataError(str(refused[0]))
        if reasons:
            good = np.ones(len(frame), dtype=bool)
            good[list(reasons)] = False
            work, frame = work[good], frame[good]
            lines = first_line + np.flatnonzero(good)
        else:
            lines = first_line + np.arange(len(frame))
        if work.empty:
            return pd.DataFrame(), refused
        X = self._matrix(work)
        X, frame, work, more = self._flag(X, frame, work, lines)
        refused += more
        if len(frame) == 0:
            return pd.DataFrame(), refused
        output = self._output(frame, X)
        self._log(work, output)
        return output, refused

    def _normalized(self, frame: Any) -> tuple[Any, dict[int, str]]:
        """The model's raw columns as training read them (numbers as numbers, categories as
        text, "NA" and the like as missing), and why each refused row (by position) is refused."""
        import numpy as np
        import pandas as pd

        from engine.serving.inputs import category_text

        columns: dict[str, Any] = {}
        reasons: dict[int, str] = {}
        for name, kind in zip(self.names, self.kinds, strict=True):
            if name not in frame.columns:
                columns[name] = np.full(len(frame), np.nan)
                continue
            column = frame[name]
            if kind == "numeric":
                if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                    present = column.notna() & ~column.astype(str).isin(self.missing_text)
                    numbers = pd.to_numeric(column.where(present), errors="coerce")
                    wrong = present & numbers.isna()
                    for position in np.flatnonzero(wrong.to_numpy()):
                        value = column.iloc[position]
                        reasons.setdefault(
                            int(position), f"field {name!r} must be a number, got {value!r}"
                        )
                    column = numbers
                if column.dtype != np.float64:
                    column = column.astype("float64")
                infinite = np.isinf(column.to_numpy())
                for position in np.flatnonzero(infinite):
                    reasons.setdefault(int(position), f"field {name!r} must be a finite number")
                columns[name] = column
            elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                # numbers in a text column read as training's text ("100", not "100.0")
                columns[name] = column.map(
                    lambda v: (
                        category_text(v.item() if hasattr(v, "item") else v)
                        if v == v and v is not None
                        else np.nan
                    )
                ).astype(object)
            else:
                columns[name] = column.where(~column.isin(self.missing_text), np.nan)
        return pd.DataFrame(columns, index=frame.index, copy=False), reasons

    def _matrix(self, work: Any) -> Any:
        from engine.features import to_matrix

        raw = self.model.raw_intake
        if raw is not None and not raw.passthrough:
            try:
                processed = raw.processor.transform(work.reset_index(drop=True))
            except Exception as exc:  # the user's processing may raise anything
                text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                raise DataError(f"processor.py could not process these rows: {text}") from None
            if len(processed) != len(work):
                raise DataError(
                    f"processor.py gave {len(processed)} rows for {len(work)}: its transform "
                    "must keep every row"
                )
            return to_matrix(processed, self.model.features)
        return to_matrix(work, self.model.features)

    def _flag(self, X: Any, frame: Any, work: Any, lines: Any) -> tuple[Any, Any, Any, list]:
        """Count values training never saw; with reject_unseen, refuse their rows."""
        import numpy as np

        domain = self.model.domain
        for key, count in domain.counts(X).items():
            self.unknown[key] = self.unknown.get(key, 0) + count
        if not self.reject_unseen or not domain.categorical:
            return X, frame, work, []
        unseen = domain.first_unseen(X)
        if not unseen:
            return X, frame, work, []
        refused = [
            BadRow(
                int(lines[i]),
                f"field {name!r} has the value {value!r}, a category the model never saw in "
                'training ([serving] unknown_categories = "reject")',
            )
            for i, name, value in unseen
        ]
        if not self.skip_bad:
            raise DataError(str(refused[0]))
        good = np.ones(len(X), dtype=bool)
        good[[i for i, _, _ in unseen]] = False
        return X[good], frame[good], work[good], refused

    def _output(self, frame: Any, X: Any) -> Any:
        import pandas as pd

        predictions, proba = self.model.predict(X)
        out = pd.DataFrame({name: frame[name].to_numpy() for name in self.keep})
        out["prediction"] = predictions
        if proba is not None:
            for j, label in enumerate(self.model.labels):
                out[f"proba_{label}"] = proba[:, j]
        out.index = frame.index
        return out

    # ---- records: JSON, JSON lines, a stream ----
    def score_records(
        self, records: list[Any], first_line: int
    ) -> tuple[list[dict[str, Any]], list[BadRow]]:
        """(output records, refused rows) of records checked as the server checks a request."""
        import numpy as np

        from engine.serving.inputs import InputError

        kept: list[dict[str, Any]] = []
        inputs: list[Any] = []
        refused: list[BadRow] = []
        for i, record in enumerate(records):
            if type(record) is not dict:
                refused.append(BadRow(first_line + i, "a record must be a JSON object"))
                continue
            missing = [name for name in self.keep if name not in record]
            if missing:
                refused.append(BadRow(first_line + i, f"--keep {missing[0]!r}: no such field"))
                continue
            kept.append({name: record[name] for name in self.keep})
            inputs.append(
                {k: v for k, v in record.items() if k not in self.keep_only}
                if self.keep_only
                else record
            )
        if refused and not self.skip_bad:
            raise DataError(str(refused[0]))
        lines = [first_line + i for i, r in enumerate(records) if type(r) is dict]
        lines = [line for line, _ in zip(lines, range(len(inputs)), strict=False)]
        try:
            X = self.model.matrix(inputs) if inputs else None
        except InputError:
            X, kept, inputs, lines, more = self._one_by_one(kept, inputs, lines)
            refused += more
        if X is None or not len(inputs):
            return [], refused
        domain = self.model.domain
        for key, count in domain.counts(X).items():
            self.unknown[key] = self.unknown.get(key, 0) + count
        unseen = domain.first_unseen(X) if self.reject_unseen and domain.categorical else []
        if unseen:
            more = [
                BadRow(
                    lines[i],
                    f"field {name!r} has the value {value!r}, a category the model never saw in "
                    'training ([serving] unknown_categories = "reject")',
                )
                for i, name, value in unseen
            ]
            if not self.skip_bad:
                raise DataError(str(more[0]))
            refused += more
            good = np.ones(len(inputs), dtype=bool)
            good[[i for i, _, _ in unseen]] = False
            X = X[good]
            kept = [k for k, ok in zip(kept, good, strict=True) if ok]
            inputs = [r for r, ok in zip(inputs, good, strict=True) if ok]
            if not inputs:
                return [], refused
        predictions, proba = self.model.predict(X)
        outputs = []
        for i, values in enumerate(kept):
            row = {**values, "prediction": predictions[i]}
            if proba is not None:
                for j, label in enumerate(self.model.labels):
                    row[f"proba_{label}"] = float(proba[i, j])
            outputs.append(row)
        self._log_records(inputs, predictions, proba)
        return outputs, refused

    def _one_by_one(
        self, kept: list[Any], inputs: list[Any], lines: list[int]
    ) -> tuple[Any, list[Any], list[Any], list[int], list[BadRow]]:
        """Find the refused records of a chunk the server's check refused as a whole."""
        import numpy as np

        from engine.serving.inputs import InputError

        rows, good_kept, good_inputs, good_lines, refused = [], [], [], [], []
        for values, record, line in zip(kept, inputs, lines, strict=True):
            try:
                rows.append(self.model.matrix([record]))
            except InputError as exc:
                refused.append(BadRow(line, exc.message.removeprefix("record 0: ")))
                if not self.skip_bad:
                    raise DataError(str(refused[0])) from None
                continue
            good_kept.append(values)
            good_inputs.append(record)
            good_lines.append(line)
        X = np.concatenate(rows) if rows else None
        return X, good_kept, good_inputs, good_lines, refused

    # ---- the prediction log ----
    log: Any = None  # a serving.monitoring.PredictionLog, set by the caller

    def _log(self, inputs: Any, output: Any) -> None:
        """A sample of a chunk's rows in the prediction log (endpoint "batch")."""
        if self.log is None or output.empty:
            return
        size = min(LOG_SAMPLE, max(1, round(len(inputs) * LOG_SHARE)))
        sample = inputs.sample(size, random_state=0) if size < len(inputs) else inputs
        sample = sample.loc[sample.index.isin(output.index)]
        rows = sample.to_dict(orient="records")  # NaN is written as null by the log's writer
        chosen = output.loc[sample.index]
        proba = None
        if self.model.labels and f"proba_{self.model.labels[0]}" in chosen.columns:
            proba = chosen[[f"proba_{label}" for label in self.model.labels]].to_numpy()
        self.log.append(
            "batch",
            self.model.run_id,
            self.names,
            rows,
            chosen["prediction"].tolist(),
            proba,
            self.model.labels,
            0.0,
        )

    def _log_records(self, inputs: list[Any], predictions: list[Any], proba: Any) -> None:
        if self.log is None or not inputs:
            return
        self.log.append(
            "batch",
            self.model.run_id,
            self.names,
            inputs[:LOG_SAMPLE],
            predictions[:LOG_SAMPLE],
            None if proba is None else proba[:LOG_SAMPLE],
            self.model.labels,
            0.0,
        )


# ---- inputs ----------------------------------------------------------------------------------
@dataclass
class Source:
    """Where rows come from: a CSV file (with its reading), or JSON records."""

    path: Path
    kind: str  # "csv" | "json" | "jsonl"
    reading: dict[str, str] = field(default_factory=dict)
    label: str = ""


def resolve_source(project: Project, source: str) -> Source:
    """A file path, or a data version id (its file, read as recorded)."""
    path = Path(source).expanduser()
    if path.exists():
        if path.is_dir():
            raise UsageError(f"{source} is a directory: give a CSV, JSON or JSON-lines file")
        suffix = path.suffix.lower()
        kind = (
            "jsonl" if suffix in (".jsonl", ".ndjson") else "json" if suffix == ".json" else "csv"
        )
        return Source(path, kind, {}, str(path))
    if project.db_path.exists():
        from engine.data import open_store, reading_of

        with open_store(project) as store:
            version = store.data_version(source)
        if version is not None:
            if version.format not in ("csv", "json"):
                raise DataError(f"{version.id} is {version.format}: only tables can be scored")
            kind = "csv" if version.format == "csv" else "json"
            return Source(
                project.path / version.path, kind, reading_of(version.reading), version.id
            )
    raise UsageError(f"no file or data version {source!r}")


def csv_options(source: Source) -> tuple[str, str]:
    """(encoding, separator) of a CSV source: as recorded for a data version, else UTF-8 and
    the separator sniffed from its start."""
    from engine import ingest

    encoding = source.reading.get("encoding", "utf-8-sig")
    sep = source.reading.get("sep")
    if sep is None:
        with open(source.path, encoding=encoding, errors="replace", newline="") as handle:
            sep = ingest._csv_delimiter(handle.read(ingest.SNIFF)) or ","
    return encoding, sep


def csv_header(source: Source) -> list[str]:
    import csv

    encoding, sep = csv_options(source)
    with open(source.path, encoding=encoding, errors="replace", newline="") as handle:
        return [name for name in next(csv.reader(handle, delimiter=sep), [])]


def csv_chunks(source: Source) -> Iterator[tuple[Any, int]]:
    """(chunk, line number of its first row) of a CSV file read by pandas, with its reading."""
    import pandas as pd

    encoding, sep = csv_options(source)
    try:
        reader = pd.read_csv(
            source.path,
            sep=sep,
            encoding=encoding,
            decimal=source.reading.get("decimal", "."),
            thousands=source.reading.get("thousands"),
            chunksize=CHUNK_ROWS,
            low_memory=False,
        )
        line = 2  # the header is line 1
        for chunk in reader:
            yield chunk, line
            line += len(chunk)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        text = str(exc).splitlines()[0][:300]
        raise DataError(f"cannot read {source.label} as CSV: {text}") from None


def json_records(source: Source) -> Iterator[tuple[list[Any], int]]:
    """(records, line number of the first) of a JSON array / {"records": [...]} file or a
    JSON-lines file, CHUNK_ROWS at a time."""
    import orjson

    from engine import ingest

    if source.kind == "jsonl":
        with open(source.path, "rb") as handle:
            yield from _line_chunks(handle)
        return
    try:
        document = orjson.loads(source.path.read_bytes())
    except orjson.JSONDecodeError:
        with open(source.path, "rb") as handle:  # JSON lines in a .json file
            yield from _line_chunks(handle)
        return
    records = ingest.records_of(document)
    if not isinstance(records, list):
        raise DataError(f"{source.label} holds no list of records")
    for start in range(0, len(records), CHUNK_ROWS):
        yield records[start : start + CHUNK_ROWS], start + 1


def _line_chunks(handle: IO[bytes]) -> Iterator[tuple[list[Any], int]]:
    import orjson

    chunk: list[Any] = []
    first = 1
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"line {number}: not JSON ({exc})") from None
        if not chunk:
            first = number
        chunk.append(record)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk, first
            chunk = []
    if chunk:
        yield chunk, first


# ---- outputs ---------------------------------------------------------------------------------
class Output:
    """Rows written to a temporary file beside `path`, renamed into place by `commit()`:
    CSV, or JSON lines when the name ends in .jsonl / .ndjson / .json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.jsonl = path.suffix.lower() in JSON_SUFFIXES
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.tmp = Path(tmp)
        self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self.header = True

    def write_frame(self, frame: Any) -> None:
        if frame.empty:
            return
        if self.jsonl:
            frame.to_json(self.handle, orient="records", lines=True)
            return
        try:
            import pyarrow as pa
            import pyarrow.csv as pcsv
        except ImportError:  # pandas writes the same CSV, several times slower
            frame.to_csv(self.handle, header=self.header, index=False)
        else:
            # pyarrow formats floats exactly (shortest round-trip), an order faster than pandas
            table = pa.Table.from_pandas(frame, preserve_index=False)
            text = io.BytesIO()
            pcsv.write_csv(
                table,
                text,
                pcsv.WriteOptions(include_header=self.header, quoting_style="needed"),
            )
            self.handle.write(text.getvalue().decode("utf-8"))
        self.header = False

    def write_records(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.jsonl:
            self.handle.writelines(json_line(r) for r in records)
        else:
            import pandas as pd

            self.write_frame(pd.DataFrame(records))

    def commit(self) -> None:
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


class StdoutOutput(Output):
    """Rows written to standard output as they are scored (CSV, or JSON lines)."""

    def __init__(self, jsonl: bool) -> None:
        import sys

        self.path = Path("-")
        self.jsonl = jsonl
        self.handle = sys.stdout
        self.header = True

    def commit(self) -> None:
        self.handle.flush()

    def abandon(self) -> None:
        self.handle.flush()


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=_plain, allow_nan=False) + "\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def rejects_path(output: Path | None, project: Project) -> Path:
    if output is not None:
        return output.with_name(output.stem + ".rejects.jsonl")
    return project.logs_dir / "predict.rejects.jsonl"


# ---- the verbs -----------------------------------------------------------------------------------
def predict_file(
    project: Project,
    source: str,
    output: Path | None,
    *,
    run: str | None = None,
    keep: list[str] | None = None,
    skip_bad: bool = False,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> PredictResult:
    """Score a file or data version into `output` (CSV or JSON lines), chunk by chunk."""
    started = time.perf_counter()
    located = resolve_source(project, source)
    model = open_model(project, run)
    scorer = BatchScorer(model, keep or [], skip_bad, _reject_unseen(project))
    result = PredictResult(
        run_id=model.run_id, model=model.model, output=str(output) if output else None
    )
    out: Output | StdoutOutput = (
        Output(output) if output is not None else StdoutOutput(jsonl=located.kind != "csv")
    )
    rejects: RejectsFile | None = None
    scorer.log = _open_log(project)
    try:
        if located.kind == "csv":
            scorer.check_columns(csv_header(located))
            rejects = _score_csv(csv_chunks(located), scorer, out, result, output,
                                 project, started, on_event, cancel)  # fmt: skip
        else:
            for records, first in json_records(located):
                _check_cancel(cancel)
                rows, refused = scorer.score_records(records, first)
                out.write_records(rows)
                rejects = _reject(rejects, refused, output, project)
                _count(result, len(rows), refused, started, on_event)
        out.commit()
    except BaseException:
        out.abandon()
        raise
    finally:
        _close(scorer, rejects)
    return _finished(result, scorer, rejects, started)


def predict_stream(
    project: Project,
    lines: Iterable[str],
    write: Callable[[str], None],
    *,
    run: str | None = None,
    keep: list[str] | None = None,
    skip_bad: bool = False,
) -> PredictResult:
    """Score JSON lines as they arrive: one output line per input line, written (and flushed by
    `write`) before the next line is read."""
    started = time.perf_counter()
    model = open_model(project, run)
    scorer = BatchScorer(model, keep or [], skip_bad, _reject_unseen(project))
    result = PredictResult(run_id=model.run_id, model=model.model, output=None)
    rejects: RejectsFile | None = None
    scorer.log = _open_log(project)
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                refused = [BadRow(number, f"not JSON ({exc})")]
                if not skip_bad:
                    raise DataError(str(refused[0])) from None
                rejects = _reject(rejects, refused, None, project, {number: line})
                result.rejected += 1
                continue
            rows, refused = scorer.score_records([record], number)
            for row in rows:
                write(json_line(row))
            rejects = _reject(rejects, refused, None, project, {number: line})
            result.rows += len(rows)
            result.rejected += len(refused)
    finally:
        _close(scorer, rejects)
    return _finished(result, scorer, rejects, started)


def _score_csv(
    chunks: Iterable[tuple[Any, int]],
    scorer: BatchScorer,
    out: Output,
    result: PredictResult,
    output: Path | None,
    project: Project,
    started: float,
    on_event: events.Callback,
    cancel: threading.Event | None,
) -> RejectsFile | None:
    rejects: RejectsFile | None = None
    try:
        for chunk, first in chunks:
            _check_cancel(cancel)
            chunk.columns = [str(c) for c in chunk.columns]
            frame, refused = scorer.score_frame(chunk, first)
            out.write_frame(frame)
            rejects = _reject(rejects, refused, output, project)
            _count(result, len(frame), refused, started, on_event)
    except BaseException:
        if rejects is not None:
            rejects.close()
        raise
    return rejects


def _close(scorer: BatchScorer, rejects: RejectsFile | None) -> None:
    if rejects is not None:
        rejects.close()
    if scorer.log is not None:
        scorer.log.close()


def _finished(
    result: PredictResult, scorer: BatchScorer, rejects: RejectsFile | None, started: float
) -> PredictResult:
    result.rejects = str(rejects.path) if rejects is not None else None
    result.unknown = dict(scorer.unknown)
    result.seconds = time.perf_counter() - started
    return result


class RejectsFile:
    """Refused rows as JSON lines {line, reason} (with the input line for a stream)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def add(self, row: BadRow, text: str | None = None) -> None:
        entry: dict[str, Any] = {"line": row.line, "reason": row.reason}
        if text is not None:
            entry["input"] = text.rstrip("\n")
        self.handle.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        self.handle.close()


def _reject(
    rejects: RejectsFile | None,
    refused: list[BadRow],
    output: Path | None,
    project: Project,
    texts: dict[int, str] | None = None,
) -> RejectsFile | None:
    if not refused:
        return rejects
    if rejects is None:
        rejects = RejectsFile(rejects_path(output, project))
    for row in refused:
        rejects.add(row, (texts or {}).get(row.line))
    return rejects


def _count(
    result: PredictResult,
    rows: int,
    refused: list[BadRow],
    started: float,
    on_event: events.Callback,
) -> None:
    result.rows += rows
    result.rejected += len(refused)
    elapsed = time.perf_counter() - started
    rate = result.rows / elapsed if elapsed else None
    on_event(events.Progress(done=result.rows, total=0, label="scoring", unit="rows", rate=rate))


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt


def _reject_unseen(project: Project) -> bool:
    return project.read_config()["serving"].get("unknown_categories") == "reject"


def _open_log(project: Project) -> Any:
    """The batch prediction log (its own file: a running server writes predictions.jsonl)."""
    from engine.serving.monitoring import PredictionLog

    serving = project.read_config()["serving"]
    return PredictionLog(
        project.path / BATCH_LOG,
        max_bytes=int(float(serving["prediction_log_mb"]) * 1024 * 1024),
        backups=int(serving["prediction_log_files"]),
    )
