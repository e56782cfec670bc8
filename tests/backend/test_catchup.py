"""Catch-up helpers: the watermark overlap and the race between a task listing and a fresh webhook."""

from __future__ import annotations

from backend.labelstudio.catchup import _minus_a_second, _older


def test_watermark_overlap_uses_label_studios_filter_format() -> None:
    assert _minus_a_second("2026-11-23T21:57:30.742597Z") == "2026-11-23T21:57:29.742597Z"
    assert _minus_a_second("") == "" and _minus_a_second("not a time") == ""


def test_only_annotations_older_than_the_snapshot_count_as_gone() -> None:
    snapshot = "2026-11-23T21:57:30.000000Z"
    assert _older("2026-11-23T21:57:29.500000Z", snapshot)
    assert not _older("2026-11-23T21:57:30.500000Z", snapshot)  # arrived by webhook after the listing
    assert not _older("", snapshot) and not _older("2026-11-23T21:57:29Z", "")
