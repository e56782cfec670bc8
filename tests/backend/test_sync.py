"""Which pushed tasks a push protects: Label Studio refuses a submit whose pre-filled prediction was deleted."""

from __future__ import annotations

from backend.config import Settings
from backend.loop.sync import imported_apart, protected_tasks, rows_to_import, to_bridge
from backend.store.records import ProjectRecord


def project(pushed: tuple[int, ...], protected: dict[int, float]) -> ProjectRecord:
    return ProjectRecord(id=1, label_config="", config_hash="", pushed_tasks=pushed, protected_tasks=protected)


SETTINGS = Settings(push_protect_head=2, push_protect_s=100.0)


def test_the_first_unlabeled_tasks_of_the_previous_push_are_protected_from_now() -> None:
    kept = protected_tasks(project((5, 6, 7, 8), {}), {6, 7, 8}, SETTINGS, now=1000.0)
    assert kept == {6: 1000.0, 7: 1000.0}  # 5 was labeled: its annotator submitted already


def test_protection_keeps_its_start_until_labeled_or_expired() -> None:
    earlier = {6: 950.0, 7: 850.0, 9: 990.0}
    kept = protected_tasks(project((6, 7, 8), earlier), {6, 7, 8}, SETTINGS, now=1000.0)
    # 6 keeps its start; 7 expired (150 s > 100 s) and is released once, not re-protected; 9 was labeled;
    # 8 is beyond the head of two
    assert kept == {6: 950.0}
    again = protected_tasks(project((6, 7, 8), kept), {6, 7, 8}, SETTINGS, now=1001.0)
    assert again == {6: 950.0, 7: 1001.0}  # released by the last push: protectable again from now


def test_nothing_is_protected_on_the_first_push_or_with_head_zero() -> None:
    assert protected_tasks(project((), {}), {1, 2}, SETTINGS, now=0.0) == {}
    off = Settings(push_protect_head=0)
    assert protected_tasks(project((1, 2), {}), {1, 2}, off, now=0.0) == {}


def test_protected_tasks_ranked_below_the_head_keep_their_prediction_only() -> None:
    rows = [{"task": t, "score": i / 5} for i, t in enumerate((6, 1, 2, 7, 3))]
    kept = rows_to_import(rows, {6: 0.0, 7: 0.0}, head=2)
    assert [r["task"] for r in kept] == [6, 1, 2, 3]  # 6 is in the head: a second prediction; 7 keeps its one


def test_the_queue_is_a_random_warm_up_until_warmup_labels_then_the_strategy() -> None:
    from backend.labelstudio.label_config import parse_label_config
    from backend.ranking import queue_strategy
    from tests.conftest import config_xml

    single = parse_label_config(config_xml("news_topics"))
    own = ProjectRecord(id=1, label_config="", config_hash="", strategy="entropy")
    settings = Settings(warmup_labels=20)
    assert queue_strategy(settings, own, single, n_labeled=0) == "random"
    assert queue_strategy(settings, own, single, n_labeled=19) == "random"
    assert queue_strategy(settings, own, single, n_labeled=20) == "entropy"  # the project's own
    assert queue_strategy(settings, project((), {}), single, n_labeled=20) == "margin"  # the default
    assert queue_strategy(Settings(warmup_labels=0), own, single, n_labeled=0) == "entropy"
    assert queue_strategy(Settings(warmup_strategy="balanced_cold_start"), own, single, n_labeled=3) == (
        "balanced_cold_start"
    )


def test_the_old_versions_second_candidate_is_imported_apart_after_the_bulk() -> None:
    previous = project((5, 6, 7, 8, 9), {})
    protected = {6: 0.0, 7: 0.0, 8: 0.0, 9: 0.0}  # 5 was labeled; 6 is likely open in the editor
    assert imported_apart(previous, protected, imported={1, 6, 7, 8}, head=3) == [7]  # free while 6 and 8 are written
    assert imported_apart(previous, protected, imported={1, 6, 8}, head=3) == []  # 7 keeps its prediction only
    assert imported_apart(previous, {6: 0.0}, imported={1, 6}, head=3) == []  # a single candidate: in the bulk


def test_the_protected_head_of_the_previous_push_is_bridged_unless_the_new_ranking_imports_it() -> None:
    previous = project((5, 6, 7, 8, 9), {})
    protected = {6: 0.0, 7: 0.0, 9: 0.0}  # 5 was labeled; 9: protected by an earlier push
    assert to_bridge(previous, protected, imported={7, 1, 2}, head=2) == {6}  # 7 got its new prediction ranked
    assert to_bridge(previous, protected, imported=set(), head=2) == {6, 7}  # 9 is not among the old version's first
    assert to_bridge(previous, {}, imported=set(), head=2) == set()
