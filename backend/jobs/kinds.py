"""Job kinds, and the lane each runs in.

A project runs at most one job per lane at a time: the *fast* lane (fast-tier heads, pushes to Label Studio,
catch-ups, moderation review) keeps the annotators' suggestions and queue fresh while the *slow* lane (SetFit or
transformer fine-tuning, minutes) trains, so a slow training never holds up the next label's version.
"""

from __future__ import annotations

from enum import StrEnum

from backend.errors import UnprocessableRequest


class JobKind(StrEnum):
    """What a job does."""

    FAST = "fast"
    """Refit the served heads on cached embeddings (about a second)."""
    SETFIT = "setfit"
    """SetFit contrastive fine-tuning of the body, then heads (the default slow tier)."""
    TRANSFORMER = "transformer"
    """Full fine-tuning of a transformer checkpoint (the other slow tier)."""
    PUSH = "push"
    """Push the served version's ranked queue head to Label Studio."""
    CATCHUP = "catchup"
    """Read annotations Label Studio's webhooks missed back from its API."""
    REVIEW = "review"
    """Moderation review: scans, scores of reported items, review projects in Label Studio."""


class Lane(StrEnum):
    """Which jobs may run side by side: one job per (project, lane)."""

    FAST = "fast"
    SLOW = "slow"


TRAINING_KINDS = (JobKind.FAST, JobKind.SETFIT, JobKind.TRANSFORMER)
SLOW_KINDS = frozenset({JobKind.SETFIT, JobKind.TRANSFORMER})
PRIORITY = (JobKind.FAST, JobKind.PUSH, JobKind.CATCHUP, JobKind.REVIEW, JobKind.SETFIT, JobKind.TRANSFORMER)
"""Claim order within a lane: a label's new version first, then getting it in front of annotators."""


def lane_of(kind: str) -> Lane:
    """The lane a kind runs in."""
    return Lane.SLOW if kind in SLOW_KINDS else Lane.FAST


def kinds_of(lane: Lane) -> tuple[JobKind, ...]:
    """The kinds of one lane, in claim order."""
    return tuple(k for k in PRIORITY if lane_of(k) == lane)


def parse_kind(value: str, allowed: tuple[JobKind, ...] = tuple(JobKind)) -> JobKind:
    """``value`` as a ``JobKind`` among ``allowed``; ``UnprocessableRequest`` naming what is allowed otherwise."""
    if value not in {k.value for k in allowed}:
        raise UnprocessableRequest(f"job kind: got {value!r}, expected one of {[k.value for k in allowed]}")
    return JobKind(value)
