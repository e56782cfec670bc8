"""Webhook ack latency at 50 labels/s while a SetFit training runs, for several ``TAGLOOP_TRAINING_YIELD_SHARE``.

Usage: python -m tools.experiments.ack_yield [--shares 0.75 0.9 0.95] [--rounds 3] [--labels 1000]
       [--data ../shared/data/ag_news/ag_news.csv]

Each run is the setup and the ack phase of ``tagloop bench predict --setup default`` alone (a fresh `tagloop serve`
with its supervised worker, 256 labels, a fast version, then a SetFit training; once its second step is done,
``--labels`` ANNOTATION_CREATED webhooks at 50 a second), with the share under test; the shares alternate within
each round, so a change in the host's load hits them alike. Prints, per run, client and in-app (``Server-Timing``)
p50/p99; last line: one JSON object with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tools.bench import predict as bench
from tools.bench.predict_server import PROJECT, Server

REPO = Path(__file__).resolve().parents[2]


def one_run(data: Path, share: float, labels: int) -> dict[str, float | None]:
    """The ack phase of bench predict (``--setup default``) with ``TAGLOOP_TRAINING_YIELD_SHARE=share``."""
    config = bench.PredictBenchConfig(data=data, setup="default", ack_labels=labels)
    rows, names = bench.read_rows(config)
    xml = bench.labeling_config(names)
    os.environ["TAGLOOP_TRAINING_YIELD_SHARE"] = str(share)  # the server inherits this process's TAGLOOP_* settings
    with tempfile.TemporaryDirectory(prefix="tagloop-ack-yield-") as tmp:
        server = Server(Path(tmp), config)
        try:
            server.wait_up(config.timeout_s)
            server.start_worker()
            server.post("/setup", {"project": f"{PROJECT}.1", "schema": xml})
            ids = bench.TaskIds(1)
            bench.predict_http(server, ids, rows["eval"][:1])
            bench._label(server, ids, rows, xml)
            bench._train_fast(server, config.timeout_s)
            server.post(f"/api/projects/{PROJECT}/train?tier=setfit", {})
            bench._wait_for_step(server, 2, time.monotonic() + config.timeout_s)
            labeled = (rows["eval"], rows["eval_labels"], xml)
            acks = bench._acks_while_training(server, ids, labeled, n=labels, rate=config.ack_rate)
        finally:
            server.stop()
    keys = ("p50_ms", "p99_ms", "app_p50_ms", "app_p99_ms", "training_steps")
    return {"share": share, **{k: acks.get(k) for k in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.75, 0.9, 0.95])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ag_news" / "ag_news.csv")
    args = parser.parse_args()
    runs = []
    for round_ in range(args.rounds):
        for share in args.shares:
            run = one_run(args.data, share, args.labels)
            runs.append(run)
            print(
                f"round {round_ + 1} share {share}: ack p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms; in the app "
                f"p50 {run['app_p50_ms']} ms, p99 {run['app_p99_ms']} ms; {run['training_steps']} SetFit steps",
                flush=True,
            )
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
