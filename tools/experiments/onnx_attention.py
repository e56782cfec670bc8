"""The served ONNX body traced with the model's own attention (``sdpa``) against the ``eager`` trace tagloop exports.

    python -m tools.experiments.onnx_attention --data ../shared/data/ag_news/ag_news.csv

Exports the bundled body twice (``export_onnx(eager_attention=False|True)``), loads each at ``--precision`` the way
serving does (``OnnxEncoder.load``, two intra-op threads), and times single-text encodes of held-out texts: back to
back, then paced at ``--rate`` calls/s, each alone and beside a torch training loop at idle CPU priority (a child
process, SCHED_IDLE, like the supervised worker). The two graphs alternate in ``--rounds`` rounds so drift in the
host's speed hits both. Also prints each graph's mean cosine to the torch body. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backend.models.encoder import Encoder, bundled_model_path, offline
from backend.models.onnx_encoder import OnnxEncoder, export_onnx
from tools.experiments.onnx_speed import read_csv

LOAD = """
import os, torch
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
torch.set_num_threads(2)
layer = torch.nn.Sequential(torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.Linear(1536, 384))
opt = torch.optim.AdamW(layer.parameters())
x = torch.randn(2048, 384)
while True:
    layer(x).pow(2).mean().backward(); opt.step(); opt.zero_grad()
"""
"""A stand-in for a SetFit step: MiniLM-sized feed-forward passes, forward and backward, at idle priority."""


def timed(body: OnnxEncoder, texts: list[str], pause_s: float) -> list[float]:
    """Milliseconds of one single-text ``encode`` per text, sleeping ``pause_s`` before each."""
    out = []
    for text in texts:
        if pause_s:
            time.sleep(pause_s)
        start = time.perf_counter()
        body.encode([text])
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--precision", default="int8-all")
    parser.add_argument("--calls", type=int, default=150, help="timed calls per graph, round and condition")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second of the paced condition")
    args = parser.parse_args(argv)
    offline()
    texts, _ = read_csv(args.data, args.calls * args.rounds + 300, offset=1000)
    torch_body = Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=32)
    reference = torch_body.encode(texts[:300])
    bodies: dict[str, OnnxEncoder] = {}
    cosine: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, eager in (("sdpa", False), ("eager", True)):
            directory = export_onnx(torch_body, Path(tmp) / name, eager_attention=eager)
            bodies[name] = OnnxEncoder.load(directory, precision=args.precision, threads=2)
            cosine[name] = float((bodies[name].encode(texts[:300]) * reference).sum(axis=1).mean())
    results: dict[str, dict[str, float]] = {}
    for load in (False, True):
        child = subprocess.Popen([sys.executable, "-c", LOAD]) if load else None
        try:
            if child:
                time.sleep(3)
            for paced in (False, True):
                condition = ("paced" if paced else "back to back") + (", idle-priority load" if load else "")
                times: dict[str, list[float]] = {name: [] for name in bodies}
                for r in range(args.rounds):
                    chunk = texts[300 + r * args.calls : 300 + (r + 1) * args.calls]
                    for name, body in bodies.items():
                        timed(body, chunk[:5], 0)
                        times[name] += timed(body, chunk, 1 / args.rate if paced else 0)
                results[condition] = {name: round(float(np.percentile(t, 50)), 2) for name, t in times.items()}
                print(f"{condition:40s} " + "  ".join(f"{n} p50 {v:.2f} ms" for n, v in results[condition].items()))
        finally:
            if child:
                child.kill()
                child.wait()
    print("mean cosine to torch: " + "  ".join(f"{n} {c:.4f}" for n, c in cosine.items()))
    print(
        json.dumps({"precision": args.precision, "p50_ms": results, "cosine_to_torch": cosine, "cpus": os.cpu_count()})
    )


if __name__ == "__main__":
    main()
