"""``JobRecord``: a job as stored (never an ORM row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobRecord:
    """A job and its life: queued → running → done | failed (retried with backoff). Times are Unix seconds."""

    id: int
    project_id: int
    kind: str
    state: str
    reason: str
    attempts: int
    max_attempts: int
    run_after: float
    progress: float
    message: str
    error: str
    worker: str
    heartbeat_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: dict[str, Any] = field(default_factory=dict)
    """What the job produced, as data (e.g. ``{"version": ..., "status": "ready"}``, ``{"pushed": 200}``)."""

    @property
    def tier(self) -> str:
        """The kind, under the name the status document has always used."""
        return self.kind

    @property
    def version(self) -> str:
        """The model version a training job produced ("" otherwise)."""
        return str(self.result.get("version", ""))

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view (times as Unix seconds); ``tier`` and ``version`` kept for readers of earlier releases."""
        out = dict(self.__dict__)
        out["tier"], out["version"] = self.kind, self.version
        return out
