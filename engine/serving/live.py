"""Running sketches of a server's traffic against the served run's reference profile.

Why here and not from the log: the prediction log is capped (at 10,000 req/s it holds about a
minute), so drift over live traffic is kept as counters: one sketch per minute (kept for a day),
one since the model started serving, and the last rows themselves (up to RECENT_ROWS) for
"the last N rows". Updated by the prediction log's writer thread, off the request path; read by
/drift, /summary, /diagnostics and /metrics under one lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from engine.profile import WindowSketch

MINUTES_KEPT = 24 * 60
RECENT_ROWS = 10_000
DUPLICATES_TRACKED = 100_000  # row hashes remembered to count repeated rows


class LiveSketches:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.profile: dict[str, Any] | None = None
        self.run_id: str | None = None
        self.since = time.time()
        self.total: WindowSketch | None = None
        self.minutes: OrderedDict[int, WindowSketch] = OrderedDict()
        self.recent: deque[tuple[Any, Any]] = deque()  # (X, predictions) batches
        self.recent_rows = 0
        self._seen: OrderedDict[int, None] = OrderedDict()
        self.refused: dict[str, int] = {}

    def serve(self, run_id: str, profile: dict[str, Any] | None) -> None:
        """Start counting for a newly served run (its reference replaces the previous one)."""
        with self._lock:
            if run_id == self.run_id:
                return
            self.run_id, self.profile = run_id, profile
            self.since = time.time()
            self.total = WindowSketch(profile) if profile else None
            self.minutes.clear()
            self.recent.clear()
            self.recent_rows = 0
            self._seen.clear()

    def add_many(self, scored: list[tuple[float, str, Any, Any]]) -> None:
        """Requests written together by the log writer thread, (time, run id, X, predictions)
        each: added as one batch per minute and run, so the cost is numpy's, not per request."""
        import numpy as np

        groups: dict[tuple[int, str], list[tuple[Any, Any]]] = {}
        for stamp, run_id, X, predictions in scored:
            if X is not None and len(X):
                groups.setdefault((int(stamp // 60), run_id), []).append((X, predictions))
        for (minute, run_id), parts in groups.items():
            X = parts[0][0] if len(parts) == 1 else np.concatenate([x for x, _ in parts])
            outputs: list[Any] | None = []
            for _, predictions in parts:
                if predictions is None or outputs is None:
                    outputs = None
                else:
                    outputs.extend(predictions)
            self.add(minute * 60.0, run_id, X, outputs)

    def add(self, stamp: float, run_id: str, X: Any, predictions: Any) -> None:
        """One scored batch."""
        if self.profile is None or run_id != self.run_id or X is None or not len(X):
            return
        batch = WindowSketch(self.profile)
        batch.add(X, predictions)
        batch.duplicates = self._duplicates(X)
        minute = int(stamp // 60)
        with self._lock:
            if run_id != self.run_id or self.total is None:
                return
            self.total.merge(batch)
            bucket = self.minutes.get(minute)
            if bucket is None:
                self.minutes[minute] = batch
                while len(self.minutes) > MINUTES_KEPT:
                    self.minutes.popitem(last=False)
            else:
                bucket.merge(batch)
            self.recent.append((X, predictions))
            self.recent_rows += len(X)
            while self.recent and self.recent_rows - len(self.recent[0][0]) >= RECENT_ROWS:
                self.recent_rows -= len(self.recent.popleft()[0])

    def refuse(self, field: str) -> None:
        """A request refused because of `field` (a missing, wrong-typed or unseen value)."""
        with self._lock:
            self.refused[field] = self.refused.get(field, 0) + 1

    def _duplicates(self, X: Any) -> int:
        """Rows of X already seen (among the last DUPLICATES_TRACKED distinct rows)."""
        keys = _row_keys(X)
        seen = self._seen
        found = 0
        for key in keys:
            if key in seen:
                found += 1
            else:
                seen[key] = None
        while len(seen) > DUPLICATES_TRACKED:
            seen.popitem(last=False)
        return found

    def window(self, seconds: float | None = None, last: int | None = None) -> WindowSketch | None:
        """The sketch of all traffic since the run was served, of the last `seconds`, or of the
        last `last` rows (at most RECENT_ROWS)."""
        import numpy as np

        with self._lock:
            if self.profile is None or self.total is None:
                return None
            window = WindowSketch(self.profile)
            if last is not None:
                wanted = min(last, RECENT_ROWS)
                batches: list[tuple[Any, Any]] = []
                held = 0
                for X, predictions in reversed(self.recent):
                    batches.append((X, predictions))
                    held += len(X)
                    if held >= wanted:
                        break
                rows: list[Any] = []
                outputs: list[Any] = []
                for X, predictions in reversed(batches):
                    rows.append(X)
                    outputs.extend(list(predictions) if predictions is not None else [])
                if rows:
                    X = np.concatenate(rows)[-wanted:]
                    outputs = outputs[-wanted:] if len(outputs) >= wanted else []
                    window.add(X, outputs or None)
            elif seconds is not None:
                first = int((time.time() - seconds) // 60)
                for minute, sketch in self.minutes.items():
                    if minute >= first:
                        window.merge(sketch)
            else:
                window.merge(self.total)
            window.refused = dict(self.refused)
            return window


def _row_keys(X: Any) -> list[int]:
    """A 64-bit key per row: for a float matrix a vectorised hash of the values' bits (a
    collision between two different rows is one in 2**64); otherwise Python's hash of the row."""
    import numpy as np

    if X.dtype == np.float64 and X.ndim == 2:
        bits = np.ascontiguousarray(X).view(np.uint64)
        weights = _weights(X.shape[1])
        with np.errstate(over="ignore"):
            return (bits * weights).sum(axis=1, dtype=np.uint64).tolist()
    return [hash(tuple(row)) for row in X.tolist()]


_WEIGHTS: dict[int, Any] = {}


def _weights(width: int) -> Any:
    import numpy as np

    if width not in _WEIGHTS:
        rng = np.random.default_rng(0x4A4A)
        _WEIGHTS[width] = rng.integers(1, 2**63, size=width, dtype=np.uint64) | np.uint64(1)
    return _WEIGHTS[width]
