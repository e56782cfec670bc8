"""Bad input gets a 4xx with a JSON reason, never a 500 or a traceback, and loses nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import config_xml
from tools.webhooks import annotation_event

pytestmark = pytest.mark.model
NEWS = config_xml("news_topics")
IMAGE = '<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="a"/><Choice value="b"/></Choices></View>'
DUPES = (
    '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/></Choices>'
    '<Choices name="c" toName="t"><Choice value="x"/><Choice value="y"/></Choices></View>'
)


def check_error(r: Any, status: int, reason_part: str) -> None:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    body = r.get_json()
    assert set(body) == {"error", "reason"} and reason_part in body["reason"], body
    assert "Traceback" not in r.get_data(as_text=True)


@pytest.fixture
def project(client: Any) -> int:
    assert client.post("/setup", json={"project": "2.1", "schema": NEWS}).status_code == 200
    return 2


RAW_CASES = {
    "malformed json": (b'{"tasks": [', 400, "not valid JSON"),
    "non utf-8": (b'{"tasks": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    "empty body": (b"", 400, "body is empty"),
    "json list": (b"[1, 2]", 400, "expected an object"),
}


@pytest.mark.parametrize("endpoint", ["/setup", "/predict", "/webhook"])
@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_raw_body_errors(client: Any, endpoint: str, case: str) -> None:
    raw, status, reason = RAW_CASES[case]
    check_error(client.post(endpoint, data=raw, content_type="application/json"), status, reason)


PREDICT_CASES: dict[str, tuple[dict[str, Any], int, str]] = {
    "missing tasks": ({"project": 2}, 400, "'tasks': got nothing"),
    "tasks not a list": ({"project": 2, "tasks": {"id": 1}}, 400, "expected a list"),
    "task without data": ({"project": 2, "tasks": [{"id": 1}]}, 400, "tasks[0]"),
    "task id not int": ({"project": 2, "tasks": [{"id": "a", "data": {"text": "x"}}]}, 400, "tasks[0].id"),
    "task without text": ({"project": 2, "tasks": [{"id": 1, "data": {"body": "x"}}]}, 422, "no 'text' field"),
    "text is an object": ({"project": 2, "tasks": [{"id": 1, "data": {"text": {"a": 1}}}]}, 422, "expected text"),
    "unknown project": ({"project": 77, "tasks": []}, 422, "project 77 is not set up"),
    "bad project id": ({"project": "abc", "tasks": []}, 400, "expected an id"),
    "image config": ({"project": 2, "tasks": [], "label_config": IMAGE}, 422, "no <Choices> bound to a text object"),
    "duplicate names": ({"project": 2, "tasks": [], "label_config": DUPES}, 422, "duplicate tag names"),
}


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_errors(client: Any, project: int, case: str) -> None:
    body, status, reason = PREDICT_CASES[case]
    check_error(client.post("/predict", json=body), status, reason)


def test_setup_errors(client: Any) -> None:
    check_error(client.post("/setup", json={"schema": NEWS}), 400, "'project': got nothing")
    check_error(client.post("/setup", json={"project": "1.2", "schema": 5}), 400, "'schema'")
    check_error(client.post("/setup", json={"project": "1.2", "schema": IMAGE}), 422, "found ['<Choices>', '<Image>']")
    check_error(client.post("/setup", json={"project": "1.2", "schema": DUPES}), 422, "duplicate tag names ['c']")


def test_empty_and_huge_texts_are_predicted(client: Any, project: int) -> None:
    tasks = [{"id": 1, "data": {"text": ""}}, {"id": 2, "data": {"text": "Stocks rally. " * 75_000}}]  # ~1 MB
    r = client.post("/predict", json={"project": 2, "tasks": tasks})
    assert r.status_code == 200 and len(r.json["results"]) == 2
    assert all(0.0 <= res["score"] <= 1.0 for res in r.json["results"])


def test_limits(settings: Any, encoder: Any) -> None:
    from backend.app import create_app
    from backend.bootstrap import build

    services = build(settings.replace(max_tasks_per_request=2, max_body_bytes=10_000), base_encoder=encoder)
    client = create_app(services=services).test_client()
    client.post("/setup", json={"project": "2.1", "schema": NEWS})
    tasks = [{"id": i, "data": {"text": "x"}} for i in range(3)]
    check_error(client.post("/predict", json={"project": 2, "tasks": tasks}), 422, "limit is 2 per request")
    check_error(client.post("/predict", json={"project": 2, "tasks": [{"data": {"text": "y" * 20_000}}]}), 413, "bytes")
    services.close()


def test_unknown_label_is_refused_and_nothing_is_lost(client: Any, app: Any, project: int) -> None:
    def event(aid: int, label: str, updated: str) -> dict[str, Any]:
        action = "ANNOTATION_UPDATED" if aid == 1 and updated.endswith("2") else "ANNOTATION_CREATED"
        text = "Shares fell sharply."
        return annotation_event(
            2,
            10,
            text,
            [label],
            control="topic",
            label_config=NEWS,
            annotation_id=aid,
            action=action,
            updated_at=updated,
        )

    assert client.post("/webhook", json=event(1, "Business", "2026-01-01T00:00:01")).status_code == 200
    check_error(client.post("/webhook", json=event(1, "Finance", "2026-01-01T00:00:02")), 422, "['Finance'] not in")
    assert app.extensions["tagloop"].store.annotations.get(2, 1).choices == {"topic": ["Business"]}


WEBHOOK_CASES: dict[str, tuple[dict[str, Any], int, str]] = {
    "no action": ({"project": {"id": 2}}, 400, "'action'"),
    "created without annotation": (
        {"action": "ANNOTATION_CREATED", "project": {"id": 2}},
        400,
        "'annotation': got nothing",
    ),
    "annotation id not int": (
        {"action": "ANNOTATION_CREATED", "project": {"id": 2}, "annotation": {"id": "x", "task": 1}},
        400,
        "annotation.id",
    ),
    "task never seen": (
        {"action": "ANNOTATION_CREATED", "project": {"id": 2}, "annotation": {"id": 1, "task": 4242, "result": []}},
        422,
        "task 4242",
    ),
    "result not a list": (
        {"action": "ANNOTATION_CREATED", "project": {"id": 2}, "annotation": {"id": 1, "task": 1, "result": "x"}},
        400,
        "annotation.result",
    ),
    "deleted without list": ({"action": "ANNOTATIONS_DELETED", "annotations": 5}, 400, "'annotations'"),
    "training without project": ({"action": "START_TRAINING"}, 400, "START_TRAINING"),
}


@pytest.mark.parametrize("case", sorted(WEBHOOK_CASES))
def test_webhook_errors(client: Any, project: int, case: str) -> None:
    body, status, reason = WEBHOOK_CASES[case]
    check_error(client.post("/webhook", json=body), status, reason)


def test_unknown_route_and_method_are_json(client: Any) -> None:
    check_error(client.get("/nope"), 404, "")
    check_error(client.get("/predict"), 405, "")
    check_error(client.get("/api/projects/404"), 404, "project 404 is not known")
