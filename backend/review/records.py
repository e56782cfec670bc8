"""Plain frozen records of the review queues (what ``backend.store.review_store`` takes and returns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class NewItem:
    """What a queue item is created from."""

    project_id: int
    queue: str
    control: str
    value_key: str
    text: str
    source: str
    predicted: Sequence[str] = ()
    human: Sequence[str] = ()
    score: float | None = None
    margin: float | None = None
    model_version: str = ""
    reason: str = ""
    reporter: str = ""
    task_id: int | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class ReviewItemRecord:
    """A review item as stored."""

    id: int
    project_id: int
    queue: str
    state: str
    control: str
    value_key: str
    text: str
    predicted: tuple[str, ...]
    human: tuple[str, ...]
    score: float | None
    margin: float | None
    model_version: str
    reason: str
    source: str
    reporter: str
    task_id: int | None
    external_id: str | None
    ls_project_id: int | None
    ls_task_id: int | None
    verdict: tuple[str, ...] | None
    moderator: str
    created_at: float
    resolved_at: float | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view (label tuples as lists, times as Unix seconds)."""
        out = dict(self.__dict__)
        for name in ("predicted", "human", "verdict"):
            out[name] = list(out[name]) if out[name] is not None else None
        return out


@dataclass(frozen=True)
class ReviewProjectRecord:
    """A queue's Label Studio project."""

    ls_project_id: int
    project_id: int
    queue: str
    control: str
    webhook_url: str


@dataclass(frozen=True)
class ModeratorLabelRecord:
    """A moderator label as stored."""

    id: int
    project_id: int
    control: str
    value_key: str
    text: str
    task_id: int | None
    labels: tuple[str, ...]
    moderator: str
    review_item_id: int | None
