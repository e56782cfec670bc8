"""Plain frozen records the store returns (never ORM objects, so no session leaks out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProjectRecord:
    """A project: LS id, its config and where its Label Studio lives."""

    id: int
    label_config: str
    config_hash: str
    ls_url: str = ""
    ls_token: str = ""
    current_version: str | None = None
    pushed_tasks: tuple[int, ...] = ()
    pushed_version: str | None = None
    pushed_strategy: str | None = None
    protected_tasks: Mapping[int, float] = field(default_factory=dict)
    synced_at: str = ""
    strategy: str = ""
    ls_failing_since: float | None = None
    detached_at: float | None = None
    detached_reason: str = ""

    @property
    def detached(self) -> bool:
        """Label Studio no longer has this project: no catch-ups, pushes or scans until it calls again."""
        return self.detached_at is not None


@dataclass(frozen=True)
class AnnotationRecord:
    """One LS annotation as received."""

    id: int
    project_id: int
    task_id: int
    choices: dict[str, list[str]]
    author: str = ""
    was_cancelled: bool = False
    deleted: bool = False
    ls_created_at: str = ""
    ls_updated_at: str = ""
    suggested: dict[str, Any] | None = None
    """What the annotator was shown: ``{"model_version", "choices": {control: [...]}}`` (set when stored)."""
    accepted: bool | None = None


@dataclass(frozen=True)
class Example:
    """A training example: task data and its labels per control (latest usable annotation wins)."""

    task_id: int
    data: dict[str, Any]
    choices: dict[str, list[str]]


@dataclass(frozen=True)
class ModelVersionRecord:
    """A model version and what it was trained on."""

    name: str
    project_id: int
    tier: str
    status: str = "ready"
    n_train: int = 0
    label_counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    artifact_path: str = ""
    config_hash: str = ""
    error: str = ""
    created_at: float | None = None
    """Unix seconds."""


# --- moderation review ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NewItem:
    """What a review queue item is created from."""

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
