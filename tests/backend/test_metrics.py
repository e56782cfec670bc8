"""``GET /metrics`` after a short labeling session: request histograms, queue depth, training durations and
failures, served versions and annotation counts, read from the store (so any process reports the same)."""

from __future__ import annotations

import re
import types
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.api.metrics import StoreCollector
from backend.app import create_app
from backend.bootstrap import build
from backend.config import Settings
from backend.models.encoder import Encoder
from backend.services import Services
from backend.store.sql_store import SqlStore
from tests.conftest import config_xml, read_rows
from tools import webhooks

pytestmark = pytest.mark.model
NEWS = config_xml("news_topics")
N_LABELS = 8


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped[(name, frozenset(labels.items()))]


def annotation_event(project: int, aid: int, row: dict[str, str]) -> dict[str, Any]:
    """Task ``aid`` labeled with the row's label in news_topics' ``topic``."""
    return webhooks.annotation_event(project, aid, row["text"], [row["label"]], control="topic", label_config=NEWS)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared fast-training settings, serving with torch (the ONNX export is not what this file measures)."""
    return settings.replace(serve_precision="torch")


@pytest.fixture
def session_app(services: Services) -> Any:
    """Project 1: 8 labels, one deleted again, a fast training; project 2: one label and a failing training."""
    app = create_app(services=services)
    client = app.test_client()
    for pid in (1, 2):
        assert client.post("/setup", json={"project": f"{pid}.1700000000", "schema": NEWS}).status_code == 200
    rows = read_rows("ag_news", N_LABELS + 1)
    for aid, row in enumerate(rows[:N_LABELS], start=1):
        assert client.post("/webhook", json=annotation_event(1, aid, row)).status_code == 200
    assert (
        client.post(
            "/webhook", json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}], "project": {"id": 1}}
        ).status_code
        == 200
    )
    assert client.post("/webhook", json=annotation_event(2, 100, rows[N_LABELS])).status_code == 200
    assert (
        client.post(
            "/predict", json={"project": "1.1", "tasks": [{"id": 500, "data": {"text": "Oil prices rise."}}]}
        ).status_code
        == 200
    )
    assert client.post("/api/projects/1/train?tier=fast").status_code == 202
    assert client.post("/api/projects/2/train?tier=fast").status_code == 202  # one label: fails, is retried, gives up
    assert services.wait_idle(120)
    return app


def test_metrics_after_a_labeling_session(
    session_app: Any, services: Services, settings: Settings, encoder: Encoder
) -> None:
    response = session_app.test_client().get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    spent = re.fullmatch(r"app;dur=([0-9]+\.[0-9]{2})", response.headers["Server-Timing"])  # the app's own time
    assert spent is not None and 0 < float(spent.group(1)) < 60_000, response.headers["Server-Timing"]
    text = response.get_data(as_text=True)
    scraped = samples(text)
    print("\n" + "\n".join(line for line in text.splitlines() if line.startswith("tagloop_") and "_bucket" not in line))

    histogram = "tagloop_http_request_duration_seconds_count"
    assert value(scraped, histogram, method="POST", endpoint="/webhook", status="200") == N_LABELS + 2
    assert value(scraped, histogram, method="POST", endpoint="/predict", status="200") == 1
    assert value(scraped, histogram, method="POST", endpoint="/api/projects/<int:project_id>/train", status="202") == 2
    assert value(scraped, "tagloop_store_up") == 1.0

    assert value(scraped, "tagloop_training_jobs", tier="fast", state="done") == 1
    assert value(scraped, "tagloop_training_jobs", tier="fast", state="failed") == 1
    assert value(scraped, "tagloop_training_jobs", tier="fast", state="queued") == 0
    assert value(scraped, "tagloop_training_jobs", tier="setfit", state="running") == 0
    assert value(scraped, "tagloop_training_failed_attempts_total", tier="fast") == services.settings.job_max_attempts
    assert value(scraped, "tagloop_training_duration_seconds_count", tier="fast") == 1
    assert 0 < value(scraped, "tagloop_training_duration_seconds_sum", tier="fast") < 120
    assert value(scraped, "tagloop_training_duration_seconds_bucket", tier="fast", le="+Inf") == 1

    served = services.store.projects.get(1).current_version
    assert served == "1-fast-1"
    assert value(scraped, "tagloop_model_info", project="1", version=served, tier="fast") == 1
    zero_shot = [k for k in scraped if k[0] == "tagloop_model_info" and ("project", "2") in k[1]]
    assert [dict(k[1])["tier"] for k in zero_shot] == ["zeroshot"]
    assert value(scraped, "tagloop_model_train_examples", project="1") == N_LABELS - 1
    assert value(scraped, "tagloop_annotations", project="1", state="usable") == N_LABELS - 1
    assert value(scraped, "tagloop_annotations", project="1", state="deleted") == 1
    assert value(scraped, "tagloop_tasks", project="1") == N_LABELS + 1

    # a second app on the same database (another web process, which trained nothing) reports the same store values
    other = build(settings, base_encoder=encoder)
    try:
        again = samples(create_app(services=other).test_client().get("/metrics").get_data(as_text=True))
    finally:
        other.close()
    assert value(again, "tagloop_training_jobs", tier="fast", state="done") == 1
    assert value(again, "tagloop_model_info", project="1", version=served, tier="fast") == 1
    assert not [k for k in again if k[0] == histogram]  # request histograms are per process


def test_unreadable_store_gives_store_up_zero() -> None:
    store = SqlStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    families = list(StoreCollector(types.SimpleNamespace(store=store)).collect())  # type: ignore[arg-type]
    store.close()
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("tagloop_store_up", [0.0])]


def test_plug_ins_add_families_through_the_hook(services: Services) -> None:
    """The review plug-in's families (``tagloop_psi``, review queues) arrive through ``Hooks.metric_families``."""
    from prometheus_client.core import GaugeMetricFamily

    names = {f.name for f in StoreCollector(services).collect()}
    assert "tagloop_review_queue_items" in names  # the review plug-in is installed by default
    family = GaugeMetricFamily("tagloop_psi_test", "A plug-in's family.", labels=["project"])
    family.add_metric(["1"], 0.31)
    services.hooks.metric_families.append(lambda s: [family])
    collected = {f.name: f for f in StoreCollector(services).collect()}
    assert [s.value for s in collected["tagloop_psi_test"].samples] == [0.31]


def test_without_plug_ins_there_are_no_review_families(settings: Settings, encoder: Any) -> None:
    bare = build(settings.replace(plugins=""), base_encoder=encoder)
    try:
        names = {f.name for f in StoreCollector(bare).collect()}
    finally:
        bare.close()
    assert "tagloop_review_queue_items" not in names and "tagloop_psi" not in names
