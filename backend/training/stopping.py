"""Whether more labels still pay: each version's predictions on a fixed *stop set* of the project's tasks, and the
stopping criteria over successive versions.

Stabilizing predictions (``strategies.stopping``, Bloodgood & Vijay-Shanker 2009): Cohen's κ between a version's
predictions on the stop set and those of the version ``stop_every_labels`` labels earlier; once κ has stayed at or
above ``stop_kappa`` for ``stop_window`` checks in a row, new labels no longer change what the model predicts.
Overall uncertainty (Zhu, Wang & Hovy 2008): the mean uncertainty of the unlabeled tasks of the stop set.

The stop set is the ``stop_set_size`` tasks of the project with the smallest hash of (project, task id): fixed as
the pool grows (a new task enters only if its hash is smaller), and two versions are compared on the tasks both
predicted.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import numpy as np

from backend.config import Settings
from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.texts import control_text
from backend.models.registry import ModelRegistry
from backend.ranking import primary
from backend.store.sql_store import SqlStore
from strategies.stopping import cohens_kappa, overall_uncertainty


def stop_set(store: SqlStore, project_id: int, size: int) -> list[int]:
    """The project's stop set: task ids with the smallest sha256 of ``"<project>:<task>"``, ascending by id."""
    ids = store.tasks.ids(project_id)
    digest = {t: hashlib.sha256(f"{project_id}:{t}".encode()).digest() for t in ids}
    return sorted(sorted(ids, key=digest.__getitem__)[:size])


def predict_stop_set(
    store: SqlStore, models: ModelRegistry, project_id: int, spec: LabelSpec, classifier: Any, settings: Settings
) -> tuple[dict[int, int], dict[str, Any]]:
    """A version's predicted label per stop-set task (label index; for multiple choice the bitmask of the labels
    at or above the threshold) and its overall uncertainty on the unlabeled ones (through ``models.predict``)."""
    control = primary(spec)
    ids = stop_set(store, project_id, settings.stop_set_size)
    data = store.tasks.data(project_id, ids)
    ids = [t for t in ids if control.value_key in data.get(t, {})]
    if not ids:
        return {}, {"stop_set": 0}
    texts = [control_text(control, data[t], task_ref=f"task {t}", max_chars=settings.max_text_chars) for t in ids]
    proba = models.predict(classifier, {control.name: texts}, flag_truncated=False).probas[control.name]
    if control.multi_label:
        bits = (proba >= settings.multi_label_threshold).astype(np.int64)
        labels = (bits * (1 << np.arange(proba.shape[1], dtype=np.int64))).sum(axis=1)
    else:
        labels = proba.argmax(axis=1)
    labeled = {ex.task_id for ex in store.annotations.training_set(project_id)}
    pool = np.array([t not in labeled for t in ids])
    report: dict[str, Any] = {"stop_set": len(ids)}
    if pool.any():
        decision = overall_uncertainty(proba[pool], multi_label=control.multi_label)
        report["overall_uncertainty"] = round(decision.value, 4)
    return {t: int(label) for t, label in zip(ids, labels, strict=True)}, report


def stopping_report(store: SqlStore, project_id: int, settings: Settings) -> dict[str, Any]:
    """κ between versions ``stop_every_labels`` apart, overall uncertainty, and a plain recommendation."""
    versions = store.versions.stop_sets(project_id)
    if not versions:
        return {"recommendation": "no trained version yet", "checks": []}
    checkpoints = [versions[0]]
    for v in versions[1:]:
        if v[1] - checkpoints[-1][1] >= settings.stop_every_labels:
            checkpoints.append(v)
    checks: list[dict[str, Any]] = []
    for (_, n_before, before), (name, n, after) in itertools.pairwise(checkpoints):
        common = sorted(set(before) & set(after))
        if common:
            a = np.array([before[t] for t in common])
            b = np.array([after[t] for t in common])
            checks.append({"labels": n, "since": n_before, "version": name, "kappa": round(cohens_kappa(a, b), 4)})
    latest = store.versions.get(versions[-1][0])
    uncertainty = ((latest.metrics if latest else {}).get("stopping") or {}).get("overall_uncertainty")
    window, threshold = settings.stop_window, settings.stop_kappa
    run = 0
    for check in reversed(checks):
        if check["kappa"] < threshold:
            break
        run += 1
    if run >= window:
        since = checks[len(checks) - run]["since"]
        text = (
            f"diminishing returns since label {since}: the model's predictions on {settings.stop_set_size} held tasks "
            f"changed by less than κ {threshold} over the last {run * settings.stop_every_labels} labels"
        )
        stop = True
    elif checks:
        last = checks[-1]
        text = (
            f"labels still change the model: κ {last['kappa']} between label {last['since']} and {last['labels']} "
            f"(stop at κ ≥ {threshold} for {window} checks in a row)"
        )
        stop = False
    else:
        text = f"labels still change the model (first check after {settings.stop_every_labels} more labels)"
        stop = False
    return {
        "recommendation": text,
        "stop": stop,
        "kappa": checks[-1]["kappa"] if checks else None,
        "kappa_threshold": threshold,
        "window": window,
        "overall_uncertainty": uncertainty,
        "checks": checks[-20:],
    }
