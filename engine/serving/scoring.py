"""POST /predict and POST /invocations as raw ASGI handlers.

Why raw ASGI: routing a request through FastAPI's router, exception middleware and Request/Response
objects costs more than scoring a linear model does. The front middleware (app.py) hands these two
paths straight to `Scorer.handle`, which reads the body, validates it into an array, scores it and
writes the JSON answer; every other path goes through FastAPI as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from engine.serving import domain, inputs
from engine.serving.inputs import InputError
from engine.serving.live import LiveSketches
from engine.serving.model import LoadedModel, ModelHolder
from engine.serving.monitoring import Monitor, PredictionLog

log = logging.getLogger("haj.serving")

PATHS = ("/predict", "/invocations")
_JSON = (b"content-type", b"application/json")


class Scorer:
    def __init__(
        self,
        holder: ModelHolder,
        monitor: Monitor,
        prediction_log: Callable[[], PredictionLog | None],
        limit: int,
        unknown_categories: str = "accept",
        live: LiveSketches | None = None,
    ) -> None:
        import orjson

        self.reject_unseen = unknown_categories == "reject"
        self.holder = holder
        self.monitor = monitor
        self.prediction_log = prediction_log
        self.limit = limit
        self.live = live
        self._dumps = orjson.dumps
        self._numpy = orjson.OPT_SERIALIZE_NUMPY

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        """Answer one scoring request; returns the status sent."""
        started = time.perf_counter()
        path = scope["path"]
        if scope["method"] != "POST":
            return await self.send_json(
                send, 405, {"detail": "Method Not Allowed: use POST"}, [(b"allow", b"POST")]
            )
        model = self.holder.current
        if model is None:
            detail = self.holder.error or "the model is loading"
            return await self.send_json(send, 503, {"status": "unavailable", "detail": detail})
        live = self.live
        if live is not None and live.run_id != model.run_id:
            live.serve(model.run_id, model.profile)  # a newly crowned champion: a new reference
        try:
            raw = await self.read_body(receive)
            if path == "/predict":
                rows = inputs.predict_records(inputs.parse_json(raw), model.input_name_set)
            elif b"csv" in _header(scope, b"content-type"):
                rows = inputs.csv_rows(raw, model.input_names, model.input_kinds)
            else:
                rows = inputs.invocation_rows(inputs.parse_json(raw))
            preds, proba, flags, X = await self.score(model, rows)
        except InputError as exc:
            if live is not None and exc.status == 422 and exc.field is not None:
                live.refuse(exc.field)
            extra = [(b"connection", b"close")] if exc.status == 413 else None
            return await self.send_json(send, exc.status, exc.body(), extra)
        except ClientGone:
            return 499
        ids = request_ids(_header(scope, b"x-request-id", lower=False), len(rows))
        if path == "/predict":
            body: dict[str, Any] = {
                "run_id": model.run_id,
                "model": model.model,
                "predictions": preds,
                "request_ids": ids,
            }
            if proba is not None:
                labels = model.labels
                body["classes"] = model.class_values  # the same values as the predictions
                body["probabilities"] = [dict(zip(labels, p, strict=True)) for p in proba.tolist()]
        else:
            body = {"predictions": preds}
        self.monitor.rows += len(rows)
        plog = self.prediction_log()
        if plog is not None:
            plog.append(
                path,
                model.run_id,
                model.input_names,
                rows,
                preds,
                proba,
                model.labels,
                time.perf_counter() - started,
                flags,
                ids,
                X if live is not None else None,
            )
        return await self.send_json(send, 200, body, [(b"x-request-id", ids[0].encode())])

    async def score(self, model: LoadedModel, rows: list[Any]) -> tuple[list[Any], Any, Any, Any]:
        """(predictions, probabilities or None, per-row flags of values training never saw
        or None, the model's input array)."""
        inline = model.scores_inline(len(rows))
        if inline or not model.takes_raw:
            X = model.matrix(rows)
        else:  # the user's processing may be slow: off the event loop, like scoring
            from starlette.concurrency import run_in_threadpool

            X = await run_in_threadpool(model.matrix, rows)
        flags = model.domain.check(X)
        if flags is not None:
            if self.reject_unseen:
                domain.refuse_unseen(flags)
            self.monitor.count_flags(flags)
        try:
            if inline:
                return (*model.predict(X), flags, X)
            from starlette.concurrency import run_in_threadpool

            return (*await run_in_threadpool(model.predict_in_thread, X), flags, X)
        except (ValueError, TypeError) as exc:
            message = f"the model rejected the input: {exc}".splitlines()[0][:300]
            raise InputError(message) from None

    async def read_body(self, receive: Any) -> bytes:
        """The whole body, refusing it (413) as soon as it passes the limit."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if len(body) > self.limit:
            await inputs.drain(receive, bool(message.get("more_body")))
            raise self.too_large()
        if not message.get("more_body"):
            return body
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await inputs.drain(receive, bool(message.get("more_body")))
                raise self.too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def too_large(self) -> InputError:
        return inputs.too_large(self.limit)

    async def send_json(
        self, send: Any, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> int:
        payload = self._dumps(body, option=self._numpy)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    _JSON,
                    (b"content-length", str(len(payload)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return status


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


def _header(scope: dict[str, Any], name: bytes, lower: bool = True) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value.lower() if lower else value
    return b""


MAX_REQUEST_ID = 128


def request_ids(header: bytes, rows: int) -> list[str]:
    """One id per row: the client's X-Request-Id (suffixed -0, -1... for several rows), else
    generated. They are answered and logged, so real outcomes can be joined to predictions
    later (`haj feedback`)."""
    import uuid

    given = header.decode("latin-1").strip()[:MAX_REQUEST_ID]
    if given and rows == 1:
        return [given]
    if given:
        return [f"{given}-{i}" for i in range(rows)]
    base = uuid.uuid4().hex
    return [base] if rows == 1 else [f"{base}-{i}" for i in range(rows)]
