"""``tagloop review export``: every item of a project's queues with its verdict and provenance, as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backend.errors import NotFound, UnprocessableRequest
from backend.review.queues import QUEUES
from backend.review.routing import review_store
from backend.store.review import DISMISSED, OPEN, RESOLVED

if TYPE_CHECKING:
    from backend.services import Services

STATES = (OPEN, RESOLVED, DISMISSED)


def export_items(
    services: Services, project_id: int, out: Path, *, queues: Sequence[str] = QUEUES, states: Sequence[str] = STATES
) -> tuple[Path, int]:
    """Write ``out`` (JSON lines, one item per line, by item id); returns (path, items written)."""
    if services.store.projects.get(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    bad = [q for q in queues if q not in QUEUES] + [s for s in states if s not in STATES]
    if bad:
        raise UnprocessableRequest(f"unknown queue/state {bad}; queues: {list(QUEUES)}, states: {list(STATES)}")
    items = [i for i in review_store(services).items(project_id, states=states) if i.queue in queues]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item.as_json(), ensure_ascii=False) + "\n")
    return out, len(items)
