"""Counters, latency and the prediction log of one server process.

Why plain numbers and a scrape-time collector: every request updates a few ints and two bucket
arrays on the event loop thread (no locks, well under a microsecond each); prometheus_client turns
them into its text exposition format only when /metrics is scraped. /predictions_count, /latency
and /metrics all read the same numbers.

Why a writer thread for the prediction log: the request only puts a tuple on a queue; JSON encoding
and file writes happen off the request path. The log is rotated at a size cap with a fixed number
of old files, and a full queue drops (and counts) entries instead of slowing requests.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("haj.serving")

WINDOW = 1000
HISTORY_POINTS = 600  # one sample a second: the last ten minutes, for the app's charts
SCORING = ("/predict", "/invocations")
SKETCH_SECONDS = 1.0  # the live drift sketches lag the traffic by at most this much
# Prometheus buckets (seconds): sub-millisecond resolution where a good server lives.
PROM_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Fine log-spaced buckets (10 us .. ~100 s, 5% apart) for since-start percentiles.
_FINE = tuple(1e-5 * 1.05**i for i in range(331))


class Monitor:
    """Per-process request statistics. Mutated only from the event loop thread."""

    def __init__(self) -> None:
        self.started = time.time()
        self.started_iso = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.requests: dict[tuple[str, int], int] = {}
        self.in_progress = 0
        self.rows = 0
        self.scoring_requests = 0
        self.scoring_errors = 0
        # Prometheus histogram per endpoint: [bucket counts..., +Inf], sum
        self.hist: dict[str, list[int]] = {}
        self.hist_sum: dict[str, float] = {}
        # scoring latency: last WINDOW values (ring) and since-start summary
        self.window = [0.0] * WINDOW
        self.window_next = 0
        self.window_len = 0
        self.fine = [0] * (len(_FINE) + 1)
        self.total_seconds = 0.0
        self.max_seconds = 0.0
        # values training never saw, per (feature, "unseen" | "out_of_range")
        self.unknown: dict[tuple[str, str], int] = {}
        # once a second (sample()): (unix time, scoring requests, errors, p50 ms, p95 ms)
        from collections import deque

        self.history: deque[tuple[float, int, int, float | None, float | None]] = deque(
            maxlen=HISTORY_POINTS
        )

    def sample(self) -> None:
        """Add the figures of this second to the history the app charts (requests so far and
        the recent latency percentiles); called once a second by the server."""
        window = self.latency()["window"]
        self.history.append(
            (
                round(time.time(), 3),
                self.scoring_requests,
                self.scoring_errors,
                window.get("p50_ms"),
                window.get("p95_ms"),
            )
        )

    def history_points(self) -> dict[str, Any]:
        return {
            "columns": ["time", "requests", "errors", "p50_ms", "p95_ms"],
            "points": [list(point) for point in self.history],
            "note": f"one point a second, the last {HISTORY_POINTS}; requests and errors are "
            "totals since start",
        }

    def count_flags(self, flags: list[dict[str, dict[str, Any]] | None]) -> None:
        """Count a batch's values outside what training saw (engine.serving.domain)."""
        unknown = self.unknown
        for row in flags:
            if row:
                for kind, fields in row.items():
                    for name in fields:
                        unknown[(name, kind)] = unknown.get((name, kind), 0) + 1

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        counts = self.hist.get(endpoint)
        if counts is None:
            counts = self.hist[endpoint] = [0] * (len(PROM_BUCKETS) + 1)
            self.hist_sum[endpoint] = 0.0
        counts[bisect_left(PROM_BUCKETS, seconds)] += 1
        self.hist_sum[endpoint] += seconds
        if endpoint in SCORING:
            self.scoring_requests += 1
            if status >= 400:  # refused requests are counted, not timed: /latency is of answers
                self.scoring_errors += 1
                return
            i = self.window_next
            self.window[i] = seconds
            self.window_next = (i + 1) % WINDOW
            if self.window_len < WINDOW:
                self.window_len += 1
            self.fine[bisect_left(_FINE, seconds)] += 1
            self.total_seconds += seconds
            if seconds > self.max_seconds:
                self.max_seconds = seconds

    # ---- reports -------------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        return {
            "predictions": self.rows,
            "requests": self.scoring_requests,
            "errors": self.scoring_errors,
            "started_at": self.started_iso,
            "uptime_seconds": round(time.time() - self.started, 3),
        }

    def latency(self) -> dict[str, Any]:
        recent = sorted(self.window[: self.window_len])
        n = len(recent)
        window: dict[str, Any] = {"requests": n}
        if n:
            window.update(
                p50_ms=_ms(_exact_quantile(recent, 0.50)),
                p95_ms=_ms(_exact_quantile(recent, 0.95)),
                p99_ms=_ms(_exact_quantile(recent, 0.99)),
                mean_ms=_ms(sum(recent) / n),
                max_ms=_ms(recent[-1]),
            )
        total = self.scoring_requests - self.scoring_errors  # the answered ones, as timed
        since: dict[str, Any] = {"requests": total}
        if total:
            since.update(
                p50_ms=_ms(self._fine_quantile(0.50)),
                p95_ms=_ms(self._fine_quantile(0.95)),
                p99_ms=_ms(self._fine_quantile(0.99)),
                mean_ms=_ms(self.total_seconds / total),
                max_ms=_ms(self.max_seconds),
            )
        return {
            "window": window,
            "since_start": since,
            "note": f"answered scoring requests only (/predict, /invocations with status 200; "
            f"refused ones are in /metrics); window = last {WINDOW}; since-start percentiles "
            "are within 5%",
        }

    def _fine_quantile(self, q: float) -> float:
        total = sum(self.fine)
        rank = q * total
        seen = 0
        for i, count in enumerate(self.fine):
            seen += count
            if seen >= rank and count:
                upper = _FINE[i] if i < len(_FINE) else self.max_seconds
                return min(upper, self.max_seconds)
        return self.max_seconds


def _exact_quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Collector:
    """Exposes a Monitor and the served model to prometheus_client at scrape time."""

    def __init__(
        self,
        monitor: Monitor,
        model_info: Callable[[], dict[str, Any] | None],
        extra: Callable[[], dict[str, tuple[str, float]]],
        gauges: Callable[[], dict[str, tuple[str, float]]] = dict,
    ) -> None:
        self.monitor = monitor
        self.model_info = model_info
        self.extra = extra
        self.gauges = gauges

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )

        m = self.monitor
        requests = CounterMetricFamily(
            "haj_requests", "HTTP requests by endpoint and status", labels=["endpoint", "status"]
        )
        for (endpoint, status), count in sorted(m.requests.items()):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        yield CounterMetricFamily("haj_predictions", "Predictions made (rows scored)", value=m.rows)
        unknown = CounterMetricFamily(
            "haj_unknown_values",
            "Values training never saw, by feature: kind=unseen (a category) or out_of_range "
            "(a number below the training minimum or above its maximum)",
            labels=["feature", "kind"],
        )
        for (feature, kind), count in sorted(m.unknown.items()):
            unknown.add_metric([feature, kind], count)
        yield unknown
        latency = HistogramMetricFamily(
            "haj_request_duration_seconds", "Request latency by endpoint", labels=["endpoint"]
        )
        for endpoint, counts in sorted(m.hist.items()):
            buckets, running = [], 0
            for bound, count in zip((*PROM_BUCKETS, float("inf")), counts, strict=True):
                running += count
                buckets.append((_bound(bound), running))
            latency.add_metric([endpoint], buckets, m.hist_sum[endpoint])
        yield latency
        yield GaugeMetricFamily(
            "haj_requests_in_progress", "Requests being handled now", value=m.in_progress
        )
        yield GaugeMetricFamily(
            "haj_server_start_time_seconds", "Unix time the server started", value=m.started
        )
        info = self.model_info()
        if info is not None:
            model = InfoMetricFamily("haj_model", "The model being served")
            model.add_metric(
                [],
                {
                    "project": str(info["project"]),
                    "model": str(info["model"]),
                    "run_id": str(info["run_id"]),
                    "data_version": str(info.get("data_version") or ""),
                    "prediction": str(info["prediction"]),
                    "metric": str(info.get("metric") or ""),
                },
            )
            yield model
            metrics = GaugeMetricFamily(
                "haj_model_metric",
                "The served model's evaluation metrics on its test split",
                labels=["metric"],
            )
            for name, value in sorted(info.get("metrics", {}).items()):
                metrics.add_metric([name], float(value))
            yield metrics
            if info.get("score") is not None:
                yield GaugeMetricFamily(
                    "haj_model_score",
                    "The champion's score by the metric it was crowned on",
                    value=float(info["score"]),
                )
        for name, (help_text, value) in self.extra().items():  # counters kept elsewhere
            yield CounterMetricFamily(f"haj_{name}", help_text, value=value)
        for name, (help_text, value) in self.gauges().items():
            yield GaugeMetricFamily(f"haj_{name}", help_text, value=value)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class PredictionLog:
    """Appends JSON lines {time, run_id, endpoint, latency_ms, inputs, outputs} off the request
    path, rotating at `max_bytes` and keeping `backups` old files.

    With several workers each writes predictions-<pid>.jsonl; `shared_cap` (bytes) then bounds
    all of them together: at start and after each rotation the oldest files beyond it are
    deleted (those of workers that have exited first; a live worker's current file never), so
    restarts and respawned workers cannot fill the disk either."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = 50 * 1024 * 1024,
        backups: int = 5,
        max_queue: int = 10_000,
        shared_cap: int | None = None,
        sketches: Any = None,
    ) -> None:
        self.path = Path(path)
        self.sketches = sketches  # engine.serving.live.LiveSketches, fed off the request path
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_queue = max_queue
        self.shared_cap = shared_cap
        self.dropped = 0
        self.written = 0
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="haj-prediction-log", daemon=True)
        self._thread.start()

    def append(
        self,
        endpoint: str,
        run_id: str,
        names: list[str],
        rows: list[Any],
        outputs: list[Any],
        probabilities: Any,
        labels: list[str],
        seconds: float,
        flags: list[Any] | None = None,
        request_ids: list[str] | None = None,
        matrix: Any = None,
    ) -> None:
        """Queue one request's record: microseconds, never blocks. `flags` marks, per row, the
        values training never saw (engine.serving.domain); `matrix`, the model's input array,
        feeds the live drift sketches in the writer thread."""
        if self._queue.qsize() >= self.max_queue:
            self.dropped += 1
            return
        self._queue.put(
            (
                time.time(),
                endpoint,
                run_id,
                names,
                rows,
                outputs,
                probabilities,
                labels,
                seconds,
                flags,
                request_ids,
                matrix,
            )
        )

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer."""
        self._closing.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        import orjson

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._prune()
        handle = open(self.path, "ab")  # noqa: SIM115 - held open for the server's life
        size = handle.tell()
        scored: list[tuple[Any, ...]] = []  # for the live sketches, added once a second
        sketch_due = time.monotonic() + SKETCH_SECONDS
        try:
            while True:
                # wake a few times a second and write what piled up: no wake-up per request
                closing = self._closing.wait(0.05)
                batch: list[tuple[Any, ...]] = []
                while len(batch) < 10_000:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        batch.append(item)
                pending: list[bytes] = []
                if self.sketches is not None:
                    scored.extend((e[0], e[2], e[11], e[5]) for e in batch if e[11] is not None)
                    if scored and (closing or time.monotonic() >= sketch_due):
                        # one sketch update a second, not one per request: numpy per batch
                        self.sketches.add_many(scored)
                        scored = []
                        sketch_due = time.monotonic() + SKETCH_SECONDS
                for entry in batch:
                    line = _line(orjson, entry)
                    if size and size + len(line) > self.max_bytes:
                        handle.write(b"".join(pending))
                        pending = []
                        handle.close()
                        self._rotate()
                        self._prune()
                        handle = open(self.path, "ab")  # noqa: SIM115
                        size = 0
                    pending.append(line)
                    size += len(line)
                    self.written += 1
                if pending:
                    handle.write(b"".join(pending))
                    handle.flush()
                if closing and self._queue.empty():
                    return
        except Exception:
            log.exception("the prediction log stopped")
        finally:
            handle.close()

    def _rotate(self) -> None:
        """predictions.jsonl -> .1 -> .2 ... ; the oldest beyond `backups` is overwritten."""
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            source = self.path.with_name(f"{self.path.name}.{i}")
            if source.exists():
                os.replace(source, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _prune(self) -> None:
        """Keep all workers' prediction logs under `shared_cap` bytes, oldest deleted first."""
        if self.shared_cap is None:
            return
        files = []
        for path in self.path.parent.glob("predictions-*.jsonl*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.shared_cap:
                return
            if path == self.path or _live_worker_file(path):
                continue
            path.unlink(missing_ok=True)
            total -= size


def _live_worker_file(path: Path) -> bool:
    """predictions-<pid>.jsonl of a worker that still runs (it holds the file open)."""
    from engine.procs import pid_alive

    stem = path.name.removeprefix("predictions-").removesuffix(".jsonl")
    return stem.isdigit() and pid_alive(int(stem))


def _line(orjson: Any, entry: tuple[Any, ...]) -> bytes:
    stamp, endpoint, run_id, names, rows, outputs, probabilities, labels, seconds, flags = entry[
        :10
    ]
    ids = entry[10]
    inputs = [row if type(row) is dict else dict(zip(names, row, strict=False)) for row in rows]
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds"),
        "run_id": run_id,
        "endpoint": endpoint,
        "latency_ms": round(seconds * 1000, 3),
        "inputs": inputs,
        "outputs": outputs,
    }
    if ids is not None:
        record["request_ids"] = ids
    if flags is not None:  # per input: {"unseen": {...}, "out_of_range": {...}} or null
        record["unknown"] = flags
    if probabilities is not None:
        record["probabilities"] = [
            dict(zip(labels, row, strict=True)) for row in probabilities.tolist()
        ]
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
