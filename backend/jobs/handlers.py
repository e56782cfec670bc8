"""The registry of job handlers: each feature registers the kinds it owns (training: fast/setfit/transformer,
Label Studio: push/catchup, the review plug-in: review). A handler is a plain function of the services and the
job's context; it returns the job's result as JSON-ready data, and a failure is an exception (retried)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.jobs.kinds import JobKind
from backend.jobs.records import JobRecord

if TYPE_CHECKING:
    from backend.services import Services

Progress = Callable[[float, str], None]
Pause = Callable[[], float]


def no_progress(fraction: float, message: str) -> None:
    """The default progress sink."""


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides the services: the job, a progress sink and the pause points of a training."""

    job: JobRecord
    progress: Progress = no_progress
    pause: Pause | None = None
    """Called throughout a slow training (``backend.jobs.yielding``): requests being served come first."""


Handler = Callable[["Services", JobContext], dict[str, Any]]


class JobHandlers:
    """Kind → handler, filled by the features when the services are built."""

    def __init__(self) -> None:
        self._handlers: dict[JobKind, Handler] = {}

    def register(self, kind: JobKind, handler: Handler) -> None:
        """Make ``handler`` run the jobs of ``kind`` (a second registration of a kind is an error)."""
        if kind in self._handlers:
            raise ValueError(f"job kind {kind.value!r} already has a handler: {self._handlers[kind].__qualname__}")
        self._handlers[kind] = handler

    def get(self, kind: str) -> Handler:
        """The handler of ``kind``; ``LookupError`` naming the registered kinds."""
        for registered, handler in self._handlers.items():
            if registered.value == kind:
                return handler
        raise LookupError(f"no handler for job kind {kind!r}; registered: {sorted(k.value for k in self._handlers)}")

    def __contains__(self, kind: object) -> bool:
        return any(k.value == kind for k in self._handlers)
