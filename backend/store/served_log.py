"""What /predict records, written behind the response: task data, the prediction served per task, and the
served scores that PSI compares with a version's reference window.

``ServedLog.add`` hands a request's rows to a ``WriteBehind`` and returns; one thread writes what accumulated
from all requests in one transaction (``write_served``). None of it is acknowledged data: a crash loses at
most one write cycle of bookkeeping (Label Studio sends the task again with its annotation). Readers in the
same process (the webhook's review routing, review scans, exports) call ``flush`` first; other processes see
the rows one write cycle later.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert

from backend.store.models import ServedScore
from backend.store.sql_store import SqlStore
from backend.store.tasks import record_predictions, upsert_tasks
from backend.write_behind import WriteBehind

TASKS, PREDICTIONS, SCORES = "tasks", "predictions", "scores"


class ServedLog:
    """/predict's bookkeeping for one store, written behind the responses."""

    def __init__(self, store: SqlStore, *, interval_s: float = 0.0) -> None:
        """``interval_s``: least time between two writes (``WriteBehind``)."""
        self.store = store
        self._seq = itertools.count()
        self._writer = WriteBehind(self._write, name="served-log", interval_s=interval_s)

    def add(
        self,
        project_id: int,
        *,
        tasks: Mapping[int, dict[str, Any]],
        predictions: Mapping[int, dict[str, Any]],
        version: str,
        scores: Sequence[float],
    ) -> None:
        """Queue a request's task data (LS task id → data), served predictions (task id → summary) and scores."""
        items: dict[Hashable, Mapping[Any, Any]] = {(TASKS, project_id): tasks, (PREDICTIONS, project_id): predictions}
        if len(scores):
            items[(SCORES, project_id, version)] = {next(self._seq): float(x) for x in scores}
        self._writer.put(items)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued row is written; False on timeout."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued; later ``add`` calls write synchronously."""
        self._writer.close()

    def _write(self, batch: dict[Hashable, dict[Any, Any]]) -> None:
        write_served(self.store, batch)


def write_served(store: SqlStore, batch: Mapping[Hashable, Mapping[Any, Any]]) -> None:
    """One transaction: tasks first (predictions are kept only for stored tasks), then predictions and scores."""
    keys = [key for key in batch if isinstance(key, tuple)]
    predictions = {(int(key[1]), int(t)): p for key in keys if key[0] == PREDICTIONS for t, p in batch[key].items()}
    scores = [
        {"project_id": key[1], "model_version": key[2], "kind": "served", "score": float(v)}
        for key in keys
        if key[0] == SCORES
        for v in batch[key].values()
    ]
    with store.unit_of_work() as s:
        for key in keys:
            if key[0] == TASKS and batch[key]:
                upsert_tasks(s, int(key[1]), {int(t): d for t, d in batch[key].items()})
        if predictions:
            record_predictions(s, predictions)
        if scores:
            s.execute(insert(ServedScore), scores)
