"""Experiment for a next step (not what tagloop serves yet): the fast-tier head alone vs zero-shot vs a blend of
the two whose weight is chosen by out-of-fold accuracy on the labels, at small label budgets.

Usage: HF_HUB_OFFLINE=1 python -m tools.experiments.zero_shot_prior [--data ag_news] [--config news_topics] [--seeds 5]

The first 2,500 rows of ``../shared/data/<data>`` are read; the last 500 of them are the test slice, the labeled
rows are drawn at random (per seed) from the others. ``lr`` is the fast tier's logistic head as served today
(labels it has not seen get probability 0); ``blend`` is ``alpha * head + (1 - alpha) * zero-shot``, ``alpha`` in
{0, .25, .5, .75, 1} picked by out-of-fold accuracy on the labeled rows (0 when they cannot be cross-validated).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from backend.labelstudio.label_config import parse_label_config
from backend.models.encoder import Encoder, bundled_model_path
from backend.models.heads import ZeroShotHead, fit_head, label_prompt

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
BUDGETS = (4, 8, 16, 24, 40, 64, 100)


def read_rows(name: str, n: int) -> list[dict[str, str]]:
    path = next((Path("../shared/data") / name).glob("*.csv"))
    with path.open(newline="", encoding="utf-8") as f:
        return [row for _, row in zip(range(n), csv.DictReader(f), strict=False)]


def blend_weight(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], prior: ZeroShotHead, seed: int) -> float:
    """The alpha with the best out-of-fold accuracy on the labeled rows (ties: the larger alpha)."""
    counts = [int(c) for c in np.bincount(y) if c > 0]
    folds = min(5, *counts)
    if folds < 2:
        return 0.0
    oof = np.zeros((len(y), len(labels)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        head = fit_head(labels, False, x[train], [[labels[i]] for i in y[train]], seed=seed)
        oof[test] = head.predict_proba(x[test]) if head else prior.predict_proba(x[test])
    p_prior = prior.predict_proba(x)
    scores = [float(((a * oof + (1 - a) * p_prior).argmax(1) == y).mean()) for a in ALPHAS]
    return max(zip(scores, ALPHAS, strict=True))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ag_news")
    parser.add_argument("--config", default="news_topics")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    encoder = Encoder.load(bundled_model_path())
    spec = parse_label_config(Path(f"annotation_configs/{args.config}.xml").read_text())
    control = spec.controls[0]
    labels = control.labels
    rows = [r for r in read_rows(args.data, 2500) if r["label"] in labels]
    started = time.perf_counter()
    x = encoder.encode([r["text"] for r in rows])
    print(f"{args.data}: encoded {len(rows)} texts in {time.perf_counter() - started:.0f} s", flush=True)
    y = np.array([labels.index(r["label"]) for r in rows])
    prompts = [label_prompt(label, hint) for label, hint in zip(labels, control.hints, strict=True)]
    prior = ZeroShotHead(labels, False, encoder.encode(prompts), 0.05)
    test, pool = np.arange(len(rows) - 500, len(rows)), np.arange(0, len(rows) - 500)
    p_prior = prior.predict_proba(x[test])
    print(f"{args.data}: zero-shot {(p_prior.argmax(1) == y[test]).mean():.3f}")
    for n in BUDGETS:
        lr, blend, weights = [], [], []
        for seed in range(args.seeds):
            idx = np.random.default_rng(seed).choice(pool, n, replace=False)
            head = fit_head(labels, False, x[idx], [[labels[i]] for i in y[idx]], seed=seed)
            p_head = head.predict_proba(x[test]) if head else p_prior
            alpha = blend_weight(x[idx], y[idx], labels, prior, seed)
            lr.append((p_head.argmax(1) == y[test]).mean())
            blend.append(((alpha * p_head + (1 - alpha) * p_prior).argmax(1) == y[test]).mean())
            weights.append(alpha)
        print(f"  n={n:4d}  lr {np.mean(lr):.3f}  blend {np.mean(blend):.3f}  alpha {np.mean(weights):.2f}", flush=True)


if __name__ == "__main__":
    main()
