"""Payload parsing: project ids, text extraction, annotation results."""

from __future__ import annotations

from typing import Any

import pytest

from backend.errors import RequestError, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import parse_label_config
from backend.labelstudio.payloads import (
    WebhookEvent,
    annotation_record,
    control_text,
    html_to_text,
    parse_project_id,
    parse_webhook,
)
from tests.conftest import config_xml


@pytest.mark.parametrize(
    ("value", "expected"), [("12.1700000000", 12), (12, 12), ({"id": 3}, 3), ("5", 5), (None, None), ("", None)]
)
def test_project_id_forms(value: Any, expected: int | None) -> None:
    assert parse_project_id(value) == expected


@pytest.mark.parametrize("value", ["abc", "x.12", True, 1.5, []])
def test_bad_project_id(value: Any) -> None:
    with pytest.raises(RequestError, match="expected an id"):
        parse_project_id(value)


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
    assert parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}, {"id": 2}]}).deleted_ids == [1, 2]
    with pytest.raises(RequestError, match="annotations\\[0\\].id"):
        parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": "x"}]})
