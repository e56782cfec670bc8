"""Re-ranking a 100k-task pool from cached embeddings vs re-encoding it, in the same run.

Usage: python -m tools.experiments.rerank_speed [--n 100000] [--data ../shared/data/ag_news/ag_news.csv]
       [--encode-sample 512]

Re-ranking = a logistic head's ``predict_proba`` on (n, 384) cached embeddings + a strategy picking the top
200. The baseline is what re-ranking would cost without the cache: encoding the pool texts again, measured
on ``--encode-sample`` real texts and scaled to n. Prints a table and, last, one JSON line.
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


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=repo.parent / "shared" / "data" / "ag_news" / "ag_news.csv")
    parser.add_argument("--encode-sample", type=int, default=512)
    parser.add_argument("--k", type=int, default=200)
    args = parser.parse_args()

    from backend.models.encoder import Encoder, bundled_model_path
    from backend.models.heads import fit_head
    from strategies import get_strategy

    with args.data.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = tuple(dict.fromkeys(r["label"] for r in rows))
    encoder = Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=64)
    sample = [r["text"] for r in rows[: args.encode_sample]]
    started = time.perf_counter()
    emb = encoder.encode(sample)
    encode_s = (time.perf_counter() - started) / len(sample) * args.n
    head = fit_head(labels, False, emb, [[r["label"]] for r in rows[: args.encode_sample]], seed=0)
    if head is None:
        raise SystemExit("the sample has one label only; use a larger --encode-sample")
    # the pool: real embeddings tiled to n rows, with a little noise so rows differ
    rng = np.random.default_rng(0)
    pool = np.tile(emb, (args.n // len(emb) + 1, 1))[: args.n] + rng.normal(0, 0.01, (args.n, emb.shape[1]))
    pool = (pool / np.linalg.norm(pool, axis=1, keepdims=True)).astype(np.float32)
    results = {}
    for name in ("margin", "entropy", "least_confidence", "information_density"):
        started = time.perf_counter()
        proba = head.predict_proba(pool)
        get_strategy(name)(proba, args.k, embeddings=pool, rng=np.random.default_rng(0))
        results[name] = time.perf_counter() - started
    print(f"re-encoding {args.n} texts (measured on {len(sample)}): {encode_s:8.1f} s  (baseline)")
    for name, seconds in results.items():
        print(f"re-rank {args.n} cached embeddings with {name:<20} {seconds:6.3f} s  {encode_s / seconds:8.0f}x faster")
    print(
        json.dumps(
            {"n": args.n, "encode_s": round(encode_s, 2), "rerank_s": {k: round(v, 3) for k, v in results.items()}}
        )
    )


if __name__ == "__main__":
    main()
