"""``tagloop report --slice-terms``: per-term FP/FN rates of the served version's flag decision, measured out of
fold on the project's labeled texts (each text scored by a head fitted without it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import NotFound, UnprocessableRequest
from backend.labelstudio.label_config import parse_label_config
from backend.review.routing import version_moderation
from backend.review.slices import slice_rates
from backend.review.training import labeled_rows
from backend.training.evaluation import MAX_ROWS, subsample
from backend.training.fitting import control_out_of_fold

if TYPE_CHECKING:
    from backend.services import Services


def slice_audit(services: Services, project_id: int, terms: Sequence[str]) -> dict[str, Any]:
    """Overall and per-term flag, FP and FN rates (thresholds of the served version)."""
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    model = services.models.get(project, spec)
    mod = version_moderation(services, spec, model.version)
    if mod is None:
        raise UnprocessableRequest(
            f"project {project_id} has no harmful classes; a slice audit needs a moderation control"
        )
    rows = labeled_rows(services, project_id, mod.control)
    keep = subsample(len(rows.texts), MAX_ROWS, services.settings.seed)
    if len(keep) < 4:
        raise UnprocessableRequest(f"project {project_id}: {len(keep)} labeled texts; a slice audit needs at least 4")
    texts = [rows.texts[i] for i in keep]
    targets = [rows.targets[i] for i in keep]
    emb = services.embeddings.encode(model.encoder, texts)
    proba = control_out_of_fold(model.heads[mod.control.name], mod.control, emb, targets, services.settings)
    harmful = np.array([any(h in t for h in mod.harmful) for t in targets], dtype=bool)
    audit = slice_rates(texts, harmful, mod.flag_matrix(proba), terms)
    return {
        "control": mod.control.name,
        "model_version": model.version,
        "thresholds": {h: mod.threshold(h) for h in mod.harmful},
        "n_texts": len(texts),
        **audit,
    }
