"""Scaled-out mode: PostgreSQL + Redis + `tagloop worker` + two web processes; crashes lose nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import REPO, config_xml, read_rows
from tools.harness import TagloopServer, TagloopWorker, wait_until
from tools.webhooks import annotation_event

NEWS = config_xml("news_topics")
PROJECT = 41


def post(url: str, path: str, body: dict[str, Any], timeout: float = 10) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=timeout)


def event(
    aid: int, task: int, text: str, label: str, updated: str, action: str = "ANNOTATION_CREATED"
) -> dict[str, Any]:
    return annotation_event(
        PROJECT,
        task,
        text,
        [label],
        control="topic",
        label_config=NEWS,
        annotation_id=aid,
        action=action,
        updated_at=updated,
    )


def status(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/api/projects/{PROJECT}/status", timeout=10).json()


def test_two_web_processes_and_a_worker_share_promotions(scaled_env: dict[str, str], tmp_path: Path) -> None:
    rows = read_rows("ag_news", 8, offset=1200)
    with (
        TagloopServer(scaled_env, log_path=tmp_path / "web-a.log") as web_a,
        TagloopServer(scaled_env, log_path=tmp_path / "web-b.log") as web_b,
    ):
        worker = TagloopWorker(scaled_env, log_path=tmp_path / "worker.log").start()
        try:
            assert post(web_a.url, "/setup", {"project": f"{PROJECT}.1", "schema": NEWS}).status_code == 200
            for i, r in enumerate(rows):
                assert post(web_a.url, "/webhook", event(100 + i, 100 + i, r["text"], r["label"], "t1")).ok
            version = wait_until(
                lambda: (s := status(web_b.url))["current"] and s["current"]["n_train"] == 8 and s["model_version"],
                120,
                what="the worker's version, seen from the other web process",
            )
            assert version.startswith(f"{PROJECT}-fast-")
            health = subprocess.run(
                [sys.executable, str(REPO / "docker" / "healthcheck.py"), "worker"],
                env=scaled_env | {"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert health.returncode == 0, f"the container health check does not see the live worker: {health.stderr}"
            body = {"project": PROJECT, "tasks": [{"id": 1, "data": {"text": rows[0]["text"]}}]}
            assert post(web_b.url, "/predict", body).json()["model_version"] == version
            assert post(web_a.url, "/predict", body).json()["model_version"] == version

            # kill the worker in the middle of a slow-tier job while both web processes keep serving
            failures, served = _predict_while(lambda: _kill_during_slow_job(web_a.url, worker), [web_a, web_b], body)
            assert failures == 0 and served > 0
            worker = TagloopWorker(scaled_env, log_path=tmp_path / "worker.log").start()
            slow = wait_until(
                lambda: (j := status(web_a.url)["training"]["setfit"]) and j["state"] == "done" and j,
                240,
                what="the killed slow-tier job to be requeued and finished by a new worker",
            )
            assert slow["attempts"] == 1 and ("is gone" in slow["error"] or "heart-beating" in slow["error"])
            assert status(web_b.url)["model_version"] == slow["version"]
        finally:
            worker.stop()


def _kill_during_slow_job(url: str, worker: TagloopWorker) -> None:
    assert requests.post(f"{url}/api/projects/{PROJECT}/train?tier=setfit", timeout=10).status_code == 202
    wait_until(lambda: status(url)["training"]["setfit"]["state"] == "running", 60, what="the slow job to start")
    time.sleep(1.0)
    worker.kill()


def _predict_while(action: Any, servers: list[TagloopServer], body: dict[str, Any]) -> tuple[int, int]:
    """Run ``action`` while a thread sends /predict to every server; returns (failures, successes)."""
    stop = threading.Event()
    counts = {"failures": 0, "served": 0}

    def loop() -> None:
        while not stop.is_set():
            for server in servers:
                try:
                    ok = post(server.url, "/predict", body).status_code == 200
                except requests.RequestException:
                    ok = False
                counts["served" if ok else "failures"] += 1

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        action()
    finally:
        stop.set()
        thread.join()
    return counts["failures"], counts["served"]


def test_durability_under_kill_9(scaled_env: dict[str, str], tmp_path: Path) -> None:
    """2,000 deliveries with duplicates, updates and deletes while web and worker are SIGKILLed and restarted."""
    rng = random.Random(7)
    rows = read_rows("ag_news", 400, offset=2000)
    events, expected = _event_stream(rows, rng, n=2000)
    web = TagloopServer(scaled_env, log_path=tmp_path / "web.log").start()
    worker = TagloopWorker(scaled_env, log_path=tmp_path / "worker.log").start()
    kills = {"web": 0, "worker": 0}
    try:
        assert post(web.url, "/setup", {"project": f"{PROJECT}.1", "schema": NEWS}).status_code == 200
        kill_at = set(rng.sample(range(100, 1900), 8))
        for i, body in enumerate(events):
            if i in kill_at:
                victim = rng.choice(["web", "worker"])
                kills[victim] += 1
                if victim == "web":
                    web.kill()
                    web.start()
                else:
                    worker.kill()
                    worker.start()
            while True:  # resend until acknowledged, as Label Studio's catch-up would
                try:
                    r = post(web.url, "/webhook", body)
                    assert r.status_code == 200, r.text
                    break
                except requests.RequestException:
                    time.sleep(0.2)
        assert kills["web"] > 0 and kills["worker"] > 0
        stored = _stored(web.url, scaled_env)
        assert stored == expected
        usable = sum(1 for a in expected.values() if not a["deleted"])
        final = wait_until(
            lambda: (s := status(web.url))["current"] and s["current"]["n_train"] == usable and not s["jobs"] and s,
            240,
            what="a version trained on the final annotation set",
        )
        assert final["labels_usable"] == usable
    finally:
        worker.stop()
        web.stop()


def _event_stream(
    rows: list[dict[str, str]], rng: random.Random, n: int
) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    """Random creates, exact duplicates, newer updates, stale (older) updates and deletes; and the final state."""
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    events: list[dict[str, Any]] = []
    state: dict[int, dict[str, Any]] = {}
    clock = 0
    while len(events) < n:
        kind = rng.random()
        live = [a for a, s in state.items() if not s["deleted"]]
        clock += 1
        stamp = f"2026-11-23T10:{clock // 60:02d}:{clock % 60:02d}.{clock:06d}"
        if kind < 0.45 or not live:
            aid = 1000 + len(state)
            row = rows[len(state) % len(rows)]
            body = event(aid, aid, row["text"], row["label"], stamp)
            state[aid] = {"choices": {"topic": [row["label"]]}, "deleted": False, "updated": stamp, "body": body}
        elif kind < 0.65:
            body = rng.choice([state[a] for a in state])["body"]  # exact re-delivery
        elif kind < 0.85:
            aid = rng.choice(live)
            label = rng.choice(labels)
            old = state[aid]["body"]
            body = event(aid, aid, old["task"]["data"]["text"], label, stamp, "ANNOTATION_UPDATED")
            state[aid].update(choices={"topic": [label]}, updated=stamp, body=body)
        elif kind < 0.93:
            aid = rng.choice(live)
            old = state[aid]["body"]
            stale = event(aid, aid, old["task"]["data"]["text"], "World", "2026-01-01T00:00:00", "ANNOTATION_UPDATED")
            body = stale  # out of order: older than what is stored, must not win
        else:
            aid = rng.choice(live)
            body = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": aid}], "project": {"id": PROJECT}}
            state[aid]["deleted"] = True
        events.append(body)
    expected = {aid: {"choices": s["choices"], "deleted": s["deleted"]} for aid, s in state.items()}
    return events, expected


def _stored(url: str, env: dict[str, str]) -> dict[int, Any]:
    from backend.store import SqlStore

    store = SqlStore(env["TAGLOOP_DATABASE_URL"])
    try:
        return {a.id: {"choices": a.choices, "deleted": a.deleted} for a in store.annotations.of_project(PROJECT)}
    finally:
        store.close()
