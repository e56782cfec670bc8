"""Rank a project's unlabeled pool with its query strategy (the queue Label Studio will serve), and the certainty
Label Studio shows for each prediction (``strategies.certainty``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backend.config import Settings
from backend.labelstudio.label_config import ControlSpec, LabelSpec
from backend.store.records import ProjectRecord
from strategies import Selection, StrategyInfo, describe, row_certainty, run_strategy

Embed = Callable[[Sequence[str]], np.ndarray]


def strategy_name(settings: Settings, project: ProjectRecord, spec: LabelSpec) -> str:
    """The project's strategy, else the settings' default for the primary control's kind."""
    if project.strategy:
        return project.strategy
    return settings.multi_label_strategy if primary(spec).multi_label else settings.strategy


def queue_strategy(settings: Settings, project: ProjectRecord, spec: LabelSpec, *, n_labeled: int) -> str:
    """The strategy that ranks the queue now: the warm-up strategy until ``warmup_labels`` labels, then the
    project's (``strategy_name``)."""
    if n_labeled < settings.warmup_labels:
        return settings.warmup_strategy
    return strategy_name(settings, project, spec)


def primary(spec: LabelSpec) -> ControlSpec:
    """The control the queue is ranked on: the first ``<Choices>``."""
    return spec.controls[0]


@dataclass(frozen=True)
class RankInput:
    """A pool to rank: probabilities of the primary control and (for diversity) embeddings."""

    proba: np.ndarray
    """(n_pool, n_labels), rows are pool positions."""
    pool_texts: list[str]
    labeled_texts: list[str]
    label_cardinality: float | None = None


def rank(name: str, data: RankInput, k: int, embed: Embed, *, seed: int, max_pool: int | None = None) -> Selection:
    """The top ``k`` pool positions in the strategy's order (most informative first); on a pool larger than
    ``max_pool``, among a random sample of that many (only those are embedded)."""
    info = describe(name)
    labeled = embed(data.labeled_texts) if info.needs_embeddings and data.labeled_texts else None
    return run_strategy(
        info,
        data.proba,
        min(k, len(data.proba)),
        rng=np.random.default_rng(seed),
        embeddings=lambda rows: embed([data.pool_texts[int(i)] for i in rows]),
        labeled_embeddings=labeled,
        label_cardinality=data.label_cardinality,
        max_pool=max_pool,
    )


def certainty(info: StrategyInfo, spec: LabelSpec, probas: dict[str, np.ndarray]) -> np.ndarray:
    """(n,) certainty of each row as the strategy measures it on the primary control, in [0, 1]: the ``score`` of a
    prediction Label Studio stores (its queue sorts by it, lowest first)."""
    head = primary(spec)
    return row_certainty(info.certainty, probas[head.name], multi_label=head.multi_label)
