"""Limits and safety, checked without the model: body size (with and without Content-Length), tasks per /predict,
text length, XML without DTDs or entities, 64-bit ids, no file path taken from a request, SQL only via the ORM."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from backend.config import Settings
from backend.labelstudio.label_config import parse_label_config
from backend.labelstudio.texts import control_text
from tests.conftest import REPO, config_xml

NEWS = config_xml("news_topics")
LIMIT = 4_000


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=LIMIT, max_tasks_per_request=3, max_text_chars=50))
    yield app
    app.extensions["tagloop"].close()


def error(r: Any, status: int, part: str) -> None:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert set(r.json) == {"error", "reason"} and part in r.json["reason"], r.json


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/api/projects/1/rollback"])
def test_body_limit_with_and_without_content_length(app: Flask, path: str) -> None:
    client = app.test_client()
    body = json.dumps({"project": "1.1", "schema": "x" * LIMIT, "version": "v"}).encode()
    error(client.post(path, data=body, content_type="application/json"), 413, f"limit of {LIMIT} bytes")
    chunked = client.post(  # no Content-Length: the stream is cut at the limit, not read to the end
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    error(chunked, 413, f"limit of {LIMIT} bytes")


def test_tasks_per_predict_are_limited_before_any_model_work(app: Flask) -> None:
    client = app.test_client()
    client.post("/setup", json={"project": "1.1", "schema": NEWS})
    tasks = [{"id": i, "data": {"text": "x"}} for i in range(4)]
    error(client.post("/predict", json={"project": "1.1", "tasks": tasks}), 422, "the limit is 3 per request")
    assert app.extensions["tagloop"].models._served == {}  # nothing was loaded


def test_texts_are_cut_to_max_text_chars() -> None:
    spec = parse_label_config(NEWS)
    (control,) = spec.controls
    assert control_text(control, {"text": "a" * 10_000}, task_ref="t", max_chars=50) == "a" * 50
    html = parse_label_config(NEWS.replace("<Text ", "<HyperText ").replace('value="$text"/>', 'value="$text"/>'))
    (hyper,) = html.controls
    assert len(control_text(hyper, {"text": "<p>" + "b" * 10_000 + "</p>"}, task_ref="t", max_chars=50)) == 50


XXE = (
    '<?xml version="1.0"?><!DOCTYPE View [<!ENTITY x SYSTEM "file:///etc/passwd">]><View>'
    '<Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="&x;"/><Choice value="b"/>'
    "</Choices></View>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE View [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><View><Text name="text" value="$text"/>'
    '<Choices name="c" toName="text"><Choice value="&c;"/><Choice value="b"/></Choices></View>'
)
DTD_ONLY = '<!DOCTYPE View SYSTEM "http://127.0.0.1:1/x.dtd">' + NEWS


@pytest.mark.parametrize("config", [XXE, LAUGHS, DTD_ONLY], ids=["external entity", "entity expansion", "external dtd"])
def test_xml_with_dtd_or_entities_is_refused(app: Flask, config: str) -> None:
    client = app.test_client()
    for path, body in (
        ("/setup", {"project": "7.1", "schema": config}),
        ("/predict", {"project": "7.1", "label_config": config, "tasks": []}),
    ):
        r = client.post(path, json=body)
        error(r, 422, "forbidden XML features")
        assert "root:" not in r.get_data(as_text=True)  # no /etc/passwd content
    assert app.extensions["tagloop"].store.projects.get(7) is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/setup", {"project": str(2**64), "schema": NEWS}),
        ("/setup", {"project": 2**63, "schema": NEWS}),
        ("/predict", {"project": "1.1", "tasks": [{"id": 2**64, "data": {"text": "x"}}]}),
        ("/webhook", {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": -(2**64)}]}),
        ("/webhook", {"action": "TASKS_CREATED", "project": {"id": 1}, "tasks": [{"id": 2**70, "data": {}}]}),
        ("/webhook", {"action": "START_TRAINING", "project": {"id": 2**63}}),
    ],
)
def test_ids_beyond_64_bits_are_400_not_an_overflow(app: Flask, path: str, body: dict[str, Any]) -> None:
    client = app.test_client()
    client.post("/setup", json={"project": "1.1", "schema": NEWS})
    error(client.post(path, json=body), 400, "2**63 - 1")


def test_url_ids_beyond_64_bits_are_404(app: Flask) -> None:
    error(app.test_client().get(f"/api/projects/{2**64}"), 404, "no id is larger than 2**63 - 1")


def test_no_path_is_taken_from_a_request(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    client.post("/setup", json={"project": "1.1", "schema": NEWS})
    for version in ("../../../../etc/passwd", "/etc/passwd", str(tmp_path / "tagloop.db")):
        error(
            client.post("/api/projects/1/rollback", json={"version": version}), 422, "expected one of the kept versions"
        )
    assert app.extensions["tagloop"].store.projects.get(1).current_version is None
    assert client.get("/static/pyproject.toml").status_code == 404  # the app serves no files from the disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tagloop.db", "tagloop.db-shm", "tagloop.db-wal"]


def test_sql_goes_through_the_orm() -> None:
    """No SQL strings in the backend except SQLite's fixed PRAGMAs (and the hand-written migrations)."""
    raw = re.compile(r"exec_driver_sql|\btext\(\s*[\"']|\.execute\(\s*f?[\"']")
    offenders = []
    for path in (REPO / "backend").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if raw.search(line) and "PRAGMA" not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
