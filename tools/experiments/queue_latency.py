"""Time from an annotator's label to Label Studio serving the new top task, on a 10k-task project.

Usage: TAGLOOP_LS_VENV=.ls-venv python -m tools.experiments.queue_latency [--tasks 10000] [--versions 20]
       [--data ../shared/data/davidson_hate/davidson_hate.csv]

Starts a real Label Studio and a tagloop server on loopback (the process harness in tools/harness.py),
creates a project with "Uncertainty sampling", connects tagloop, imports the tasks (tagloop learns them from
TASKS_CREATED), seeds a few labels, then `--versions` times: label the task `/next` served, and measure the
time until `/next` serves the new version's top-ranked task (tagloop idle, LS on the pushed version). Also
counts the predictions Label Studio stores at the end (bounded by TAGLOOP_PUSH_TOP_K, not by versions × tasks).
The baseline in the same run is the time Label Studio takes to import one version's predictions for every
task (what pushing the whole pool per version would cost). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from tools.harness import LabelStudioServer, TagloopServer, wait_until  # noqa: E402
from tools.harness import ensure_label_studio as ensure_label_studio_venv  # noqa: E402
from tools.labelstudio_project import ls_request  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data" / "davidson_hate" / "davidson_hate.csv"
    )
    args = parser.parse_args()
    with args.data.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[: args.tasks]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    choices = "".join(f'<Choice value="{x}"/>' for x in labels)
    config = f'<View><Text name="text" value="$text"/><Choices name="label" toName="text">{choices}</Choices></View>'
    venv = Path(os.environ.get("TAGLOOP_LS_VENV", REPO / ".ls-venv"))
    with tempfile.TemporaryDirectory(prefix="tagloop-queue-") as tmp:
        env = {"TAGLOOP_DATA_DIR": f"{tmp}/tagloop", "TAGLOOP_TRAIN_EVERY": "0", "HF_HUB_OFFLINE": "1"}
        with (
            LabelStudioServer(ensure_label_studio_venv(venv), Path(tmp) / "ls") as ls,
            TagloopServer(env, log_path=Path(tmp) / "tagloop.log") as tagloop,
        ):
            report = run(ls, tagloop, config, rows, args.versions)
    print(json.dumps(report))


def run(ls: LabelStudioServer, tagloop: TagloopServer, config: str, rows: list[dict[str, str]], versions: int) -> dict:
    client = ls.client()
    pid = client.projects.create(title="queue latency", label_config=config, sampling="Uncertainty sampling").id
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    started = time.perf_counter()
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in rows], return_task_ids=True).task_ids
    )
    print(f"imported {len(ids)} tasks in {time.perf_counter() - started:.1f} s", flush=True)
    gold = {tid: r["label"] for tid, r in zip(ids, rows, strict=True)}
    labeled: list[int] = []

    def annotate(task_id: int) -> None:
        client.annotations.create(
            id=task_id,
            result=[
                {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [gold[task_id]]}}
            ],
        )
        labeled.append(task_id)

    def settled() -> dict | None:
        status = tagloop.call("GET", f"/api/projects/{pid}/status")
        queue = tagloop.call("GET", f"/api/projects/{pid}/queue")
        current = status["current"]
        if status["jobs"] or not queue["tasks"] or not current or current["n_train"] != len(labeled):
            return None
        return queue if client.projects.get(id=pid).model_version == queue["model_version"] else None

    for task_id in ids[:: max(1, len(ids) // 8)][:8]:  # seed labels spread over the pool
        annotate(task_id)
    started = time.perf_counter()
    wait_until(settled, 900, interval=0.2, what="the first version pushed")
    print(f"first version (encodes the whole pool once): {time.perf_counter() - started:.1f} s", flush=True)
    latencies = []
    for _ in range(versions):
        nxt = ls_request(client, "GET", f"/api/projects/{pid}/next").json()
        started = time.perf_counter()
        annotate(int(nxt["id"]))
        queue = wait_until(settled, 300, interval=0.05, what="the new version pushed")
        served = ls_request(client, "GET", f"/api/projects/{pid}/next").json()
        latencies.append(time.perf_counter() - started)
        if served["id"] != queue["tasks"][0]:
            raise SystemExit(f"LS served {served['id']}, tagloop's top task is {queue['tasks'][0]}")
        print(f"version {queue['model_version']}: {latencies[-1]:.2f} s", flush=True)
    stored = ls_request(client, "GET", "/api/predictions/", project=pid).json()
    started = time.perf_counter()  # baseline: one version's predictions for every task, as one bulk import
    bulk = [
        {
            "task": t,
            "model_version": "bulk-baseline",
            "score": 0.5,
            "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [labels0]}}],
        }
        for t, labels0 in ((t, gold[t]) for t in ids)
    ]
    ls_request(client, "POST", f"/api/projects/{pid}/import/predictions", json=bulk).raise_for_status()
    baseline = time.perf_counter() - started
    return {
        "tasks": len(ids),
        "versions": versions,
        "label_to_top_task_p50_s": round(float(np.percentile(latencies, 50)), 2),
        "label_to_top_task_p95_s": round(float(np.percentile(latencies, 95)), 2),
        "predictions_stored_after": len(stored) if isinstance(stored, list) else stored.get("count"),
        "push_top_k": 200,
        "baseline_full_pool_import_s": round(baseline, 2),
        "baseline_over_p50_x": round(baseline / float(np.percentile(latencies, 50)), 1),
    }


if __name__ == "__main__":
    main()
