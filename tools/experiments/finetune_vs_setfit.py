"""Accuracy of the transformer slow tier (full fine-tuning) against SetFit at a few label budgets, same run.

Usage: python -m tools.experiments.finetune_vs_setfit [--data ../shared/data/ag_news/ag_news.csv] [--budgets 64,500]
       [--test 2000] [--seed 42] [--out docs/results/finetune_vs_setfit]

Both tiers start from the bundled all-MiniLM-L6-v2 weights with tagloop's default settings (SetFit: 20 pair
iterations, at most 200 steps; transformer: 4 epochs, early stopping on a 15 % validation split, class-weighted
loss). Training rows are a seeded, label-stratified sample of the file's first rows; the test slice is the file's
last ``--test`` rows (disjoint from every training sample). Prints a table and writes ``<out>.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from backend.config import Settings
from backend.labelstudio.label_config import parse_label_config
from backend.models.encoder import bundled_model_path
from backend.store.records import Example
from backend.training.dataset import control_data
from backend.training.setfit_training import train_setfit
from backend.training.transformer_training import train_transformer

REPO = Path(__file__).resolve().parents[2]


def sample(rows: list[dict[str, str]], n: int, seed: int) -> list[dict[str, str]]:
    """n rows, as equal per label as the rows allow, seeded."""
    rng = np.random.default_rng(seed)
    labels = sorted({r["label"] for r in rows})
    per = {label: [r for r in rows if r["label"] == label] for label in labels}
    picked: list[dict[str, str]] = []
    for i, label in enumerate(labels):
        take = n // len(labels) + (1 if i < n % len(labels) else 0)
        picked += [per[label][j] for j in rng.choice(len(per[label]), take, replace=False)]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/ag_news/ag_news.csv")
    parser.add_argument("--budgets", default="64,500")
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=REPO / "docs/results/finetune_vs_setfit")
    args = parser.parse_args()

    with args.data.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    test, pool = rows[-args.test :], rows[: -args.test]
    spec = parse_label_config((REPO / "annotation_configs/news_topics.xml").read_text())
    control = spec.controls[0]
    settings = Settings(data_dir=Path("/tmp/tagloop-bench"), seed=args.seed)
    gold = np.array([control.labels.index(r["label"]) for r in test])
    results = []
    for budget in (int(b) for b in args.budgets.split(",")):
        train = sample(pool, budget, args.seed)
        examples = [
            Example(task_id=i, data={"text": r["text"]}, choices={control.name: [r["label"]]})
            for i, r in enumerate(train)
        ]
        data = control_data(spec, examples, max_chars=settings.max_text_chars)
        for tier, fit in (("setfit", train_setfit), ("transformer", train_transformer)):
            started = time.perf_counter()
            result = fit(spec, data, bundled_model_path(), settings, f"bench-{tier}-{budget}")
            seconds = time.perf_counter() - started
            probs = result.classifier.predict({control.name: [r["text"] for r in test]})[control.name]
            accuracy = float((probs.argmax(1) == gold).mean())
            row = {"labels": budget, "tier": tier, "accuracy": round(accuracy, 4), "train_seconds": round(seconds, 1)}
            if tier == "transformer":
                m = result.metrics[control.name]
                row |= {"epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"]}
            print(json.dumps(row), flush=True)
            results.append(row)

    lines = [
        f"# Transformer fine-tuning vs SetFit on {args.data.name} (test: last {args.test} rows, seed {args.seed})",
        "",
        "| labels | SetFit accuracy | transformer accuracy | Δ (pp) | SetFit s | transformer s | time ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for budget in sorted({r["labels"] for r in results}):
        s = next(r for r in results if r["labels"] == budget and r["tier"] == "setfit")
        t = next(r for r in results if r["labels"] == budget and r["tier"] == "transformer")
        lines.append(
            f"| {budget} | {s['accuracy']:.4f} | {t['accuracy']:.4f} | {100 * (t['accuracy'] - s['accuracy']):+.2f} "
            f"| {s['train_seconds']} | {t['train_seconds']} | {t['train_seconds'] / s['train_seconds']:.2f}× |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
