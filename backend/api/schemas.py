"""The bodies of tagloop's answers and of its own API's requests, declared once.

Label Studio's request bodies are declared in ``backend.labelstudio.payloads`` (the core reads them), the review
plug-in's in ``backend.review``. Every answer model allows fields it does not declare: they document what a client
can rely on, and ``backend.api.http.answer`` checks each answer against its model before it is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.labelstudio.payloads import Loose


class ErrorAnswer(BaseModel):
    """Every error: a code and what was seen and what is allowed (never a traceback)."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="a short code, e.g. 'bad_request', 'unknown_label', 'not_found'")
    reason: str = Field(description="what was seen and what is allowed")


# --- the Label Studio protocol --------------------------------------------------------------------------------------
class Health(Loose):
    """``GET /health``: tagloop is up (no model work)."""

    status: Literal["UP"]
    model_class: str


class SetupAnswer(Loose):
    """``POST /setup``: the version that will serve the project, its predicted controls and what is ignored."""

    model_version: str
    controls: list[str] = Field(description="the <Choices> names tagloop predicts")
    ignored: list[str] = Field(description="the parts of the config tagloop does not predict, and why")


class ChoiceValue(Loose):
    choices: list[str]


class ChoiceResult(Loose):
    """One control's predicted choices in Label Studio's result format."""

    from_name: str
    to_name: str
    type: Literal["choices"]
    value: ChoiceValue
    score: float = Field(description="the control's confidence in [0, 1]")
    meta: dict[str, Any] = Field(description="'probabilities' per label, and 'truncated' for a text cut short")


class Prediction(Loose):
    """The prediction of one task."""

    result: list[ChoiceResult]
    score: float = Field(description="the model's certainty as the project's strategy measures it, in [0, 1]")
    model_version: str


class PredictAnswer(Loose):
    """``POST /predict``: one prediction per task, in request order."""

    results: list[Prediction]
    model_version: str


class EventAnswer(Loose):
    """``POST /webhook``: what was done with the event (``stored``, ``deleted``, ``queued``, ``ignored`` …)."""

    status: str


# --- tagloop's API -------------------------------------------------------------------------------------------------
QUEUE_STRATEGY = "the strategy ranking the queue now: the warm-up's until TAGLOOP_WARMUP_LABELS labels"


class ProjectStatus(Loose):
    """``GET /api/projects/<id>/status``: labels, served version and metrics, versions, jobs, last error."""

    project: int
    model_version: str
    labels_seen: int
    labels_usable: int
    strategy: str
    queue_strategy: str = Field(description=QUEUE_STRATEGY)
    versions: list[dict[str, Any]]
    jobs: list[dict[str, Any]] = Field(description="queued and running jobs with their progress")
    last_error: str | None


class TrainQuery(Loose):
    """``POST /api/projects/<id>/train`` query."""

    tier: str | None = Field(None, description="fast, setfit or transformer (default: TAGLOOP_SLOW_TIER)")


class JobQueued(Loose):
    """A training was queued (or one already was)."""

    status: Literal["queued", "already_queued"]
    tier: str


class RollbackBody(Loose):
    """``POST /api/projects/<id>/rollback``."""

    version: str = Field(min_length=1, description="the name of a kept version")


class RollbackAnswer(Loose):
    project: int
    model_version: str
    previous: str | None = Field(description="the version served before")


class QueueAnswer(Loose):
    """``GET /api/projects/<id>/queue``."""

    project: int
    model_version: str
    strategy: str
    queue_strategy: str = Field(description=QUEUE_STRATEGY)
    tasks: list[int] = Field(description="task ids pushed to Label Studio for the served version, in queue order")
    protected: list[int] = Field(description="tasks an annotator may have open, whose predictions pushes keep")


class StrategyBody(Loose):
    """``PUT /api/projects/<id>/strategy``."""

    strategy: str | None = Field(None, description="a strategy name or null (the default)")


class StrategyAnswer(Loose):
    project: int
    strategy: str = Field(description="the strategy in force")
    project_setting: str | None = Field(description="the project's own setting (null: the default)")
    available: list[str]


class OpenApiDocument(Loose):
    """``GET /openapi.json``."""

    openapi: str
    paths: dict[str, Any]
