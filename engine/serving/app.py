"""The FastAPI app around a project's champion: `create_app(project_dir)`.

Why the scoring path bypasses FastAPI: a single-row prediction should cost little more than the
model itself. A front ASGI middleware counts and times every request, then hands POST /predict and
/invocations to engine.serving.scoring (orjson in, hand validation straight into a numpy array, one
model call, orjson out) and everything else to FastAPI. FastAPI still provides the other endpoints
and /docs: the OpenAPI schema of /predict is built from the loaded model's real feature names, with
the training medians (the imputer's statistics) as the example values.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from pathlib import Path
from typing import Any

from engine.serving import inputs
from engine.serving.drift_routes import DriftCollector, LiveDrift, add_drift_routes
from engine.serving.drift_routes import json_response as _json_response
from engine.serving.live import LiveSketches
from engine.serving.model import LoadedModel, ModelHolder
from engine.serving.monitoring import Collector, Monitor, PredictionLog
from engine.serving.scoring import PATHS as SCORING_PATHS
from engine.serving.scoring import Scorer

log = logging.getLogger("haj.serving")

ENDPOINTS = (
    "/predict",
    "/invocations",
    "/ping",
    "/health",
    "/livez",
    "/readyz",
    "/metrics",
    "/predictions_count",
    "/latency",
    "/drift",
    "/summary",
    "/diagnostics",
    "/docs",
    "/openapi.json",
)


def serving_settings(project_dir: Path, section: str = "serving") -> dict[str, Any]:
    """[serving] (or another section) from config.toml when present (a container may ship
    without one)."""
    from engine.project import DEFAULTS, Project

    project = Project(Path(project_dir).name, Path(project_dir))
    if project.config_path.exists():
        return dict(project.read_config()[section])
    return dict(DEFAULTS[section])


def create_app(
    project_dir: Any,
    *,
    max_body_mb: float | None = None,
    poll_seconds: float = 0.5,
    prediction_log: Path | None = None,
) -> Any:
    """The app serving the champion of the project in `project_dir`.

    The model is loaded when the app starts (in a background thread, so /livez answers at once
    and /readyz, /health and /ping say 503 until it is ready); it is then watched and switched.
    """
    project_dir = Path(getattr(project_dir, "path", project_dir)).resolve()  # a Project or a path
    settings = serving_settings(project_dir)
    limit = int(float(max_body_mb or settings["max_body_mb"]) * 1024 * 1024)
    holder = ModelHolder(project_dir, poll_seconds=poll_seconds)
    monitor = Monitor()
    watching = serving_settings(project_dir, "monitoring")
    live = LiveSketches() if watching.get("live", True) else None
    plog_box: dict[str, PredictionLog] = {}  # the prediction log, opened when the app starts
    open_log = _prediction_log_opener(project_dir, settings, prediction_log, live)
    drift = LiveDrift(live, holder, monitor, watching)
    registry = _metrics_registry(monitor, holder, plog_box, drift)
    app = _new_app(project_dir, _lifespan(holder, plog_box, open_log, monitor))
    app.state.holder = holder
    app.state.monitor = monitor
    app.state.live = live
    _add_health_routes(app, holder, monitor)
    _add_monitoring_routes(app, registry, monitor)
    add_drift_routes(app, drift)
    _install_openapi(app, holder)
    scorer = Scorer(
        holder,
        monitor,
        lambda: plog_box.get("log"),
        limit,
        unknown_categories=str(settings.get("unknown_categories", "accept")),
        live=live,
    )
    app.add_middleware(FrontMiddleware, monitor=monitor, scorer=scorer, limit=limit)
    return app


def _prediction_log_opener(
    project_dir: Path, settings: dict[str, Any], prediction_log: Path | None, live: Any = None
) -> Any:
    """A function opening the prediction log. With several workers (uvicorn --workers), each
    writes its own predictions-<pid>.jsonl and all of them share one cap on disk."""
    workers = int(os.environ.get("HAJ_SERVING_WORKERS", "1") or 1)
    if prediction_log is None:
        name = "predictions.jsonl" if workers <= 1 else f"predictions-{os.getpid()}.jsonl"
        prediction_log = project_dir / "logs" / name
    log_files = int(settings["prediction_log_files"])
    log_bytes = int(float(settings["prediction_log_mb"]) * 1024 * 1024)
    shared_cap = log_bytes * (log_files + 1) * workers if workers > 1 else None
    path = prediction_log

    def open_log() -> PredictionLog:
        return PredictionLog(
            path, max_bytes=log_bytes, backups=log_files, shared_cap=shared_cap, sketches=live
        )

    return open_log


def _metrics_registry(
    monitor: Monitor, holder: ModelHolder, plog_box: dict[str, PredictionLog], drift: LiveDrift
) -> Any:
    """The Prometheus registry of /metrics: haj's request and model figures, plus the standard
    process, platform and GC collectors. Its own registry, not the global one, so several apps
    (tests, workers) never collide."""
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        PlatformCollector,
        ProcessCollector,
    )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        Collector(
            monitor,
            lambda: _metrics_info(holder.current),
            lambda: {
                "model_switches": ("Switches to a newly crowned champion", holder.switches),
                "prediction_log_dropped": (
                    "Prediction log entries dropped because the writer fell behind",
                    plog_box["log"].dropped if plog_box else 0,
                ),
            },
            lambda: {
                "model_switch_failing": (
                    "1 while the newly crowned champion cannot be loaded (the previous model "
                    "keeps serving: see switch_error in /health)",
                    1.0 if holder.last_switch_error else 0.0,
                ),
            },
        )
    )
    registry.register(DriftCollector(drift))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _lifespan(
    holder: ModelHolder, plog_box: dict[str, PredictionLog], open_log: Any, monitor: Monitor
) -> Any:
    """Start: open the prediction log and load the model (in the holder's thread); stop: stop
    watching the model and flush the log. In the lifespan, not at import, so each uvicorn
    worker does it in its own process."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        import sklearn

        # inputs are checked finite (or NaN = missing, imputed) before they reach the model
        sklearn.set_config(assume_finite=True)
        import asyncio

        plog_box["log"] = open_log()
        holder.start()

        async def sample_every_second() -> None:
            while True:
                monitor.sample()
                await asyncio.sleep(1.0)

        sampler = asyncio.get_running_loop().create_task(sample_every_second())
        try:
            yield
        finally:
            sampler.cancel()
            holder.stop()
            plog_box["log"].close()

    return lifespan


def _new_app(project_dir: Path, lifespan: Any) -> Any:
    """The FastAPI app itself, with /docs served from bundled assets when they are installed."""
    from fastapi import FastAPI

    options: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's OpenTelemetry hook checks its providers on every request: haj exports
        # Prometheus metrics instead
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    offline_docs = _swagger_assets()
    if offline_docs is not None:
        options["docs_url"] = None  # served below from the bundled assets, not a CDN
    app = FastAPI(
        title=f"haj: {project_dir.name}",
        description=f"Predictions from the champion model of the haj project {project_dir.name!r}.",
        version="1",
        lifespan=lifespan,
        **options,
    )
    if offline_docs is not None:
        _install_offline_docs(app, offline_docs)
    return app


def _add_health_routes(app: Any, holder: ModelHolder, monitor: Monitor) -> None:
    """/ping (SageMaker), /health, /livez and /readyz: 503 with the reason while no model is
    loaded (still loading, or it failed), so orchestrators route no traffic to it yet."""
    from fastapi.responses import Response

    def not_ready() -> Response:
        detail = holder.error or "the model is loading"
        return _json_response({"status": "unavailable", "detail": detail}, 503)

    @app.get("/ping", summary="SageMaker health check", response_model=None)
    async def ping() -> Response:
        if holder.current is None:
            return not_ready()
        return Response(b"", status_code=200)

    @app.get("/health", summary="Model and server state", response_model=None)
    async def health() -> Response:
        model = holder.current
        if model is None:
            return not_ready()
        return _json_response(
            {
                "status": "ok",
                **model.info(),
                "uptime_seconds": round(time.time() - monitor.started, 3),
                "started_at": monitor.started_iso,
                "model_switches": holder.switches,
                "switch_error": holder.last_switch_error,
                "pid": os.getpid(),
            }
        )

    @app.get("/livez", summary="Liveness: the process answers", response_model=None)
    async def livez() -> Response:
        return _json_response({"status": "alive"})

    @app.get("/readyz", summary="Readiness: a model is loaded", response_model=None)
    async def readyz() -> Response:
        if holder.current is None:
            return not_ready()
        return _json_response({"status": "ready", "run_id": holder.current.run_id})


def _add_monitoring_routes(app: Any, registry: Any, monitor: Monitor) -> None:
    """/metrics (Prometheus), /predictions_count and /latency (what the TUI shows live)."""
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/metrics", summary="Prometheus metrics", response_model=None)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/predictions_count",
        summary="Predictions and scoring requests since start",
        response_model=None,
    )
    async def predictions_count() -> Response:
        return _json_response(monitor.counts())

    @app.get("/latency", summary="Scoring latency percentiles in ms", response_model=None)
    async def latency() -> Response:
        return _json_response(monitor.latency())

    @app.get(
        "/history",
        summary="Requests and latency, one point a second over the last ten minutes",
        response_model=None,
    )
    async def history() -> Response:
        return _json_response(monitor.history_points())


def app_from_env() -> Any:
    """The factory uvicorn calls in each worker process (`--workers N`)."""
    project_dir = os.environ.get("HAJ_PROJECT_DIR")
    if not project_dir:
        raise RuntimeError("HAJ_PROJECT_DIR is not set")
    return create_app(Path(project_dir))


def _metrics_info(model: LoadedModel | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {**model.info(), "metrics": model.metrics}


class FrontMiddleware:
    """Counts every request by endpoint and status and times it; refuses over-limit bodies (413)
    before they are read; hands the scoring paths to the Scorer (raw ASGI) and everything else to
    FastAPI. A pure ASGI middleware: a few microseconds per request."""

    def __init__(self, app: Any, monitor: Monitor, scorer: Scorer, limit: int) -> None:
        self.app = app
        self.monitor = monitor
        self.scorer = scorer
        self.limit = limit
        self.known = frozenset(ENDPOINTS)
        self.scoring = frozenset(SCORING_PATHS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in self.known else "other"
        monitor = self.monitor
        status = 500
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await inputs.drain(receive)
                    await _send_413(send, self.limit)
                    monitor.observe(endpoint, 413, time.perf_counter() - started)
                    return
                break
        if path in self.scoring:
            monitor.in_progress += 1
            try:
                status = await self.scorer.handle(scope, receive, send)
            except Exception:
                log.exception("scoring failed")
                status = await self.scorer.send_json(send, 500, {"detail": "internal error"})
            finally:
                monitor.in_progress -= 1
                monitor.observe(endpoint, status, time.perf_counter() - started)
            return

        async def send_counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        monitor.in_progress += 1
        try:
            await self.app(scope, receive, send_counted)
        finally:
            monitor.in_progress -= 1
            monitor.observe(endpoint, status, time.perf_counter() - started)


async def _send_413(send: Any, limit: int) -> None:
    import orjson

    body = orjson.dumps(inputs.too_large(limit).body())
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---- /docs without the internet ------------------------------------------------------------------
DOCS_ASSETS = "/docs/assets"


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the swagger-ui-bundle package: FastAPI's default /docs loads them
    from a CDN, which leaves the page blank offline and in air-gapped containers."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _install_offline_docs(app: Any, assets: Path) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


# ---- OpenAPI with the real feature names ---------------------------------------------------------
def _install_openapi(app: Any, holder: ModelHolder) -> None:
    from fastapi.openapi.utils import get_openapi

    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        model = holder.current
        key = model.run_id if model else None
        if cache.get("key") == key and "schema" in cache:
            return cache["schema"]
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if model is not None:
            _describe_inputs(schema, model)
        cache.update(key=key, schema=schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_inputs(schema: dict[str, Any], model: LoadedModel) -> None:
    example = example_record(model)
    categorical = {
        "type": ["string", "number", "boolean", "null"],
        "description": "a category: numbers and booleans are read as their text; "
        'null or "" is a missing value',
    }
    properties = {
        name: {"type": ["number", "null"]} if kind == "numeric" else categorical
        for name, kind in zip(model.input_names, model.input_kinds, strict=True)
    }
    record = {
        "type": "object",
        "properties": properties,
        "required": model.required_inputs,
        "additionalProperties": False,
    }
    predict_schema = {
        "oneOf": [
            record,
            {
                "type": "object",
                "properties": {
                    "records": {"type": "array", "items": record, "maxItems": inputs.MAX_RECORDS}
                },
                "required": ["records"],
            },
        ]
    }
    paths = schema.setdefault("paths", {})
    error = {
        "description": "A client error: 400 malformed JSON, 413 body too large, 422 a missing, "
        "unknown or wrongly typed field (named in `field`)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
                }
            }
        },
    }
    outputs = {"type": "array", "items": {}}
    paths["/predict"] = _predict_operation(predict_schema, example, error, outputs)
    paths["/invocations"] = _invocations_operation(model, example, error, outputs)


def _predict_operation(
    predict_schema: dict[str, Any], example: dict[str, Any], error: dict[str, Any], outputs: Any
) -> dict[str, Any]:
    """POST /predict in OpenAPI: haj's own contract, with real feature names and examples."""
    return {
        "post": {
            "summary": "Predict one record or a batch",
            "description": 'One record `{feature: value, ...}` or `{"records": [...]}` (up to '
            f"{inputs.MAX_RECORDS:,}). Fields are the data's own columns, as retriever.py "
            "returns them (the model applies the processing it was trained with), or the "
            "processed features for a model whose processor.py cannot run per request; null "
            "is a missing value (imputed). Answers the predictions, for classifiers the class "
            "probabilities by label, and the model's run id.",
            "operationId": "predict",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": predict_schema,
                        "examples": {
                            "one record": {"value": example},
                            "a batch": {"value": {"records": [example, example]}},
                        },
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Predictions",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "run_id": {"type": "string"},
                                    "model": {"type": "string"},
                                    "predictions": outputs,
                                    "classes": {"type": "array", "items": {}},
                                    "probabilities": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        }
                    },
                },
                "400": error,
                "413": error,
                "422": error,
                "503": {"description": "No model is loaded yet"},
            },
        }
    }


def _invocations_operation(
    model: LoadedModel, example: dict[str, Any], error: dict[str, Any], outputs: Any
) -> dict[str, Any]:
    """POST /invocations in OpenAPI: the MLflow / SageMaker scoring contract."""
    return {
        "post": {
            "summary": "MLflow / SageMaker scoring",
            "description": "The scoring contract of `mlflow models serve` and SageMaker: JSON "
            "with one of dataframe_split, dataframe_records, instances, inputs; or a CSV body "
            'with a header (Content-Type: text/csv). Answers {"predictions": [...]}.',
            "operationId": "invocations",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "object"},
                        "examples": {
                            "dataframe_split": {
                                "value": {
                                    "dataframe_split": {
                                        "columns": list(example),
                                        "data": [list(example.values())],
                                    }
                                }
                            },
                            "dataframe_records": {"value": {"dataframe_records": [example]}},
                            "instances": {"value": {"instances": [example]}},
                        },
                    },
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": {
                    "description": "Predictions",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"predictions": outputs},
                            }
                        }
                    },
                },
                "400": error,
                "413": error,
                "422": error,
            },
        }
    }


def _imputer_statistics(pipeline: Any) -> dict[int, Any]:
    """Column index -> the value haj's imputer fills in (training median or most frequent
    category), read from the fitted preprocessing step of haj's pipeline (engine.features).
    Empty when the pipeline is not shaped like that (a bundle from another haj version): the
    example then falls back to 0 and "". Only those shape mismatches are caught."""
    values: dict[int, Any] = {}
    try:
        prep = pipeline.steps[0][1]
        if hasattr(prep, "transformers_"):
            for _name, part, columns in prep.transformers_:
                stats = part.named_steps["impute"].statistics_
                for column, value in zip(columns, stats, strict=False):
                    values[int(column)] = value
        else:
            for column, value in enumerate(prep.named_steps["impute"].statistics_):
                values[column] = value
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return {}
    return values


def example_record(model: LoadedModel) -> dict[str, Any]:
    """A real row of the training data in its own shape when the model takes raw rows; else a
    plausible record of the processed features: each one's training median (or most frequent
    category)."""
    raw = model.example()
    if raw is not None:
        return raw
    values = _imputer_statistics(model.pipeline)
    record = {}
    for i, feature in enumerate(model.features):
        value = values.get(i)
        if feature["kind"] == "numeric":
            try:
                record[feature["name"]] = round(float(value), 4) if value is not None else 0.0
            except (TypeError, ValueError):
                record[feature["name"]] = 0.0
        else:
            record[feature["name"]] = str(value) if value is not None else ""
    return record
