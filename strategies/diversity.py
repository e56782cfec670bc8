"""Diversity-aware batch strategies over embeddings (n_pool, dim), cosine geometry.

References: greedy k-center core-set (Sener & Savarese 2018, "Active Learning for Convolutional Neural
Networks: A Core-Set Approach"); ranked batch-mode sampling (Cardoso et al. 2017, "Ranked batch-mode active
learning", Information Sciences 379); information density (Settles & Craven 2008, EMNLP, eq. 8).
"""

from __future__ import annotations

import numpy as np

from strategies import scores
from strategies.base import Context, FloatArray, Selection, check_embeddings, query_strategy, select_top

DENSITY_BETA = 1.0


def _unit(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float64)


def _initial_distance(pool: FloatArray, labeled: FloatArray | None) -> FloatArray:
    """Cosine distance of each pool row to its nearest labeled row (1.0 everywhere with no labeled rows)."""
    if labeled is None or len(labeled) == 0:
        return np.ones(pool.shape[0])
    best = np.full(pool.shape[0], -1.0)
    for start in range(0, len(labeled), 2048):
        best = np.maximum(best, (pool @ _unit(labeled[start : start + 2048]).T).max(axis=1))
    return 1.0 - best


@query_strategy
def coreset_sampling(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Greedy k-center: repeatedly take the pool row farthest from every labeled and already chosen row."""
    emb = _unit(check_embeddings(ctx.embeddings, pool.shape[0]))
    dist = _initial_distance(emb, ctx.labeled_embeddings)
    jitter = ctx.rng.random(len(dist)) * 1e-9
    chosen: list[int] = []
    picked_scores: list[float] = []
    for _ in range(n_instances):
        i = int(np.argmax(dist + jitter))
        chosen.append(i)
        picked_scores.append(float(dist[i]))
        dist = np.minimum(dist, 1.0 - emb @ emb[i])
        dist[i] = -np.inf
    return Selection(np.array(chosen, dtype=np.int64), np.array(picked_scores))


@query_strategy
def ranked_batch_sampling(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Ranked batch: α·(distance to labeled ∪ chosen) + (1 − α)·least-confidence, α = |U| / (|U| + |L|)."""
    emb = _unit(check_embeddings(ctx.embeddings, pool.shape[0]))
    uncertainty = scores.least_confidence(pool)
    dist = _initial_distance(emb, ctx.labeled_embeddings)
    n_labeled = 0 if ctx.labeled_embeddings is None else len(ctx.labeled_embeddings)
    jitter = ctx.rng.random(len(dist)) * 1e-9
    available = np.ones(len(dist), dtype=bool)
    chosen: list[int] = []
    picked_scores: list[float] = []
    for _ in range(n_instances):
        n_unlabeled = int(available.sum())
        alpha = n_unlabeled / (n_unlabeled + n_labeled)
        combined = np.where(available, alpha * dist + (1 - alpha) * uncertainty + jitter, -np.inf)
        i = int(np.argmax(combined))
        chosen.append(i)
        picked_scores.append(float(combined[i]))
        available[i] = False
        n_labeled += 1
        dist = np.minimum(dist, 1.0 - emb @ emb[i])
    return Selection(np.array(chosen, dtype=np.int64), np.array(picked_scores))


@query_strategy
def information_density_sampling(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Entropy × (mean cosine similarity to the pool)^β (β = 1): uncertain rows in dense regions first.

    With unit vectors the mean similarity of row i to the pool is e_i · mean(e), so this is O(n·dim).
    """
    emb = _unit(check_embeddings(ctx.embeddings, pool.shape[0]))
    density = np.clip(emb @ emb.mean(axis=0), 0.0, None)
    return select_top(scores.entropy(pool) * density**DENSITY_BETA, n_instances, rng=ctx.rng)


@query_strategy
def balanced_cold_start(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Cold start: round-robin over labels, each turn the unchosen row the (zero-shot) model puts most in it.

    Gives a seed set that covers every label even when the pool is imbalanced. Scores are the per-label
    probabilities of the picks.
    """
    noisy = pool + ctx.rng.random(pool.shape) * 1e-9
    taken = np.zeros(pool.shape[0], dtype=bool)
    chosen: list[int] = []
    picked: list[float] = []
    label = 0
    while len(chosen) < n_instances:
        column = np.where(taken, -np.inf, noisy[:, label % pool.shape[1]])
        i = int(np.argmax(column))
        chosen.append(i)
        picked.append(float(pool[i, label % pool.shape[1]]))
        taken[i] = True
        label += 1
    return Selection(np.array(chosen, dtype=np.int64), np.array(picked))
