"""Review queues through the HTTP API: ``POST /api/feedback`` (auth, validation, idempotency, size limit),
annotations routed to the false-positive queue with the real model on davidson_hate, a moderator's verdict fed back
into training, scans, PSI in status and the slice audit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.app import create_app
from backend.bootstrap import build
from backend.config import Settings
from backend.export import export_labels
from backend.labelstudio.label_config import parse_label_config
from backend.models.encoder import Encoder
from backend.review.job import run_review_job
from backend.review.plugin import review_scan_if_due
from backend.review.routing import review_store
from backend.services import Services
from backend.store import AnnotationRecord
from backend.store.records import ReviewProjectRecord
from backend.training.jobs import train_project
from tests.conftest import config_xml, read_rows

REVIEW = "review"

KEY = "review-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODERATION = config_xml("content_moderation")
DAVIDSON = {"hate_speech": "Violating", "offensive_language": "Potentially Harmful", "neither": "Safe"}
PID = 7
MISTAKE = 33


def make_services(tmp_path: Path, encoder: Encoder | None = None, **overrides: Any) -> Services:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_key": KEY,
        "train_every": 0,
        "fast_tier": False,
        "promotion_tolerance": 1.0,
        "serve_precision": "torch",  # no ONNX export and parity check in these tests
        **overrides,
    }
    services = build(Settings(**values), base_encoder=encoder, role="cli")  # jobs run explicitly by the test

    return services


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Any]:
    """A client on services that never load the model (feedback validation needs none)."""
    services = make_services(tmp_path)
    client = create_app(services=services).test_client()
    setup(client, PID, MODERATION)
    yield client
    services.close()


def setup(client: Any, project: int, xml: str) -> None:
    r = client.post("/setup", json={"project": f"{project}.1", "schema": xml})
    assert r.status_code == 200, r.json


def report(**kw: Any) -> dict[str, Any]:
    body = {
        "project": PID,
        "text": "you people are all the same",
        "external_id": "mod-123",
        "predicted": ["Violating"],
        "correct": ["Safe"],
        "reporter": "trust-and-safety-bot",
    }
    return {**body, **kw}


# POST /api/feedback -----------------------------------------------------------------------------------------
def test_feedback_valid_then_duplicate_then_conflict(api: Any) -> None:
    r = api.post("/api/feedback", json=report(), headers=AUTH)
    assert r.status_code == 201, r.json
    item = r.json["item"]
    assert (item["queue"], item["source"], item["human"], item["reporter"]) == (
        "false_positive",
        "feedback",
        ["Safe"],
        "trust-and-safety-bot",
    )
    again = api.post("/api/feedback", json=report(), headers=AUTH)
    assert again.status_code == 200 and again.json["status"] == "duplicate" and again.json["item"]["id"] == item["id"]
    conflict = api.post("/api/feedback", json=report(correct=["Potentially Harmful"]), headers=AUTH)
    assert conflict.status_code == 409 and conflict.json["error"] == "idempotency_conflict"
    missed = api.post(
        "/api/feedback", json=report(external_id=42, predicted=["Safe"], correct=["Violating"]), headers=AUTH
    )
    assert missed.status_code == 201 and missed.json["item"]["queue"] == "false_negative"
    queues = api.get(f"/api/projects/{PID}/review", headers=AUTH).json["queues"]
    assert (queues["false_positive"]["open"], queues["false_negative"]["open"]) == (1, 1)
    listed = api.get(f"/api/projects/{PID}/review?queue=false_positive", headers=AUTH).json["items"]
    assert [i["external_id"] for i in listed] == ["mod-123"]


def test_feedback_unknown_label_names_the_allowed_ones(api: Any) -> None:
    r = api.post("/api/feedback", json=report(correct=["Spam"]), headers=AUTH)
    assert r.status_code == 422 and r.json["error"] == "unknown_label"
    assert "['Spam']" in r.json["reason"] and "['Safe', 'Potentially Harmful', 'Violating']" in r.json["reason"]
    agree = api.post("/api/feedback", json=report(correct=["Violating"]), headers=AUTH)
    assert agree.status_code == 422 and "only flag / no-flag disagreements" in agree.json["reason"]
    assert api.post("/api/feedback", json=report(text=""), headers=AUTH).status_code == 400
    assert api.post("/api/feedback", json=report(project=999), headers=AUTH).status_code == 404
    setup(api, 8, config_xml("news_topics"))
    unmoderated = api.post("/api/feedback", json=report(project=8), headers=AUTH)
    assert unmoderated.status_code == 422 and unmoderated.json["error"] == "not_moderated"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "no Authorization header"), ({"Authorization": "Bearer wrong"}, "not the API key")],
    ids=["missing-key", "wrong-key"],
)
def test_feedback_refuses_missing_or_wrong_key(api: Any, headers: dict[str, str], reason: str) -> None:
    r = api.post("/api/feedback", json=report(), headers=headers)
    assert r.status_code == 401 and reason in r.json["reason"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get(f"/api/projects/{PID}/review", headers=AUTH).json["queues"]["false_positive"]["open"] == 0


def test_feedback_without_a_configured_key_is_refused(tmp_path: Path) -> None:
    services = make_services(tmp_path, api_key="")
    client = create_app(services=services).test_client()
    setup(client, PID, MODERATION)
    r = client.post("/api/feedback", json=report(), headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and r.json["error"] == "auth_not_configured" and "TAGLOOP_API_KEY" in r.json["reason"]
    services.close()


def test_feedback_oversized_body_is_413(api: Any) -> None:
    r = api.post("/api/feedback", json=report(text="x" * 70_000), headers=AUTH)  # feedback_max_bytes = 64 KiB
    assert r.status_code == 413 and r.json["error"] == "payload_too_large"


# the loop with the real model ---------------------------------------------------------------------------------
def annotation(task: int, text: str, labels: list[str], aid: int | None = None, project: int = PID) -> dict[str, Any]:
    result = [{"from_name": "moderation", "to_name": "text", "type": "choices", "value": {"choices": labels}}]
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": project, "label_config": MODERATION},
        "task": {"id": task, "data": {"text": text}},
        "annotation": {"id": aid or task, "task": task, "completed_by": {"email": "ann@example.com"}, "result": result},
    }


@pytest.fixture
def loop(tmp_path: Path, encoder: Encoder) -> Iterator[tuple[Any, Services, list[dict[str, str]]]]:
    """A moderation project on davidson_hate with 33 labeled tasks (one mislabeled), a fast version, and 80 unlabeled tasks (a
    natural slice) predicted by it: their served predictions are what the webhook judges."""
    rows = read_rows("davidson_hate", 400)
    by = {k: [r for r in rows[80:] if r["label"] == k] for k in DAVIDSON}
    labeled = by["neither"][:10] + by["offensive_language"][:14] + by["hate_speech"][:8]
    pool = rows[:80]
    services = make_services(tmp_path, encoder, review_suspect_confidence=0.6)
    client = create_app(services=services).test_client()
    setup(client, PID, MODERATION)
    tasks = [{"id": 1000 + i, "data": {"text": r["text"]}} for i, r in enumerate(pool)]
    client.post("/predict", json={"tasks": tasks, "project": f"{PID}.1"})  # known tasks: the reference window
    for tid, r in enumerate(labeled, start=1):
        assert client.post("/webhook", json=annotation(tid, r["text"], [DAVIDSON[r["label"]]])).status_code == 200
    slip = next(r for r in by["offensive_language"][14:] if r["text"].startswith("Horny MiLF"))  # labeled Safe
    assert client.post("/webhook", json=annotation(MISTAKE, slip["text"], ["Safe"])).status_code == 200
    train_project(services, PID, "fast")
    served = client.post("/predict", json={"tasks": tasks, "project": f"{PID}.1"}).json["results"]
    yield client, services, [{**r, "task": 1000 + i, "pred": p} for i, (r, p) in enumerate(zip(pool, served))]
    services.close()


def flagged_safe(client: Any, pool: list[dict[str, Any]]) -> dict[str, Any]:
    """The unlabeled 'neither' task with the highest harmful probability that tagloop flags."""
    thresholds = client.get(f"/api/projects/{PID}/review", headers=AUTH).json["thresholds_in_force"]
    best: tuple[float, dict[str, Any]] | None = None
    for row in pool:
        probs = row["pred"]["result"][0]["meta"]["probabilities"]
        margins = [probs[h] - thresholds.get(h, 0.5) for h in ("Potentially Harmful", "Violating")]
        if row["label"] == "neither" and max(margins) >= 0 and (best is None or max(margins) > best[0]):
            best = (max(margins), row)
    assert best is not None, "the fast version flags no safe text of the slice"
    return best[1]


def disagreement(probs: dict[str, float], human: str, thresholds: dict[str, float]) -> str | None:
    """The queue a human label sends a served prediction to (None: they agree on flag / no flag)."""
    flagged = any(probs[h] >= thresholds.get(h, 0.5) for h in ("Potentially Harmful", "Violating"))
    if flagged != (human != "Safe"):
        return "false_positive" if flagged else "false_negative"
    return None


@pytest.mark.model
def test_overturned_flag_goes_to_fp_queue_and_a_verdict_trains_a_new_version(loop: Any) -> None:
    client, services, pool = loop
    version = client.get(f"/api/projects/{PID}/status", headers=AUTH).json["model_version"]
    row = flagged_safe(client, pool)
    r = client.post("/webhook", json=annotation(row["task"], row["text"], ["Safe"], aid=5000))
    assert r.status_code == 200 and r.json["review"]["queue"] == "false_positive"
    listed = client.get(f"/api/projects/{PID}/review?queue=false_positive", headers=AUTH).json
    (item,) = listed["items"]
    assert (item["task_id"], item["model_version"], item["human"], item["text"]) == (
        row["task"],
        version,
        ["Safe"],
        row["text"],
    )
    assert item["score"] == pytest.approx(
        max(row["pred"]["result"][0]["meta"]["probabilities"][h] for h in item["predicted"])
    )
    assert [j.tier for j in services.jobs.active(PID)] == ["review"]

    # the review job would create the LS project and task; record that mapping, then deliver the verdict
    reviews = review_store(services)
    reviews.add_review_project(ReviewProjectRecord(900, PID, "false_positive", "moderation", ""))
    reviews.set_ls_task(item["id"], 900, 9001)
    verdict = annotation(9001, row["text"], ["Safe"], aid=7001, project=900)
    verdict["annotation"]["completed_by"] = {"email": "moderator@example.com"}
    done = client.post("/webhook", json=verdict)
    assert done.status_code == 200 and done.json["status"] == "verdict" and done.json["resolved"] == [item["id"]]
    assert services.store.projects.get(900) is None  # a review project is not a tagloop project
    queues = client.get(f"/api/projects/{PID}/review", headers=AUTH).json["queues"]
    assert queues["false_positive"] | {"label_studio_project": None} == {
        "open": 0,
        "resolved": 1,
        "resolved_24h": 1,
        "dismissed": 0,
        "order": "confident",
        "label_studio_project": None,
    }
    new = train_project(services, PID, "fast")
    metrics = services.store.versions.get(new).metrics  # type: ignore[union-attr]
    assert metrics["review"]["moderator_labels"] == 1
    labels = {ex.task_id: ex.choices for ex in services.labeled_examples(PID)}
    assert labels[row["task"]] == {"moderation": ["Safe"]}
    exported = export_labels(services, PID, services.settings.data_dir / "export", "jsonl").read_text().splitlines()
    (mod,) = [r for r in map(json.loads, exported) if r["provenance"] == "moderator"]
    assert (mod["task_id"], mod["choices"], mod["author"]) == (
        row["task"],
        {"moderation": ["Safe"]},
        "moderator@example.com",
    )
    assert mod["predicted_by"] == version


@pytest.mark.model
def test_changed_label_dismisses_and_scans_fill_the_other_queues(loop: Any) -> None:
    client, services, pool = loop
    row = flagged_safe(client, pool)
    client.post("/webhook", json=annotation(row["task"], row["text"], ["Safe"], aid=5000))
    update = annotation(row["task"], row["text"], ["Potentially Harmful"], aid=5000)
    update["action"], update["annotation"]["updated_at"] = "ANNOTATION_UPDATED", "2030-01-01T00:00:00Z"
    assert client.post("/webhook", json=update).json["review"] is None  # the annotator now agrees with the flag
    fp = client.get(f"/api/projects/{PID}/review", headers=AUTH).json["queues"]["false_positive"]
    assert (fp["open"], fp["dismissed"]) == (0, 1)

    # a label that arrives without a webhook (a catch-up from Label Studio's API) and contradicts the served flag
    thresholds = client.get(f"/api/projects/{PID}/review", headers=AUTH).json["thresholds_in_force"]
    missed = next(
        (r, queue)
        for r in pool
        if r["task"] != row["task"]
        and (queue := disagreement(r["pred"]["result"][0]["meta"]["probabilities"], DAVIDSON[r["label"]], thresholds))
    )
    (silent, queue) = missed
    choices = {"moderation": [DAVIDSON[silent["label"]]]}
    services.store.annotations.upsert(
        AnnotationRecord(id=6000, project_id=PID, task_id=silent["task"], choices=choices)
    )

    summary = run_review_job(services, PID, parse_label_config(MODERATION))  # scan the served version's predictions
    assert "not mirrored" in summary["label_studio"]["skipped"] and summary["disagreement_items"] == 1
    (found,) = client.get(f"/api/projects/{PID}/review?queue={queue}", headers=AUTH).json["items"]
    assert (found["task_id"], found["source"], found["human"]) == (silent["task"], "scan", choices["moderation"])
    again = run_review_job(services, PID, parse_label_config(MODERATION))
    assert again["low_confidence_items"] == 0 and again["disagreement_items"] == 0  # once only
    low = client.get(f"/api/projects/{PID}/review?queue=low_confidence", headers=AUTH).json["items"]
    band = services.settings.review_low_confidence_band
    assert low and all(0 <= i["margin"] <= band for i in low)
    assert [i["margin"] for i in low] == sorted(i["margin"] for i in low)  # most uncertain first
    suspects = client.get(f"/api/projects/{PID}/review?queue=label_error", headers=AUTH).json["items"]
    assert MISTAKE in [i["task_id"] for i in suspects]  # found by cross-validation when the version was trained
    assert all(i["margin"] >= 0.6 and i["predicted"] != i["human"] for i in suspects)


@pytest.mark.model
def test_psi_in_status_is_higher_for_a_shifted_stream(loop: Any) -> None:
    client, _, _ = loop
    version = client.get(f"/api/projects/{PID}/status", headers=AUTH).json["model_version"]

    def drift_after(texts: list[str]) -> dict[str, Any]:
        tasks = [{"data": {"text": t}} for t in texts]
        client.post("/predict", json={"tasks": tasks, "project": f"{PID}.1"})
        return client.get(f"/api/projects/{PID}/status", headers=AUTH).json["review"]["drift"]

    same = drift_after([r["text"] for r in read_rows("davidson_hate", 100, offset=2000)])
    assert same["model_version"] == version and same["n_reference"] >= 50 and same["psi"] is not None
    shifted = drift_after([r["text"] for r in read_rows("sms_spam", 200)])
    assert shifted["n_current"] > same["n_current"] and shifted["psi"] > same["psi"]
    assert same["bands"] == [0.1, 0.25] and shifted["band"] in ("moderate", "major")
    scraped = client.get("/metrics", headers=AUTH).get_data(as_text=True)  # the same PSI as a metric
    (line,) = [s for s in scraped.splitlines() if s.startswith("tagloop_psi{")]
    assert f'project="{PID}"' in line and f'version="{version}"' in line
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(shifted["psi"], abs=1e-4)


@pytest.mark.model
def test_slice_audit_in_the_report(loop: Any, tmp_path: Path) -> None:
    from backend.report import project_report

    _, services, _ = loop
    from backend.review.audit import slice_audit

    terms = ["bitch", "nigga", "trash"]
    out = project_report(
        services, PID, tmp_path / "report", sections={"slices": lambda: slice_audit(services, PID, terms)}
    )
    audit = out["slices"]
    assert audit["control"] == "moderation" and audit["n_texts"] == 33
    assert audit["overall"]["n"] == 33 and set(audit["slices"]) == {"bitch", "nigga", "trash"}
    for row in audit["slices"].values():
        assert row["n"] <= 33 and row["flagged"] <= row["n"]


def test_review_cli_lists_shows_and_exports(api: Any, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from backend.cli import app as cli

    assert api.post("/api/feedback", json=report(), headers=AUTH).status_code == 201
    runner, data = CliRunner(), ["--project", str(PID), "--data-dir", str(tmp_path / "data")]
    listed = runner.invoke(cli, ["review", "list", *data])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["queues"]["false_positive"]["open"] == 1
    shown = runner.invoke(cli, ["review", "show", *data, "--queue", "false_positive"])
    assert shown.exit_code == 0 and "you people are all the same" in shown.output and "1 item(s)" in shown.output
    bad = runner.invoke(cli, ["review", "show", *data, "--queue", "spam"])
    assert bad.exit_code == 2 and "expected one of ['false_positive'" in bad.output
    out = tmp_path / "items.jsonl"
    exported = runner.invoke(cli, ["review", "export", *data, "--out", str(out)])
    assert exported.exit_code == 0 and json.loads(exported.output)["items"] == 1
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["external_id"] == "mod-123" and json.loads(line)["reporter"] == "trust-and-safety-bot"


@pytest.mark.model
def test_idle_workers_schedule_a_periodic_review_scan_of_moderated_projects(loop: Any, tmp_path: Path) -> None:
    _, services, _ = loop
    project = services.store.projects.get(PID)
    assert project is not None and project.current_version is not None
    assert review_scan_if_due(services, project) is False  # the review job queued after training is still queued
    (job,) = [j for j in services.jobs.active(PID) if j.tier == REVIEW]
    claimed = services.jobs.claim_id(job.id, "test")
    assert claimed is not None
    services.jobs.finish(job.id, {"disagreement_items": 0})
    assert review_scan_if_due(services, project) is False  # it just ran
    services.settings = services.settings.replace(review_scan_every_s=0.01)
    time.sleep(0.05)
    assert review_scan_if_due(services, project) is True
    assert [j.reason for j in services.jobs.active(PID) if j.tier == REVIEW] == ["periodic review scan"]

    services.store.projects.upsert(PID + 1, config_xml("news_topics"), "h")  # not moderated: never scanned
    services.store.projects.set_current_version(PID + 1, f"{PID + 1}-fast-1")
    other = services.store.projects.get(PID + 1)
    assert other is not None and other.current_version and review_scan_if_due(services, other) is False
