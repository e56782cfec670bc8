"""``ServedLog``: /predict's bookkeeping written behind the response, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from backend.store import SqlStore
from backend.store.served_log import ServedLog


def summary(version: str, score: float) -> dict[str, object]:
    return {"model_version": version, "score": score, "choices": {"label": ["World"]}}


def test_concurrent_requests_land_in_the_store(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h1")
    store.projects.upsert(2, "<View/>", "h2")
    log = ServedLog(store)

    def request(i: int) -> None:
        project = 1 + i % 2  # both projects in the same write cycles: every task must be stored first
        log.add(
            project,
            tasks={100 + i: {"text": f"text {i}"}},
            predictions={100 + i: summary("v1", i / 100)},
            version="v1",
            scores=[i / 100],
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(40)))
    assert log.flush(10)
    served = {**store.tasks.predictions(1), **store.tasks.predictions(2)}
    assert served == {100 + i: summary("v1", i / 100) for i in range(40)}
    assert store.tasks.get(2, 107) == {"text": "text 7"}
    reviews = store.review
    assert sorted(reviews.scores(1, "v1", "served", newest=100)) == [i / 100 for i in range(0, 40, 2)]
    assert len(reviews.scores(2, "v1", "served", newest=100)) == 20


def test_later_rows_replace_earlier_ones_and_close_writes_the_rest(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h1")
    log = ServedLog(store)
    log.add(1, tasks={5: {"text": "old"}}, predictions={5: summary("v1", 0.1)}, version="v1", scores=[])
    log.add(1, tasks={5: {"text": "new"}}, predictions={5: summary("v2", 0.9)}, version="v2", scores=[0.9])
    log.close()  # writes what is queued
    assert store.tasks.get(1, 5) == {"text": "new"}
    assert store.tasks.predictions(1) == {5: summary("v2", 0.9)}
    log.add(1, tasks={6: {"text": "after close"}}, predictions={}, version="v2", scores=[])  # synchronous now
    assert store.tasks.get(1, 6) == {"text": "after close"}
