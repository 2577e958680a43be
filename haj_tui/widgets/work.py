"""haj's background work: one decorator preset, and one place where every outcome ends up.

`haj_work(group=...)` runs a method in a thread worker (exclusive within its group; an error
never exits the app). When the method returns, `WorkFinished(result)` is posted to the widget
that started it: results are typed (the engine API's dataclasses, or a small dataclass of the
widget's own), so a handler dispatches with `match message.result`, never on a task's name.
When it raises, the app reports the error once (a HajError as a notification, a bug in the
error panel) and the widget receives the `failed` message given to the decorator (a subclass
of WorkFailed), so it can reset its buttons in a typed handler.

Textual posts `Worker.StateChanged` to the widget that started the worker only (it does not
bubble), so every widget that starts workers mixes in `ReportsWorkerErrors`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual import work
from textual.worker import Worker, WorkerState

from haj_tui.messages import WorkFailed, WorkFinished

if TYPE_CHECKING:
    from haj_tui.app import HajApp

F = TypeVar("F", bound=Callable[..., Any])


def haj_work(*, group: str, failed: type[WorkFailed] = WorkFailed) -> Callable[[F], F]:
    """Run the decorated method in a thread worker of `group`; on an exception post
    `failed(error)` to the widget (the app reports the error itself)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                self.post_message(failed(error))  # post_message is thread-safe
                raise

        decorated = work(thread=True, exclusive=True, exit_on_error=False, group=group)(run)
        return cast(F, decorated)

    return decorate


class ReportsWorkerErrors:
    """Mixin for a Widget/Screen: failed workers are reported by the app, never crash it, and
    a finished worker's result comes back as WorkFinished."""

    def _on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker: Worker[object] = event.worker
        widget = cast("Any", self)
        if event.state == WorkerState.ERROR and worker.error is not None:
            cast("HajApp", widget.app).report_error(worker.error)
        elif event.state == WorkerState.SUCCESS:
            widget.post_message(WorkFinished(worker.result))
