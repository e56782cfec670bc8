"""``tagloop bench freshness``: how fast a label reaches a served model, tagloop vs the reference.

Both servers get the same labels from a labeled CSV as Label Studio webhooks over HTTP on loopback:
- tagloop: ``tagloop serve`` in a subprocess (fresh SQLite data dir, fast tier on), set up as ``setup`` says:
  ``default`` is what ``make serve`` starts (web process + the worker process it supervises), ``inprocess``
  trains in a thread of the web process;
- reference: synchronous retrain in the webhook every 10 labels (``tools.bench.reference``).
Up to each checkpoint the labels are sent back to back (ack latency is measured on every one); then
``window`` labels are sent at an annotator's ``pace`` and, for each, the time until the server serves a
model trained on it is measured (label → new-version-serving latency).
"""

from __future__ import annotations

import csv
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from tools.harness import TagloopServer, free_port
from tools.webhooks import annotation_event

SETUP_WORKER = {"default": "process", "inprocess": "inprocess"}
"""``--setup`` → the server's ``TAGLOOP_WORKER``."""


@dataclass(frozen=True, kw_only=True)
class FreshnessConfig:
    """What to replay."""

    data: Path
    pool: int = 10_000
    checkpoints: tuple[int, ...] = (100, 1_000, 5_000)
    window: int = 20
    pace_s: float = 1.0
    timeout_s: float = 60.0
    setup: str = "default"

    def __post_init__(self) -> None:
        if self.setup not in SETUP_WORKER:
            raise ValueError(f"setup: got {self.setup!r}, expected one of {list(SETUP_WORKER)}")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds-agnostic units (nan for no values)."""
    return float(np.percentile(values, q)) if values else float("nan")


def _load(config: FreshnessConfig) -> tuple[list[str], list[str], tuple[str, ...]]:
    with config.data.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("text") and r.get("label") and "|" not in r["label"]]
    if len(rows) < config.pool:
        raise ValueError(f"{config.data}: {len(rows)} single-label rows, the pool needs {config.pool}")
    rows = rows[: config.pool]
    labels = tuple(dict.fromkeys(r["label"] for r in rows))
    return [r["text"] for r in rows], [r["label"] for r in rows], labels


def label_config(labels: tuple[str, ...]) -> str:
    """A Choices config over the CSV's labels (values escaped for XML)."""
    from xml.sax.saxutils import quoteattr

    choices = "".join(f"<Choice value={quoteattr(x)}/>" for x in labels)
    return f'<View><Text name="text" value="$text"/><Choices name="label" toName="text">{choices}</Choices></View>'


class _Target:
    """One server under test: where to send webhooks and how to read the served n_train."""

    def __init__(self, name: str, url: str, served: Callable[[requests.Session], int]) -> None:
        self.name, self.url, self.served = name, url, served
        self.session = requests.Session()
        self.acks: list[float] = []

    def send(self, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        r = self.session.post(f"{self.url}/webhook", json=body, timeout=60)
        self.acks.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()


def _replay(
    target: _Target, events: list[dict[str, Any]], config: FreshnessConfig, progress: Callable[[str], None]
) -> dict[str, Any]:
    sent, report = 0, {}
    for checkpoint in config.checkpoints:
        acks_from = len(target.acks)
        while sent < checkpoint - config.window:
            target.send(events[sent])
            sent += 1
        fresh, sent = _measure_window(target, events, sent, config)
        window_acks = target.acks[acks_from:]
        report[str(checkpoint)] = {
            "ack_p50_ms": round(percentile(window_acks, 50), 2),
            "ack_p99_ms": round(percentile(window_acks, 99), 2),
            "fresh_p50_s": round(percentile(fresh, 50), 3),
            "fresh_p95_s": round(percentile(fresh, 95), 3),
            "fresh_timeouts": sum(1 for f in fresh if f >= config.timeout_s),
        }
        progress(f"{target.name} @ {checkpoint} labels: {report[str(checkpoint)]}")
    return report


def _measure_window(
    target: _Target, events: list[dict[str, Any]], start: int, config: FreshnessConfig
) -> tuple[list[float], int]:
    """Send ``window`` labels (then up to 9 more, so a server that retrains every 10 gets its batch) at the
    annotator's pace, while a poller notes when each window label is first served."""
    sent_at: dict[int, float] = {}
    served_at: dict[int, float] = {}
    stop = threading.Event()
    poll_session = requests.Session()

    def poll() -> None:
        while not stop.is_set():
            n = target.served(poll_session)
            now = time.perf_counter()
            for k, t in list(sent_at.items()):
                if k <= n and k not in served_at and t <= now:
                    served_at[k] = now
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sent = start
    window_end = start + config.window
    deadline = None
    while True:
        if sent < window_end or (sent < min(len(events), window_end + 9) and len(served_at) < config.window):
            began = time.perf_counter()
            target.send(events[sent])
            sent += 1
            if sent <= window_end:
                sent_at[sent] = began
            time.sleep(max(0.0, config.pace_s - (time.perf_counter() - began)))
            continue
        deadline = deadline or time.perf_counter() + config.timeout_s
        if len(served_at) >= config.window or time.perf_counter() > deadline:
            break
        time.sleep(0.05)
    stop.set()
    poller.join()
    fresh = [min(served_at.get(k, float("inf")) - t, config.timeout_s) for k, t in sent_at.items()]
    return fresh, sent


def _tagloop(data_dir: Path, setup: str) -> TagloopServer:
    """``tagloop serve`` on a fresh data dir, set up as ``setup`` says, slow tier off (the fast tier is measured)."""
    env = {"TAGLOOP_DATA_DIR": str(data_dir), "TAGLOOP_TRAIN_EVERY": "0", "TAGLOOP_WORKER": SETUP_WORKER[setup]}
    return TagloopServer(env, data_dir=data_dir, log_path=data_dir / "server.log", startup_timeout=300)


def _start_reference(labels: tuple[str, ...], embeddings: dict[int, np.ndarray]) -> tuple[Any, str]:
    from waitress.server import create_server

    from tools.bench.reference import reference_app

    port = free_port()
    server = create_server(reference_app(labels, embeddings), host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def run_freshness(config: FreshnessConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Replay into both servers; returns the report (also the last line the CLI prints)."""
    from backend.models.encoder import Encoder, bundled_model_path

    texts, golds, labels = _load(config)
    xml = label_config(labels)
    project = 1
    n_labels = max(config.checkpoints)
    events = [
        annotation_event(project, i + 1, texts[i], [golds[i]], label_config=xml, updated_at=f"{time.time():.6f}")
        for i in range(n_labels)
    ]
    progress(f"encoding {n_labels} label texts for the reference (its retrain is then only the head fit)")
    encoder = Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=64)
    vectors = encoder.encode(texts[:n_labels])
    embeddings = {i + 1: vectors[i] for i in range(n_labels)}
    with tempfile.TemporaryDirectory(prefix="tagloop-bench-") as tmp, _tagloop(Path(tmp), config.setup) as tagloop:
        url = str(tagloop.url)
        requests.post(f"{url}/setup", json={"project": f"{project}.1", "schema": xml}, timeout=30).raise_for_status()
        pool: list[Any] = [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)]
        requests.post(
            f"{url}/webhook",
            json={"action": "TASKS_CREATED", "project": {"id": project}, "tasks": pool},
            timeout=120,
        ).raise_for_status()

        warm: dict[str, Any] = {"project": project, "tasks": [{"id": 1, "data": {"text": texts[0]}}]}
        requests.post(f"{url}/predict", json=warm, timeout=300).raise_for_status()  # body loaded, as in service

        def tagloop_served(session: requests.Session) -> int:
            current = session.get(f"{url}/api/projects/{project}/status", timeout=30).json()["current"]
            return int(current["n_train"]) if current else 0

        ours = _replay(_Target("tagloop", url, tagloop_served), events, config, progress)
    server, ref_url = _start_reference(labels, embeddings)
    try:
        ref = _replay(
            _Target("reference", ref_url, lambda s: int(s.get(f"{ref_url}/version", timeout=30).json()["n_train"])),
            events,
            config,
            progress,
        )
    finally:
        server.close()
    ratios = {
        cp: {
            "ack_p99_x": round(ref[cp]["ack_p99_ms"] / ours[cp]["ack_p99_ms"], 2),
            "fresh_p50_x": round(ref[cp]["fresh_p50_s"] / ours[cp]["fresh_p50_s"], 2),
        }
        for cp in ours
    }
    return {
        "data": str(config.data),
        "pool": config.pool,
        "window": config.window,
        "pace_s": config.pace_s,
        "setup": config.setup,
        "tagloop": ours,
        "reference": ref,
        "reference_over_tagloop": ratios,
    }


def main_json(report: dict[str, Any]) -> str:
    """The one-line JSON the CLI prints last."""
    return json.dumps(report)
