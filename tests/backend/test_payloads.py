"""Payload parsing: project ids, the error reasons of the declared bodies, text extraction, annotation results."""

from __future__ import annotations

from typing import Any

import pytest

from backend.errors import RequestError, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import parse_label_config
from backend.labelstudio.payloads import PredictBody, SetupBody, WebhookEvent, annotation_record, parse_webhook
from backend.labelstudio.texts import control_text, html_to_text
from backend.validation import parse
from tests.conftest import config_xml


@pytest.mark.parametrize(
    ("value", "expected"), [("12.1700000000", 12), (12, 12), ({"id": 3}, 3), ("5", 5), (None, None), ("", None)]
)
def test_project_id_forms(value: Any, expected: int | None) -> None:
    assert parse(PredictBody, {"tasks": [], "project": value}).project == expected


@pytest.mark.parametrize("value", ["abc", "x.12", True, 1.5, [], str(2**64)])
def test_bad_project_id(value: Any) -> None:
    with pytest.raises(RequestError, match="'project': got .*, expected an id like 12"):
        parse(PredictBody, {"tasks": [], "project": value})


@pytest.mark.parametrize(
    ("body", "error", "reason"),
    [
        ({}, RequestError, "'tasks': got nothing, expected a list of task objects"),
        ({"tasks": {"id": 1}}, RequestError, "'tasks': got an object, expected a list of task objects"),
        ({"tasks": [5]}, RequestError, "tasks[0]: got 5, expected an object"),
        (
            {"tasks": [{"id": "a", "data": {}}]},
            RequestError,
            "tasks[0].id: got 'a', expected the task's Label Studio id",
        ),
        ({"tasks": [{"id": 2**63, "data": {}}]}, RequestError, "at most 2**63 - 1"),
        ({"tasks": [{"id": 1}]}, RequestError, "tasks[0].data: got nothing, expected an object with the task's fields"),
        ({"tasks": [{"data": {}}] * 3}, UnprocessableRequest, "'tasks': got 3 tasks; the limit is 2 per request"),
        ([1], RequestError, "body: got a list of 1 items, expected an object"),
    ],
)
def test_predict_body_errors_name_field_value_and_allowed(body: Any, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as raised:
        parse(PredictBody, body, context={"max_tasks": 2})
    assert type(raised.value) is error and reason in raised.value.reason, raised.value.reason


def test_bodies_keep_fields_they_do_not_declare() -> None:
    body = {"project": "3.1", "schema": "<View/>", "hostname": 5, "extra_params": {"a": 1}}
    setup = parse(SetupBody, body)
    assert (setup.project, setup.schema_, setup.hostname, setup.model_extra) == (
        3,
        "<View/>",
        None,
        {"extra_params": {"a": 1}},
    )
    task = parse(PredictBody, {"tasks": [{"id": 1, "data": {"text": "x"}, "meta": {}}], "params": {}}).tasks[0]
    assert task.model_extra == {"meta": {}}


def test_html_and_paragraph_text() -> None:
    assert html_to_text("<p>Hello&nbsp;<b>world</b></p><script>evil()</script>") == "Hello world"
    spec = parse_label_config(
        '<View><Paragraphs name="p" value="$d" textKey="t"/><Choices name="c" toName="p">'
        '<Choice value="a"/><Choice value="b"/></Choices></View>'
    )
    text = control_text(spec.controls[0], {"d": [{"t": "one"}, {"t": "two"}]}, task_ref="t", max_chars=100)
    assert text == "one\ntwo"


def test_text_is_truncated_and_missing_field_named() -> None:
    control = parse_label_config(config_xml("news_topics")).controls[0]
    assert control_text(control, {"text": "x" * 50}, task_ref="t", max_chars=10) == "x" * 10
    assert control_text(control, {"text": 42}, task_ref="t", max_chars=10) == "42"
    with pytest.raises(UnprocessableRequest, match="no 'text' field.*data keys: \\['body'\\]"):
        control_text(control, {"body": "hi"}, task_ref="tasks[0]", max_chars=10)


def _event(result: list[dict[str, Any]]) -> WebhookEvent:
    return parse_webhook(
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": 4, "label_config": "<View/>"},
            "annotation": {"id": 9, "task": 3, "result": result, "completed_by": {"email": "a@b.c"}},
        }
    )


def test_annotation_record_multi_label() -> None:
    spec = parse_label_config(config_xml("toxicity_types"))
    result = [
        {"from_name": "toxicity", "to_name": "text", "type": "choices", "value": {"choices": ["toxic", "insult"]}}
    ]
    rec = annotation_record(_event(result), spec)
    assert (rec.id, rec.project_id, rec.task_id, rec.author) == (9, 4, 3, "a@b.c")
    assert rec.choices == {"toxicity": ["toxic", "insult"]}
    assert annotation_record(_event([]), spec).choices == {}


def test_unknown_label_is_refused_naming_allowed_values() -> None:
    spec = parse_label_config(config_xml("news_topics"))
    result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["Weather"]}}]
    with pytest.raises(UnknownLabel, match="\\['Weather'\\].*allowed: \\['World', 'Sports', 'Business', 'Sci/Tech'\\]"):
        annotation_record(_event(result), spec)


def test_two_choices_for_single_control_refused() -> None:
    spec = parse_label_config(config_xml("news_topics"))
    result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["World", "Sports"]}}]
    with pytest.raises(UnprocessableRequest, match="single-choice"):
        annotation_record(_event(result), spec)


def test_deleted_event_needs_ids() -> None:
    assert parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}, 2]}).deleted_ids == [1, 2]
    with pytest.raises(RequestError, match="annotations\\[0\\].id: got 'x'"):
        parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": "x"}]})


def test_events_are_checked_by_their_action_and_others_are_kept_loose() -> None:
    created = parse_webhook({"action": "TASKS_CREATED", "project": 4, "tasks": [{"id": 7, "data": {"text": "x"}}]})
    assert (created.project_id, created.tasks) == (4, [(7, {"text": "x"})])
    ignored = parse_webhook({"action": "TASKS_DELETED", "project": {"id": 4, "label_config": 5}, "tasks": [{"id": 7}]})
    assert (ignored.action, ignored.project_id, ignored.label_config, ignored.tasks) == ("TASKS_DELETED", 4, None, [])
    with pytest.raises(RequestError, match="^'annotation': got nothing, expected the annotation object$"):
        parse_webhook({"action": "ANNOTATION_CREATED", "project": {"id": 4}})
    with pytest.raises(RequestError, match="^'action': got 5, expected an event name"):
        parse_webhook({"action": 5})
