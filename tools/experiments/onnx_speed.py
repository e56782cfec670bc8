"""Torch body vs ONNX Runtime fp32 vs int8, measured in one run on the same texts.

    python -m tools.experiments.onnx_speed --data /work/shared/data/ag_news/ag_news.csv --n 512

Per body: throughput (texts/s, whole list at --batch-size), single-text latency p50/p99 over --calls calls, cosine to
the torch embeddings, and argmax agreement of a logistic head fitted on torch embeddings of --n-train other rows.
Ratios are against the torch body of the same run. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from backend.models.encoder import Encoder, bundled_model_path, offline
from backend.models.heads import FittedHead, fit_head
from backend.models.onnx_encoder import OnnxEncoder, check_parity, export_onnx


class Body(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def read_csv(path: Path, n: int, offset: int = 0) -> tuple[list[str], list[str]]:
    """Texts and labels of rows [offset, offset + n) of a text,label CSV."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for i, row in enumerate(csv.DictReader(f)) if offset <= i < offset + n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def throughput(body: Body, texts: list[str]) -> float:
    """Texts per second encoding ``texts`` in one call (after a one-batch warm-up)."""
    body.encode(texts[:32])
    start = time.perf_counter()
    body.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def latency_ms(body: Body, texts: list[str], calls: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``calls`` single-text encodes cycling through ``texts``."""
    for text in texts[:5]:
        body.encode([text])
    times = []
    for i in range(calls):
        start = time.perf_counter()
        body.encode([texts[i % len(texts)]])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def fit_reference_head(encoder: Encoder, texts: list[str], labels: list[str]) -> FittedHead:
    """Logistic head on torch embeddings (n_train, dim)."""
    names = tuple(sorted(set(labels)))
    head = fit_head(names, False, encoder.encode(texts), [[label] for label in labels], seed=0)
    if head is None:
        raise SystemExit("the training rows have a single label; use more --n-train rows")
    return head


def measure(name: str, body: Body, texts: list[str], calls: int) -> dict[str, float | str]:
    """Throughput and latency of one body."""
    tps = throughput(body, texts)
    p50, p99 = latency_ms(body, texts, calls)
    print(f"{name:>6}: {tps:7.1f} texts/s   single p50 {p50:6.2f} ms   p99 {p99:6.2f} ms", flush=True)
    return {"body": name, "texts_per_s": round(tps, 1), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}


def add_ratios(row: dict[str, float | str], base: dict[str, float | str]) -> None:
    """Speed-ups against the torch row: >1 means faster."""
    row["throughput_x"] = round(float(row["texts_per_s"]) / float(base["texts_per_s"]), 2)
    row["p50_speedup_x"] = round(float(base["p50_ms"]) / float(row["p50_ms"]), 2)
    row["p99_speedup_x"] = round(float(base["p99_ms"]) / float(row["p99_ms"]), 2)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CSV with text,label columns")
    parser.add_argument("--n", type=int, default=512, help="texts measured")
    parser.add_argument("--n-train", type=int, default=200, help="other rows the logistic head is fitted on")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--calls", type=int, default=200, help="single-text calls for the latency percentiles")
    parser.add_argument("--threads", type=int, default=None, help="ONNX intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    offline()
    import torch

    threads = args.threads or torch.get_num_threads()
    texts, _ = read_csv(args.data, args.n)
    train_texts, train_labels = read_csv(args.data, args.n_train, offset=args.n)
    encoder = Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=args.batch_size)
    head = fit_reference_head(encoder, train_texts, train_labels)
    print(f"torch threads {torch.get_num_threads()}, onnx threads {threads}, {len(texts)} texts", flush=True)
    rows = [measure("torch", encoder, texts, args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        export_onnx(encoder, Path(tmp))
        print(f"export + quantize: {time.perf_counter() - start:.1f} s", flush=True)
        for precision in ("fp32", "int8"):
            body = OnnxEncoder.load(Path(tmp), precision=precision, batch_size=args.batch_size, threads=threads)
            row = measure(precision, body, texts, args.calls)
            parity = check_parity(encoder, body, texts, head.predict_proba)
            row |= {"mean_cosine": round(parity.mean_cosine, 5), "min_cosine": round(parity.min_cosine, 5)}
            row |= {"agreement": parity.heads["head"].agreement}
            row |= {"max_abs_proba_diff": round(parity.heads["head"].max_abs_proba_diff, 4)}
            add_ratios(row, rows[0])
            print(f"{precision:>6}: {json.dumps({k: v for k, v in row.items() if k != 'body'})}", flush=True)
            rows.append(row)
    summary = {"n": len(texts), "batch_size": args.batch_size, "threads": threads, "cpus": os.cpu_count(), "rows": rows}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
