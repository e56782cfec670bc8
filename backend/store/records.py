"""Plain frozen records the store returns (never ORM objects, so no session leaks out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    protected_tasks: Mapping[int, float] = field(default_factory=dict)
    synced_at: str = ""
    strategy: str = ""


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
    created_at: datetime | None = None
