"""Flag-threshold chooser on jigsaw_toxic: target precision vs the precision reached on a split it did not see.

Usage: python -m tools.experiments.review_thresholds [--data ../shared/data/jigsaw_toxic/jigsaw_toxic.csv]
       [--out docs/results]
       [--targets 0.8,0.9,0.95] [--cache var/embedding-cache]

Tuning split: the CSV's ``train`` rows. Per label, thresholds are chosen (``backend.review.thresholds``) on 5-fold
out-of-fold probabilities of tagloop's logistic head over frozen all-MiniLM-L6-v2 embeddings, twice: from every
train row, and from 1000 of them (the cap tagloop's training hook uses). A head fitted on all train rows then
scores the ``test`` rows, and each label's precision, recall and FP rate at the chosen threshold are measured
there. The fixed 0.5 threshold (what is used without a chosen one) is the baseline. Writes
``review_thresholds.json`` and ``review_thresholds.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
TAGLOOP_CV_ROWS = 1000


def load(path: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Texts, label lists and (n,) bool "is a test row"."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [r["text"] for r in rows]
    targets = [[x for x in r["label"].split("|") if x] for r in rows]
    return texts, targets, np.array([r["split"] == "test" for r in rows])


def measure(scores: np.ndarray, positive: np.ndarray, threshold: float | None) -> dict[str, Any]:
    """Precision, recall and FP rate of flagging ``scores >= threshold`` on held-out rows."""
    from backend.review.thresholds import rates_at

    if threshold is None:
        return {"threshold": None}
    p, r, f, flagged = rates_at(scores, positive, threshold)
    return {"threshold": round(threshold, 4), "precision": round(p, 4), "recall": round(r, 4), "fp_rate": round(f, 4),
            "flagged": flagged}  # fmt: skip


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=repo.parent / "shared/data/jigsaw_toxic/jigsaw_toxic.csv")
    parser.add_argument("--out", type=Path, default=repo / "bench" / "results")
    parser.add_argument("--targets", default="0.8,0.9,0.95")
    parser.add_argument("--cache", type=Path, default=repo / "var" / "embedding-cache")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from backend.models.encoder import Encoder, bundled_model_path
    from backend.models.heads import fit_head
    from backend.review.thresholds import choose_threshold
    from backend.training.evaluation import out_of_fold, subsample
    from tools.simulation.embeddings import embed_texts

    started = time.perf_counter()
    texts, targets, is_test = load(args.data)
    encoder = Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=64)
    emb = embed_texts(texts, encoder, cache_dir=args.cache)
    embed_s = time.perf_counter() - started
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    y = np.array([[label in t for label in LABELS] for t in targets])
    train_targets = [targets[i] for i in train]
    oof_full = out_of_fold(LABELS, True, emb[train], train_targets, seed=args.seed).proba
    capped = subsample(len(train), TAGLOOP_CV_ROWS, args.seed)
    oof_cap = out_of_fold(LABELS, True, emb[train][capped], [train_targets[i] for i in capped], seed=args.seed).proba
    head = fit_head(LABELS, True, emb[train], train_targets, seed=args.seed)
    if head is None:
        raise SystemExit("no label varies in the train split")
    test_proba = head.predict_proba(emb[test])
    results: dict[str, Any] = {
        "data": str(args.data),
        "train_rows": len(train),
        "test_rows": len(test),
        "encoder": "all-MiniLM-L6-v2 (frozen), logistic head per label",
        "per_label": {},
    }
    for j, label in enumerate(LABELS):
        row: dict[str, Any] = {
            "train_positives": int(y[train, j].sum()),
            "test_positives": int(y[test, j].sum()),
            "default_0.5": measure(test_proba[:, j], y[test, j], 0.5),
        }
        for target in (float(t) for t in args.targets.split(",")):
            for name, oof, rows in (("all_train", oof_full, train), ("tagloop_1000", oof_cap, train[capped])):
                choice = choose_threshold(oof[:, j], y[rows, j], target_precision=target)
                row[f"target_{target}_{name}"] = {
                    "cv": choice.as_json(),
                    "test": measure(test_proba[:, j], y[test, j], choice.threshold),
                }
        results["per_label"][label] = row
    results["seconds"] = {"embed": round(embed_s, 1), "total": round(time.perf_counter() - started, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "review_thresholds.json").write_text(json.dumps(results, indent=2))
    table = markdown(results, [float(t) for t in args.targets.split(",")])
    (args.out / "review_thresholds.md").write_text(table)
    print(table)


def markdown(results: dict[str, Any], targets: list[float]) -> str:
    """One row per label and target: CV precision, test precision, test recall and FP rate."""

    def cell(d: dict[str, Any], key: str) -> str:
        return f"{d[key]:.3f}" if d.get(key) is not None else "-"

    lines = [
        f"Threshold chooser on jigsaw_toxic: tuned on {results['train_rows']} train rows (5-fold out-of-fold), "
        f"measured on {results['test_rows']} test rows.",
        "",
        "| label | test pos. | target P | tuned on | threshold | met in CV | test precision | test recall | "
        "test FP rate |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for label, row in results["per_label"].items():
        base = row["default_0.5"]
        lines.append(
            f"| {label} | {row['test_positives']} | (0.5 fixed) | - | 0.500 | - | {cell(base, 'precision')} | "
            f"{cell(base, 'recall')} | {cell(base, 'fp_rate')} |"
        )
        for target in targets:
            for name in ("all_train", "tagloop_1000"):
                r = row[f"target_{target}_{name}"]
                rows = "all" if name == "all_train" else "1000"
                met = "yes" if r["cv"]["met"] else ("no" if r["cv"]["threshold"] is not None else "too few")
                lines.append(
                    f"| {label} | {row['test_positives']} | {target} | {rows} | {cell(r['test'], 'threshold')} | {met} "
                    f"| {cell(r['test'], 'precision')} | {cell(r['test'], 'recall')} | {cell(r['test'], 'fp_rate')} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
