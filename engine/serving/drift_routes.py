"""GET /drift, /summary and /diagnostics, and the drift figures of /metrics, from the server's
live sketches (engine.serving.live) compared by engine.drift, the same code `haj monitor` runs.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from engine.drift import DriftReport, compare
from engine.serving.live import RECENT_ROWS, LiveSketches
from engine.serving.model import ModelHolder
from engine.serving.monitoring import Monitor

METRICS_CACHE_SECONDS = 5.0


class NoLiveDrift(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class LiveDrift:
    """The server's drift reports over windows of its traffic."""

    def __init__(
        self,
        live: LiveSketches | None,
        holder: ModelHolder,
        monitor: Monitor,
        settings: dict[str, Any],
    ) -> None:
        self.live = live
        self.holder = holder
        self.monitor = monitor
        self.settings = settings
        self._cache: tuple[float, str | None, DriftReport | None] = (0.0, None, None)
        self._cache_lock = threading.Lock()

    def _sketches(self) -> LiveSketches:
        if self.live is None:
            raise NoLiveDrift(404, "live drift is off ([monitoring] live = false)")
        model = self.holder.current
        if model is None:
            raise NoLiveDrift(503, self.holder.error or "the model is loading")
        if model.profile is None:
            raise NoLiveDrift(
                409,
                f"run {model.run_id} was trained before haj kept a reference profile: "
                "train again to monitor its inputs",
            )
        if self.live.run_id != model.run_id:
            self.live.serve(model.run_id, model.profile)
        return self.live

    def report(self, seconds: float | None, last: int | None) -> tuple[DriftReport, Any]:
        live = self._sketches()
        window = live.window(seconds, last)
        assert window is not None and live.profile is not None
        report = compare(
            live.profile,
            window,
            drift_share=float(self.settings.get("drift_share", 0.5)),
            min_rows=int(self.settings.get("min_rows", 100)),
            method=str(self.settings.get("method", "auto")),
        )
        return report, window

    def cached(self) -> DriftReport | None:
        """The since-start report for /metrics, recomputed at most every few seconds."""
        try:
            live = self._sketches()
        except NoLiveDrift:
            return None
        with self._cache_lock:
            at, run_id, report = self._cache
            if run_id != live.run_id or time.monotonic() - at > METRICS_CACHE_SECONDS:
                report = self.report(None, None)[0]
                self._cache = (time.monotonic(), live.run_id, report)
            return report

    def describe(self, seconds: float | None, last: int | None) -> dict[str, Any]:
        report, window = self.report(seconds, last)
        live = self.live
        assert live is not None
        if last is not None:
            text = f"last {min(last, RECENT_ROWS)} rows"
        elif seconds is not None:
            text = f"last {seconds:g} s (to the minute)"
        else:
            text = "since the model was served"
        return {
            "run_id": live.run_id,
            "window": text,
            "served_since": datetime.fromtimestamp(live.since)
            .astimezone()
            .isoformat(timespec="seconds"),
            "verdict": report.verdict(),
            **report.to_dict(),
            "_sketch": window,
        }

    def summary(self) -> dict[str, Any]:
        live = self._sketches()
        window = live.window()
        assert window is not None and live.profile is not None
        features = []
        for ref, sketch in zip(live.profile["features"], window.features, strict=True):
            features.append(
                {
                    "name": ref["name"],
                    "kind": ref["kind"],
                    "live": _stats(ref, sketch),
                    "reference": _reference_stats(ref),
                }
            )
        return {"run_id": live.run_id, "rows": window.rows, "features": features}

    def diagnostics(self) -> dict[str, Any]:
        model = self.holder.current
        out: dict[str, Any] = {
            "run_id": model.run_id if model else None,
            "predictions": self.monitor.rows,
            "latency": self.monitor.latency(),
            "trained_at": model.trained_at if model else None,
            "model_age_seconds": _age(model.trained_at) if model else None,
            "rows": 0,
            "missing": {},
            "missing_share": {},
            "unseen": {},
            "out_of_range": {},
            "refused": {},
        }
        try:
            live = self._sketches()
        except NoLiveDrift as exc:
            out["note"] = exc.detail
            return out
        window = live.window()
        assert window is not None and live.profile is not None
        out["rows"] = window.rows
        out["refused"] = dict(window.refused)
        for ref, sketch in zip(live.profile["features"], window.features, strict=True):
            name = ref["name"]
            out["missing"][name] = sketch.missing
            out["missing_share"][name] = sketch.missing / sketch.rows if sketch.rows else 0.0
            if sketch.outside:
                kind = "out_of_range" if ref["kind"] == "numeric" else "unseen"
                out[kind][name] = sketch.outside
        return out


def _age(trained_at: str | None) -> float | None:
    if not trained_at:
        return None
    try:
        return round(time.time() - datetime.fromisoformat(trained_at).timestamp(), 1)
    except ValueError:
        return None


def _stats(ref: dict[str, Any], sketch: Any) -> dict[str, Any]:
    present = int(sketch.counts.sum())
    out: dict[str, Any] = {
        "rows": sketch.rows,
        "missing_share": sketch.missing / sketch.rows if sketch.rows else 0.0,
    }
    if ref["kind"] == "numeric":
        out.update(
            mean=float(sketch.sums.sum() / present) if present else None,
            min=sketch.minimum,
            max=sketch.maximum,
            out_of_range=sketch.outside,
        )
    else:
        out.update(top=_top(ref["categories"], sketch.counts), unseen=sketch.outside)
    return out


def _reference_stats(ref: dict[str, Any]) -> dict[str, Any]:
    counts = ref["counts"]
    rows = counts["rows"]
    out: dict[str, Any] = {
        "rows": rows,
        "missing_share": counts["missing"] / rows if rows else 0.0,
    }
    if ref["kind"] == "numeric":
        out.update(mean=ref["mean"], std=ref["std"], min=ref["min"], max=ref["max"])
    else:
        import numpy as np

        out.update(top=_top(ref["categories"], np.asarray(counts["counts"])))
    return out


def _top(categories: list[str], counts: Any, most: int = 10) -> list[list[Any]]:
    total = int(counts.sum())
    names = [*categories, "(other)"]
    order = sorted(range(len(counts)), key=lambda i: -int(counts[i]))[:most]
    return [[names[i], int(counts[i]) / total if total else 0.0] for i in order if counts[i]]


def _window_args(since: str | None, last: int | None) -> tuple[float | None, int | None]:
    from engine.errors import UsageError
    from engine.monitor import parse_since

    seconds = None
    if since is not None:
        try:
            seconds = float(since)
        except ValueError:
            try:
                seconds = parse_since(since)
            except UsageError as exc:
                raise NoLiveDrift(422, str(exc)) from None
        if seconds <= 0:
            raise NoLiveDrift(422, "since must be above 0 seconds")
    if last is not None and last < 1:
        raise NoLiveDrift(422, "last must be 1 or more")
    if seconds is not None and last is not None:
        raise NoLiveDrift(422, "give since or last, not both")
    return seconds, last


def json_response(body: Any, status: int = 200) -> Any:
    import orjson
    from fastapi.responses import Response

    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def add_drift_routes(app: Any, drift: LiveDrift) -> None:
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    def refused(exc: NoLiveDrift) -> Response:
        return json_response({"detail": exc.detail}, exc.status)

    @app.get(
        "/drift",
        summary="Data drift of live inputs against the training data "
        "(since: seconds or 24h / 30m; last: rows)",
        response_model=None,
    )
    async def drift_report(
        since: str | None = None, last: int | None = None, sketch: bool = False
    ) -> Response:
        try:
            seconds, rows = _window_args(since, last)
            body = await run_in_threadpool(drift.describe, seconds, rows)
        except NoLiveDrift as exc:
            return refused(exc)
        window = body.pop("_sketch")
        if sketch:
            body["sketch"] = window.to_dict()
        return json_response(body)

    @app.get(
        "/summary", summary="Live input statistics beside the training data's", response_model=None
    )
    async def summary() -> Response:
        try:
            return json_response(await run_in_threadpool(drift.summary))
        except NoLiveDrift as exc:
            return refused(exc)

    @app.get(
        "/diagnostics",
        summary="Missing values, unseen categories, out-of-range and refused values, latency, "
        "model age",
        response_model=None,
    )
    async def diagnostics() -> Response:
        return json_response(await run_in_threadpool(drift.diagnostics))


class DriftCollector:
    """haj_feature_drift{feature}, haj_dataset_drift, haj_input_missing_total{feature} and
    haj_unseen_category_total{feature}, at scrape time."""

    def __init__(self, drift: LiveDrift) -> None:
        self.drift = drift

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        report = self.drift.cached()
        live = self.drift.live
        if report is None or live is None:
            return
        window = live.window()
        if window is None or live.profile is None:
            return
        feature = GaugeMetricFamily(
            "haj_feature_drift",
            "Drift statistic per feature since the model was served (test in the test label: "
            "a p-value for ks/chi2, a distance otherwise)",
            labels=["feature", "test"],
        )
        for column in report.features:
            if column.statistic is not None:
                value = column.p_value if column.p_value is not None else column.statistic
                feature.add_metric([column.name, column.test], float(value))
        yield feature
        if not report.too_small:
            yield GaugeMetricFamily(
                "haj_dataset_drift",
                "1 when at least drift_share of the features drifted since the model was served",
                value=1.0 if report.dataset_drift else 0.0,
            )
        missing = CounterMetricFamily(
            "haj_input_missing", "Missing input values by feature", labels=["feature"]
        )
        unseen = CounterMetricFamily(
            "haj_unseen_category", "Categories training never saw, by feature", labels=["feature"]
        )
        for ref, sketch in zip(live.profile["features"], window.features, strict=True):
            missing.add_metric([ref["name"]], sketch.missing)
            if ref["kind"] != "numeric":
                unseen.add_metric([ref["name"]], sketch.outside)
        yield missing
        yield unseen
