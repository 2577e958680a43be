"""Messages shared by screens and tabs.

Workers run in threads and talk to the UI only by posting these (post_message is thread-safe).
High-rate ones (progress) merge in the queue with `can_replace`, as Toolong does, so a fast
producer never floods the UI: only the latest progress of a task is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from engine import events

if TYPE_CHECKING:
    from engine.api import ProjectAPI


class EngineEvent(Message):
    """One engine event (engine.events.*) relayed from a worker thread.

    `task` names the work it belongs to ("train", "install", ...) so one widget can tell
    two streams apart.
    """

    def __init__(self, event: events.Event, task: str = "") -> None:
        super().__init__()
        self.event = event
        self.task = task

    def can_replace(self, message: Message) -> bool:
        # A newer progress report of the same task makes an older, still queued one useless.
        return (
            isinstance(message, EngineEvent)
            and message.task == self.task
            and isinstance(message.event, events.Progress)
            and isinstance(self.event, events.Progress)
        )


class WorkFinished(Message):
    """Background work ended well; `result` is what it returned (typed: dispatch with match)."""

    def __init__(self, result: object = None) -> None:
        super().__init__()
        self.result = result


class WorkFailed(Message):
    """Background work failed; the app has already shown the error. Widgets subclass it, one
    class per kind of work that needs resetting (see haj_tui.widgets.work.haj_work)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class ProjectChanged(Message):
    """The open project changed on disk (config saved, renamed): the screen and tabs follow."""

    def __init__(self, project: ProjectAPI, renamed_from: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.renamed_from = renamed_from
