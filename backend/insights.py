"""What annotators and leads look at: do annotators accept tagloop's suggestions, and do more labels still pay.

``acceptance``: the share of submitted annotations equal to the suggestion the annotator was shown (recorded with
the annotation by the webhook: the prediction tagloop last served or pushed for the task), over the last 100
and per model version. ``stopping``: ``backend.training.stopping.stopping_report``. Both appear in
``GET /api/projects/<id>/status``, ``tagloop status``, ``/metrics`` and ``tagloop report``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from backend.config import Settings
from backend.store.sql_store import SqlStore
from backend.training.stopping import stopping_report

RECENT = 100


def acceptance(store: SqlStore, project_id: int) -> dict[str, Any]:
    """Accepted share of the last ``RECENT`` submitted annotations that had a suggestion, and per version."""
    rows = store.annotations.acceptance_rows(project_id)
    recent = rows[-RECENT:]
    shown: Counter[str] = Counter(version for _, version, _ in rows)
    taken: Counter[str] = Counter(version for _, version, ok in rows if ok)
    return {
        "last_100": round(sum(ok for _, _, ok in recent) / len(recent), 4) if recent else None,
        "n_last_100": len(recent),
        "n": len(rows),
        "overall": round(sum(taken.values()) / len(rows), 4) if rows else None,
        "by_version": {v: {"n": n, "accepted": taken[v], "share": round(taken[v] / n, 4)} for v, n in shown.items()},
    }


def insights(store: SqlStore, project_id: int, settings: Settings) -> dict[str, Any]:
    """Acceptance and stopping criteria of a project."""
    return {"acceptance": acceptance(store, project_id), "stopping": stopping_report(store, project_id, settings)}
