"""Rollback, status and export (labels with provenance; models SetFit loads as is) with the real model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from backend.app import create_app
from backend.bootstrap import build
from backend.cli import app as cli
from tests.backend.test_api_labelstudio import annotation_event, setup_project
from tests.conftest import config_xml, read_rows

pytestmark = pytest.mark.model
NEWS = config_xml("news_topics")
TOXIC = config_xml("toxicity_types")


@pytest.fixture
def trained(settings: Any, encoder: Any) -> Any:
    """Project 31 (news) with two fast versions, and project 32 (toxicity) with one."""
    services = build(settings.replace(fast_tier=True), base_encoder=encoder)
    client = create_app(services=services).test_client()
    setup_project(client, 31, NEWS)
    rows = read_rows("ag_news", 10, offset=900)
    client.post("/predict", json={"project": 31, "tasks": [{"id": 400, "data": {"text": rows[0]["text"]}}]})
    for i, r in enumerate(rows[:6]):
        client.post("/webhook", json=annotation_event(31, NEWS, 400 + i, 400 + i, r["text"], "topic", [r["label"]]))
    assert services.wait_idle(120)
    for i, r in enumerate(rows[6:], start=6):
        client.post("/webhook", json=annotation_event(31, NEWS, 400 + i, 400 + i, r["text"], "topic", [r["label"]]))
    assert services.wait_idle(120)
    setup_project(client, 32, TOXIC)
    toxic = read_rows("jigsaw_toxic", 12, offset=40)
    for i, r in enumerate(toxic):
        labels = [x for x in r["label"].split("|") if x]
        client.post("/webhook", json=annotation_event(32, TOXIC, 600 + i, 600 + i, r["text"], "toxicity", labels))
    assert services.wait_idle(120)
    yield services, client
    services.close()


def test_status_rollback_and_cli(trained: Any) -> None:
    services, client = trained
    status = client.get("/api/projects/31/status").json
    versions = [v["name"] for v in status["versions"]]
    assert len(versions) >= 2 and status["model_version"] == versions[-1]
    assert status["labels_seen"] == 10 and status["labels_usable"] == 10 and status["jobs"] == []
    assert status["training"]["fast"]["state"] == "done"
    r = client.post("/api/projects/31/rollback", json={"version": versions[0]})
    assert r.status_code == 200 and r.json["model_version"] == versions[0] and r.json["previous"] == versions[-1]
    pred = client.post("/predict", json={"project": 31, "tasks": [{"id": 1, "data": {"text": "Markets rallied."}}]})
    assert pred.json["model_version"] == versions[0]
    bad = client.post("/api/projects/31/rollback", json={"version": "31-fast-99"})
    assert bad.status_code == 422 and versions[0] in bad.json["reason"]
    assert services.wait_idle(60)  # the push job after a rollback (no Label Studio configured: nothing to push)

    data_dir = str(services.settings.data_dir)
    out = CliRunner().invoke(cli, ["rollback", "--project", "31", "--version", versions[-1], "--data-dir", data_dir])
    assert out.exit_code == 0, out.output
    shown = CliRunner().invoke(cli, ["status", "--project", "31", "--data-dir", data_dir])
    assert json.loads(shown.stdout)["model_version"] == versions[-1]


def test_export_labels_and_models(trained: Any, tmp_path: Path) -> None:
    from setfit import SetFitModel

    services, _ = trained
    data_dir = str(services.settings.data_dir)
    for project, fmt in ((31, "jsonl"), (32, "csv")):
        result = CliRunner().invoke(
            cli, ["export", "--project", str(project), "--out", str(tmp_path), "--format", fmt, "--data-dir", data_dir]
        )
        assert result.exit_code == 0, result.output
        paths = json.loads(result.stdout.strip().splitlines()[-1])
        labels = Path(paths["labels"]).read_text(encoding="utf-8")
        assert len(labels.strip().splitlines()) == (10 if fmt == "jsonl" else 13)  # csv has a header
        model_dir = next(iter(paths["models"].values()))
        model = SetFitModel.from_pretrained(model_dir, local_files_only=True)
        preds = model.predict(["Stocks and bonds fell sharply.", "You are an idiot and I hate you."])
        assert len(preds) == 2
    first = json.loads((tmp_path / "project-31-labels.jsonl").read_text().splitlines()[0])
    assert first["predicted_by"].startswith("31-zeroshot-")  # task 400 was predicted before it was labeled
    assert first["choices"]["topic"][0] in {"World", "Sports", "Business", "Sci/Tech"} and first["author"] == "1"


def test_retention_keeps_newest_served_and_used_bodies(settings: Any, encoder: Any) -> None:
    services = build(settings.replace(fast_tier=True, keep_versions=2), base_encoder=encoder)
    client = create_app(services=services).test_client()
    setup_project(client, 33, NEWS)
    rows = read_rows("ag_news", 9, offset=1500)
    for i, r in enumerate(rows[:5]):
        client.post("/webhook", json=annotation_event(33, NEWS, 800 + i, 800 + i, r["text"], "topic", [r["label"]]))
    assert services.wait_idle(120)
    client.post("/api/projects/33/train?tier=setfit")
    assert services.wait_idle(300)
    for i, r in enumerate(rows[5:], start=5):
        client.post("/webhook", json=annotation_event(33, NEWS, 800 + i, 800 + i, r["text"], "topic", [r["label"]]))
        assert services.wait_idle(120)
    versions = services.store.versions.of_project(33)
    live = [v for v in versions if v.status != "pruned"]
    assert len(versions) >= 5 and len(live) == 2 and live[-1].name == services.store.projects.get(33).current_version
    assert all(not v.artifact_path for v in versions if v.status == "pruned")
    setfit = next(v for v in versions if v.tier == "setfit")
    # the setfit body serves the fast versions built on it, so its directory survived pruning
    assert setfit.status == "pruned" and (services.settings.models_dir / "33" / setfit.name / "body").is_dir()
    r = client.post("/predict", json={"project": 33, "tasks": [{"id": 1, "data": {"text": rows[0]["text"]}}]})
    assert r.json["model_version"] == live[-1].name
    services.close()


def test_report_per_class_confusion_and_calibration(trained: Any, tmp_path: Path) -> None:
    from backend.models.calibration import reliability

    services, _ = trained
    result = CliRunner().invoke(
        cli, ["report", "--project", "31", "--out", str(tmp_path), "--data-dir", str(services.settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    topic = report["controls"]["topic"]
    assert topic["n"] == 10 and 0.0 <= topic["accuracy"] <= 1.0
    assert set(topic["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}
    assert sum(map(sum, topic["confusion_matrix"])) == 10
    assert 0.0 <= topic["calibration"]["ece"] <= 1.0 and report["versions"]
    assert {"acceptance", "stopping"} <= set(report["insights"])
    for png in ("confusion_topic.png", "calibration_topic.png", "progress.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    y = np.array([0, 1, 1, 0])
    perfect = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    truth = np.eye(2)[y]
    assert reliability(perfect, truth, False)["ece"] == 0.0
    assert reliability(np.full((4, 2), 0.5) + [[1e-9, 0]] * 4, truth, False)["ece"] == pytest.approx(0.0, abs=1e-6)
