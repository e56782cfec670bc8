"""Catch-up helpers: the watermark overlap and the race between a task listing and a fresh webhook."""

from __future__ import annotations

from typing import Any

from backend.loop.catchup import _minus_a_second, _older


def test_watermark_overlap_uses_label_studios_filter_format() -> None:
    assert _minus_a_second("2026-11-23T21:57:30.742597Z") == "2026-11-23T21:57:29.742597Z"
    assert _minus_a_second("") == "" and _minus_a_second("not a time") == ""


def test_only_annotations_older_than_the_snapshot_count_as_gone() -> None:
    snapshot = "2026-11-23T21:57:30.000000Z"
    assert _older("2026-11-23T21:57:29.500000Z", snapshot)
    assert not _older("2026-11-23T21:57:30.500000Z", snapshot)  # arrived by webhook after the listing
    assert not _older("", snapshot) and not _older("2026-11-23T21:57:29Z", "")


def test_catch_up_is_queued_only_when_due(services: Any) -> None:
    from tests.conftest import config_xml

    xml = config_xml("news_topics")
    project = services.store.projects.upsert(50, xml, "h", ls_url="http://127.0.0.1:9", ls_token="t")
    assert services.catch_up_if_due(project)
    assert not services.catch_up_if_due(project)  # one is queued or running
    assert services.wait_idle(60)  # nothing listens on port 9: the job fails after its retries
    assert services.jobs.latest(50, "catchup").state == "failed"
    assert not services.catch_up_if_due(project)  # the last one ended less than catch_up_every_s ago
    assert not services.catch_up_if_due(services.store.projects.upsert(51, xml, "h"))  # no Label Studio address
