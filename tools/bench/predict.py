"""``tagloop bench predict``: serving speed of tagloop's /predict next to Hugging Face's pipeline, in one run.

From a labeled CSV (``text,label``, single-label rows) the run builds a project on a real ``tagloop serve``
subprocess on a fresh data dir, set up as ``setup`` says: ``default`` is what ``make serve`` starts (the web
process and the worker process it supervises), ``inprocess`` trains in a thread of the web process, ``redis``
in a separate `tagloop worker` woken through Redis (training at ``training_priority``). It labels
``n_train`` rows through /webhook, trains a fast-tier version (heads on the served body) and measures:

- on the same texts, in ``ROUNDS`` alternating rounds (so load from other processes hits all three alike),
  batch 32 and batch 1: tagloop's /predict over HTTP (texts it has never seen, so its embedding cache cannot
  help), the served model in-process (batched ONNX body + heads, no HTTP, no cache), and
  ``transformers.pipeline("text-classification")`` on the same body directory
  (``AutoModelForSequenceClassification``, an untrained classifier layer: speed only);
- /predict with ``clients`` concurrent single-text callers (request coalescing), and batch 32 again on texts
  already embedded (the embedding cache);
- accuracy on ``n_eval`` held-out rows: served (ONNX) predictions over HTTP vs the same version's heads on
  the torch body (and vs heads fitted on torch embeddings, what ``serve_precision=torch`` would serve);
- peak RSS of the web process (``VmHWM`` from /proc) while serving; then, while a slow-tier (SetFit) training
  runs: single-text /predict latency (a paced feed, then back to back) and webhook ack latency of ``ack_labels``
  labels sent at ``ack_rate`` a second; the peak RSS of the web process and of the worker process again.
Progress goes to the ``progress`` callback (stderr in the CLI); the CLI prints ``table(report)`` and then
``json.dumps(summary(report))`` as the last line.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from backend.config import PRIORITIES
from tools.bench.predict_report import summary, table
from tools.bench.predict_server import PROJECT, SETUP_WORKER, Server, TaskIds, predict_http
from tools.webhooks import annotation_event

Progress = Callable[[str], None]
ROUNDS = 4
"""Interleaved rounds per throughput measurement."""
__all__ = ["PredictBenchConfig", "read_rows", "run_predict_bench", "summary", "table"]


@dataclass(frozen=True, kw_only=True)
class PredictBenchConfig:
    """What to run. Rows are taken in file order: train, eval, then the measured texts."""

    data: Path
    n: int = 512
    """Texts per throughput measurement (batch 32); batch-1 phases use min(n, ``single_calls``)."""
    n_train: int = 256
    n_eval: int = 500
    single_calls: int = 200
    clients: int = 8
    """Concurrent single-text callers in the coalescing phase."""
    slow_steps: int = 200
    """SetFit steps of the slow-tier training measured against."""
    busy_calls: int = 1000
    """Most single-text calls made back to back while the slow tier trains (after the feed phase)."""
    feed_rate: float = 20.0
    """Calls per second of the feed phase while the slow tier trains (20/s: 1,200 texts a minute)."""
    feed_s: float = 20.0
    """Seconds of the feed phase."""
    setup: str = "default"
    """default: web process + the worker process it supervises (``make serve``); inprocess: the slow tier trains in
    a thread of the web process; redis: in a separate `tagloop worker` process woken through Redis."""
    ack_labels: int = 1000
    """Labels sent as webhooks while the slow tier trains (ack latency)."""
    ack_rate: float = 50.0
    """Labels per second of that phase."""
    redis_url: str = "redis://127.0.0.1:6379/14"
    """A Redis database for the bench alone: it is emptied when the worker starts."""
    training_priority: str = "idle"
    """``Settings.training_priority`` of the server and worker: idle, low or normal (training is batch work;
    serving is latency-bound)."""
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if self.setup not in SETUP_WORKER:
            raise ValueError(f"setup: got {self.setup!r}, expected one of {list(SETUP_WORKER)}")
        if self.ack_rate <= 0 or self.ack_labels < 0:
            raise ValueError(f"ack_rate must be > 0 and ack_labels >= 0, got {self.ack_rate} and {self.ack_labels}")
        if self.feed_rate <= 0 or self.feed_s < 0:
            raise ValueError(f"feed_rate must be > 0 and feed_s >= 0, got {self.feed_rate} and {self.feed_s}")
        if self.training_priority not in PRIORITIES:
            raise ValueError(f"training_priority: got {self.training_priority!r}, expected one of {list(PRIORITIES)}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (None for no values), rounded to 0.01."""
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def read_rows(config: PredictBenchConfig) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """Slices ``train``, ``eval``, ``measure`` (texts) and their labels, from single-label rows of the CSV."""
    with config.data.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("text") and r.get("label") and "|" not in r["label"]]
    n_measure = (
        config.n + 2 * min(config.n, config.single_calls) + int(config.feed_rate * config.feed_s) + config.busy_calls
    )
    need = config.n_train + config.n_eval + n_measure
    if len(rows) < need:
        raise ValueError(f"{config.data}: {len(rows)} single-label rows; this run needs {need}")
    cut = [0, config.n_train, config.n_train + config.n_eval, need]
    out = {name: rows[cut[i] : cut[i + 1]] for i, name in enumerate(("train", "eval", "measure"))}
    labels = tuple(dict.fromkeys(r["label"] for r in rows[:need]))
    return {
        **{name: [r["text"] for r in part] for name, part in out.items()},
        **{f"{name}_labels": [r["label"] for r in part] for name, part in out.items()},
    }, labels


def labeling_config(labels: tuple[str, ...]) -> str:
    """A config from ``annotation_configs/`` whose single-choice control has exactly these labels, else one built."""
    from xml.sax.saxutils import quoteattr

    from backend.labelstudio.label_config import parse_label_config

    folder = Path(__file__).resolve().parents[2] / "annotation_configs"
    for path in sorted(folder.glob("*.xml")):
        spec = parse_label_config(path.read_text())
        control = spec.controls[0]
        if len(spec.controls) == 1 and not control.multi_label and set(control.labels) == set(labels):
            return path.read_text()
    choices = "".join(f"<Choice value={quoteattr(x)}/>" for x in labels)
    return f'<View><Text name="text" value="$text"/><Choices name="label" toName="text">{choices}</Choices></View>'


# ----------------------------------------------------------------------------------------------- measurements


class Timer:
    """Throughput (texts/s) and per-call latency (ms) of one system, accumulated over interleaved rounds."""

    def __init__(self, call: Callable[[Sequence[str]], Any], batch: int) -> None:
        self.call, self.batch = call, batch
        self.latencies: list[float] = []
        self.texts, self.seconds = 0, 0.0

    def run(self, texts: Sequence[str]) -> None:
        """Call on consecutive slices of ``batch`` texts."""
        for i in range(0, len(texts), self.batch):
            t0 = time.perf_counter()
            self.call(texts[i : i + self.batch])
            self.latencies.append((time.perf_counter() - t0) * 1000)
        self.seconds += sum(self.latencies[-((len(texts) + self.batch - 1) // self.batch) :]) / 1000
        self.texts += len(texts)

    def row(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "texts": self.texts,
            "texts_per_s": round(self.texts / self.seconds, 1) if self.seconds else None,
            "p50_ms": percentile(self.latencies, 50),
            "p99_ms": percentile(self.latencies, 99),
        }


def interleaved(calls: dict[str, Callable[[Sequence[str]], Any]], texts: Sequence[str], batch: int) -> dict[str, Any]:
    """Every system on the same texts, in ``ROUNDS`` alternating rounds, so a change in the machine's load from
    other processes hits them alike; per system, the ``Timer`` row."""
    timers = {name: Timer(call, batch) for name, call in calls.items()}
    size = max(batch, -(-len(texts) // ROUNDS))
    for start in range(0, len(texts), size):
        for timer in timers.values():
            timer.run(texts[start : start + size])
    return {name: timer.row() for name, timer in timers.items()}


def concurrent_singles(server: Server, ids: TaskIds, texts: Sequence[str], clients: int) -> dict[str, Any]:
    """``clients`` threads each sending single-text /predict calls: throughput and latency (coalescing)."""
    sessions = [requests.Session() for _ in range(clients)]
    latencies: list[float] = []

    def worker(k: int) -> None:
        for text in texts[k::clients]:
            t0 = time.perf_counter()
            predict_http(server, ids, [text], sessions[k])
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(worker, range(clients)))
    total = time.perf_counter() - started
    return {
        "batch": 1,
        "clients": clients,
        "texts": len(texts),
        "texts_per_s": round(len(texts) / total, 1),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def load_pipeline(body: Path, n_labels: int) -> Callable[[Sequence[str]], Any]:
    """HF ``pipeline("text-classification")`` on ``body`` (an untrained classifier layer: speed only), called
    with ``batch_size`` = the number of texts given."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(str(body), num_labels=n_labels)
    tokenizer = AutoTokenizer.from_pretrained(str(body))
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1, truncation=True, max_length=128)
    pipe(["warm-up"])
    return lambda texts: pipe(list(texts), batch_size=len(texts))


def busy_latency(
    server: Server,
    ids: TaskIds,
    texts: Sequence[str],
    labeled: tuple[Sequence[str], Sequence[str], str],
    config: PredictBenchConfig,
) -> dict[str, Any]:
    """Queue a slow-tier training; once its steps run (the first step is done: setup is over), time one more
    step with no request (the training's own pace), then single-text /predict calls on new texts at
    ``feed_rate`` calls/s for ``feed_s`` seconds (a feed); then ``ack_labels`` webhook labels (``labeled``:
    texts, labels, config XML) at ``ack_rate`` a second; then /predict back to back (like the idle batch-1 row)
    until the texts run out or the training ends. Each phase reports its latencies and how many steps the
    training made meanwhile. The server is stopped afterwards, so a training still running is cut short."""
    server.post(f"/api/projects/{PROJECT}/train?tier=setfit", {})
    deadline = time.monotonic() + config.timeout_s
    first = _wait_for_step(server, 1, deadline)
    alone = _wait_for_step(server, first[0] + 1, deadline)
    n_paced = int(config.feed_rate * config.feed_s)
    paced = _calls_while_training(server, ids, texts[:n_paced], interval_s=1 / config.feed_rate)
    acks = _acks_while_training(server, ids, labeled, n=config.ack_labels, rate=config.ack_rate)
    back_to_back = _calls_while_training(server, ids, texts[n_paced:], interval_s=0.0)
    return {
        **back_to_back,
        "training_step_s_alone": round(alone[1] - first[1], 2),
        "paced": {"rate_per_s": config.feed_rate, **paced},
        "acks": acks,
        "training_state_at_end": _slow_state(server),
    }


def _acks_while_training(
    server: Server, ids: TaskIds, labeled: tuple[Sequence[str], Sequence[str], str], *, n: int, rate: float
) -> dict[str, Any]:
    """``n`` ANNOTATION_CREATED webhooks on new tasks (the texts cycled) started every ``1 / rate`` s while the
    slow tier runs; ack latency of each (send to 2xx answer)."""
    texts, golds, xml = labeled
    control = _control(server)
    state_at_start, start_step = _slow_state(server), _step(_slow_job(server)) or 0
    latencies: list[float] = []
    in_app: list[float | None] = []
    began = time.perf_counter()
    for i in range(n):
        wait = began + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        (task,) = ids.take(1)
        text, gold = texts[i % len(texts)], golds[i % len(golds)]
        body = annotation_event(PROJECT, task, text, [gold], control=control, label_config=xml)
        t0 = time.perf_counter()
        server.post("/webhook", body)
        latencies.append((time.perf_counter() - t0) * 1000)
        in_app.append(server.last_app_ms)
    seconds = time.perf_counter() - began
    end_step = _step(_slow_job(server))
    return {
        "labels": len(latencies),
        "rate_per_s": rate,
        "achieved_per_s": round(len(latencies) / seconds, 1) if seconds else None,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else None,
        **_in_app(in_app),
        "training_state": [state_at_start, _slow_state(server)],
        "training_steps": end_step - start_step if end_step is not None else None,
    }


def _calls_while_training(server: Server, ids: TaskIds, texts: Sequence[str], *, interval_s: float) -> dict[str, Any]:
    """Single-text calls started every ``interval_s`` (0: back to back) while the slow tier runs."""
    latencies: list[float] = []
    in_app: list[float | None] = []
    start_step = _step(_slow_job(server)) or 0
    began = time.perf_counter()
    for i, text in enumerate(texts):
        if i % 10 == 0 and _slow_state(server) != "running":
            break
        wait = began + i * interval_s - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        t0 = time.perf_counter()
        predict_http(server, ids, [text])
        latencies.append((time.perf_counter() - t0) * 1000)
        in_app.append(server.last_app_ms)
    end_step = _step(_slow_job(server))
    return {
        "calls": len(latencies),
        "seconds": round(time.perf_counter() - began, 1),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else None,
        **_in_app(in_app),
        "training_steps": end_step - start_step if end_step is not None else None,
    }


def _in_app(times: Sequence[float | None]) -> dict[str, float | None]:
    """p50 and p99 of the server's own time (``Server-Timing``) of the same requests: what the app spent of each
    latency (the rest is waitress's queue, the loopback and this client)."""
    known = [t for t in times if t is not None]
    return {"app_p50_ms": percentile(known, 50), "app_p99_ms": percentile(known, 99)}


def _step(job: dict[str, Any]) -> int | None:
    """The step a running SetFit job reported last ("step 12/200"), or None."""
    message = str(job.get("message") or "")
    return int(message.split()[1].split("/")[0]) if message.startswith("step ") else None


def _wait_for_step(server: Server, step: int, deadline: float) -> tuple[int, float]:
    """Wait until the slow-tier job reports at least ``step`` (or stops); (step reached, when)."""
    while time.monotonic() < deadline:
        job = _slow_job(server)
        reached = _step(job)
        if (reached is not None and reached >= step) or job.get("state") in ("done", "failed"):
            return reached or 0, time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"the slow-tier training did not reach step {step} in time")


def _slow_job(server: Server) -> dict[str, Any]:
    return dict(server.status()["training"].get("setfit") or {})


def _slow_state(server: Server) -> str:
    return str(_slow_job(server).get("state", "none"))


# --------------------------------------------------------------------------------------------------- accuracy


def accuracy_rows(server: Server, ids: TaskIds, rows: dict[str, list[str]]) -> dict[str, Any]:
    """Served (ONNX, over HTTP) accuracy of the current version vs the same heads on the torch body, and vs
    heads fitted on torch embeddings of the same labels (``serve_precision=torch``)."""
    from backend.models.encoder import Encoder
    from backend.models.heads import fit_head
    from backend.models.serving import split_source

    control, gold = _control(server), rows["eval_labels"]
    served = []
    for i in range(0, len(rows["eval"]), 32):
        out = predict_http(server, ids, rows["eval"][i : i + 32])
        served += [r["result"][0]["value"]["choices"][0] for r in out["results"]]
    version = server.status()["current"]
    artifact = Path(version["artifact_path"]) if version and version.get("artifact_path") else None
    meta = json.loads((artifact / "meta.json").read_text()) if artifact else {}
    body, precision = split_source(str(meta.get("body_path", "")))
    torch_body = Encoder.load(body, max_seq_length=128, batch_size=32)
    heads = _load_heads(artifact) if artifact else {}
    eval_emb = torch_body.encode(rows["eval"])
    same = heads[control].predict_proba(eval_emb).argmax(1)
    refit = fit_head(
        heads[control].labels, False, torch_body.encode(rows["train"]), [[x] for x in rows["train_labels"]], seed=42
    )
    names = heads[control].labels
    acc = {
        "served": _acc(served, gold),
        "torch_same_version": _acc([names[j] for j in same], gold),
        "torch_trained": _acc([names[j] for j in refit.predict_proba(eval_emb).argmax(1)], gold) if refit else None,
    }
    return {"n_eval": len(gold), "served_body": precision, "version": version["name"] if version else None, **acc}


def _control(server: Server) -> str:
    return str(server.status()["controls"][0]["name"])


def _load_heads(artifact: Path) -> dict[str, Any]:
    import joblib

    return dict(joblib.load(artifact / "heads.joblib"))


def _acc(predicted: Sequence[str], gold: Sequence[str]) -> float:
    return round(float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)])), 4)


# -------------------------------------------------------------------------------------------------------- run


def run_predict_bench(config: PredictBenchConfig, progress: Progress = print) -> dict[str, Any]:
    """The whole measurement (see the module docstring); returns the report ``table`` and ``summary`` read."""
    began = time.perf_counter()
    say = progress
    progress = lambda message: say(f"[{time.perf_counter() - began:7.1f} s] {message}")  # noqa: E731
    rows, labels = read_rows(config)
    xml = labeling_config(labels)
    measure = rows["measure"]
    n, k = config.n, min(config.n, config.single_calls)
    texts = (measure[:n], measure[n : n + k], measure[n + k : n + 2 * k], measure[n + 2 * k :])
    report: dict[str, Any] = {"data": str(config.data), "config": _config_json(config), "load_start": _load()}
    if threading.current_thread() is threading.main_thread():  # SIGTERM (e.g. `timeout`) still stops the servers
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="tagloop-bench-predict-") as tmp:
        data_dir = Path(tmp)
        server = Server(data_dir, config)
        try:
            report |= _serve_phases(server, data_dir, config, (rows, labels, xml), texts, progress)
        finally:
            server.stop()
    report["load_end"] = _load()
    progress("done")
    return report


def _serve_phases(
    server: Server,
    data_dir: Path,
    config: PredictBenchConfig,
    project: tuple[dict[str, list[str]], tuple[str, ...], str],
    texts: tuple[list[str], list[str], list[str], list[str]],
    progress: Progress,
) -> dict[str, Any]:
    """Startup, labeling, a fast version; speed against the pipeline and accuracy on it; latency under training."""
    rows, labels, xml = project
    b32, b1, conc, busy = texts
    progress("starting tagloop serve (first start exports and checks the ONNX body)")
    started = time.perf_counter()
    server.wait_up(config.timeout_s)
    server.start_worker()
    server.post("/setup", {"project": f"{PROJECT}.1", "schema": xml})
    ids = TaskIds(1)
    predict_http(server, ids, rows["eval"][:1])  # waits for the served body
    out: dict[str, Any] = {"startup_s": round(time.perf_counter() - started, 1)}
    progress(f"labeling {len(rows['train'])} rows through /webhook, then a fast-tier version")
    _label(server, ids, rows, xml)
    out["version"] = _train_fast(server, config.timeout_s)
    out["serving"] = _serving_json(data_dir)
    out |= _speed(server, ids, data_dir, (labels, xml), (b32, b1, conc), config, progress)
    progress(f"accuracy on {len(rows['eval'])} held-out rows: served vs torch")
    out["accuracy"] = accuracy_rows(server, ids, rows)
    out["rss_serving_mb"] = server.peak_rss_mb()
    out["worker_rss_serving_mb"] = server.worker_peak_rss_mb()
    progress(
        f"while a slow-tier training (up to {config.slow_steps} SetFit steps) runs: single-text /predict at "
        f"{config.feed_rate:g}/s for {config.feed_s:g} s, {config.ack_labels} webhook labels at "
        f"{config.ack_rate:g}/s, then /predict back to back"
    )
    labeled = (rows["eval"], rows["eval_labels"], xml)
    out["busy"] = busy_latency(server, ids, busy, labeled, config)
    out["rss_training_mb"] = server.peak_rss_mb()
    out["worker_rss_training_mb"] = server.worker_peak_rss_mb()
    return out


def _speed(
    server: Server,
    ids: TaskIds,
    data_dir: Path,
    project: tuple[tuple[str, ...], str],
    texts: tuple[list[str], list[str], list[str]],
    config: PredictBenchConfig,
    progress: Progress,
) -> dict[str, Any]:
    """HTTP /predict (texts it never saw), the served model in-process and the pipeline, interleaved."""
    from backend.bootstrap import build
    from backend.config import Settings
    from backend.labelstudio.label_config import parse_label_config

    labels, xml = project
    b32, b1, conc = texts
    progress("loading the served model in-process and the HF pipeline on the same body")
    pipe = load_pipeline(_body_dir(data_dir), len(labels))
    services = build(Settings(data_dir=data_dir), role="cli")
    try:
        model = services.models.get(_stored_project(services), parse_label_config(xml))
        name = parse_label_config(xml).controls[0].name
        calls = {
            "http": lambda t: predict_http(server, ids, t),
            "inprocess": lambda t: model.predict({name: list(t)}),
            "pipeline": pipe,
        }
        calls["http"](b1[:2])  # warm-up (the version is loaded)
        calls["inprocess"](b1[:2])
        progress(f"batch 32 on {len(b32)} texts, then batch 1 on {len(b1)}: {ROUNDS} rounds of each system in turn")
        rows = {"b32": interleaved(calls, b32, 32), "b1": interleaved(calls, b1, 1)}
        served_body = model.encoder.source.rpartition("#")[2] or "torch"
    finally:
        services.models.close()
        services.close()
    progress(f"{config.clients} concurrent single-text clients, then batch 32 again (cached embeddings)")
    cached = Timer(lambda t: predict_http(server, ids, t), 32)
    cached.run(b32)
    return {
        "http": {
            "b32": rows["b32"]["http"],
            "b1": rows["b1"]["http"],
            "b1_concurrent": concurrent_singles(server, ids, conc, config.clients),
            "b32_cached": cached.row(),
        },
        "inprocess": {"b32": rows["b32"]["inprocess"], "b1": rows["b1"]["inprocess"], "served_body": served_body},
        "pipeline": {"b32": rows["b32"]["pipeline"], "b1": rows["b1"]["pipeline"]},
    }


def _stored_project(services: Any) -> Any:
    project = services.store.projects.get(PROJECT)
    if project is None:
        raise RuntimeError(f"project {PROJECT} is missing from the bench's store")
    return project


def _label(server: Server, ids: TaskIds, rows: dict[str, list[str]], xml: str) -> None:
    control = _control(server)
    for text, label in zip(rows["train"], rows["train_labels"], strict=True):
        (task,) = ids.take(1)
        server.post("/webhook", annotation_event(PROJECT, task, text, [label], control=control, label_config=xml))


def _train_fast(server: Server, timeout_s: float) -> str:
    server.post(f"/api/projects/{PROJECT}/train?tier=fast", {})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = server.status()
        job = status["training"].get("fast")
        if job and job["state"] in ("done", "failed"):
            if job["state"] == "failed" or not status["current"]:
                raise RuntimeError(f"fast-tier training failed: {job.get('error')}")
            return str(status["current"]["name"])
        time.sleep(0.2)
    raise RuntimeError(f"fast-tier training did not finish in {timeout_s} s")


def _serving_json(data_dir: Path) -> dict[str, Any]:
    """The base body's serving decision (``serving.json``) of the server's data dir."""
    found = sorted((data_dir / "models" / "base-onnx").glob("*/serving.json"))
    if not found:
        return {"served": "unknown"}
    decision = json.loads(found[0].read_text())
    return {k: decision[k] for k in ("body", "served", "reason", "parity", "export_seconds")}


def _body_dir(data_dir: Path) -> Path:
    from backend.models.encoder import bundled_model_path

    body = _serving_json(data_dir).get("body")
    return Path(body) if body else bundled_model_path()


def _config_json(config: PredictBenchConfig) -> dict[str, Any]:
    return {k: v for k, v in config.__dict__.items() if k != "data"}


def _load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "cpus": os.cpu_count()}
