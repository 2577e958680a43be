"""One place where every worker failure ends up.

Textual posts `Worker.StateChanged` to the widget that started the worker only (it does not
bubble), so every widget that starts workers mixes this in. Textual calls the handler of each
class in the MRO, so a widget may still define its own `on_worker_state_changed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.worker import Worker, WorkerState

from haj_tui.messages import WorkFailed, WorkFinished

if TYPE_CHECKING:
    from haj_tui.app import HajApp


class ReportsWorkerErrors:
    """Mixin for a Widget/Screen: failed workers are reported by the app, never crash it.

    On success or failure a WorkFinished / WorkFailed message (task = the worker's name) is
    posted to the widget itself, so it can re-enable buttons etc. in a normal handler.
    """

    def _on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker: Worker[object] = event.worker
        widget = cast("object", self)
        if event.state == WorkerState.ERROR and worker.error is not None:
            app = cast("HajApp", widget.app)  # type: ignore[attr-defined]
            app.report_error(worker.error)
            widget.post_message(WorkFailed(worker.name, worker.error))  # type: ignore[attr-defined]
        elif event.state == WorkerState.SUCCESS:
            widget.post_message(WorkFinished(worker.name, worker.result))  # type: ignore[attr-defined]
