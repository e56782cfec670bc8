"""Every kept version of a project, scored on held-out rows after a run (``tagloop bench loop``): which version came
when, after which trigger, and how accurate it is. Reads the run's tagloop data dir (the servers are stopped)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.bootstrap import build
from backend.config import Settings
from backend.labelstudio.label_config import parse_label_config


def score_versions(
    data_dir: Path, project_id: int, texts: Sequence[str], truth: Sequence[Sequence[str]], *, newest: int = 5
) -> list[dict[str, Any]]:
    """Per version with an artifact (every slow-tier one, for each the fast version trained on the most labels up to
    its count, and the newest ``newest``): tier, labels it was trained on, status, seconds from its job's creation
    (the trigger) to its creation, and its accuracy on the held-out ``texts`` (exact-set match for multiple
    choices). ``truth[i]``: the labels of ``texts[i]``. A run keeps every artifact only with a large
    ``TAGLOOP_KEEP_VERSIONS`` (``tagloop bench loop --score-versions`` sets one)."""
    services = build(Settings(data_dir=data_dir, worker="inprocess"), role="cli")
    try:
        project = services.store.projects.get(project_id)
        if project is None:
            return []
        spec = parse_label_config(project.label_config)
        control = spec.controls[0]
        versions = [v for v in services.store.versions.of_project(project_id) if v.artifact_path]
        slow = [v for v in versions if v.tier != "fast"]
        fast = [v for v in versions if v.tier == "fast"]
        matched = [_fast_at(fast, v.n_train) for v in slow]
        picked = [*versions[-newest:], *slow, *(v for v in matched if v is not None)]
        chosen = sorted({v.name: v for v in picked}.values(), key=lambda v: v.created_at or 0.0)
        jobs = {job.version: job for job in _jobs(services, project_id)}
        out = []
        for version in chosen:
            model = services.models.load_version(project_id, version.name, spec)
            proba = services.models.predict(model, {control.name: list(texts)}, flag_truncated=False).probas
            predicted = _predicted(proba[control.name], control.labels, control.multi_label)
            right = sum(sorted(p) == sorted(t) for p, t in zip(predicted, truth, strict=True))
            job = jobs.get(version.name)
            out.append(
                {
                    "version": version.name,
                    "tier": version.tier,
                    "status": version.status,
                    "n_train": version.n_train,
                    "heldout_accuracy": round(right / len(texts), 4) if texts else None,
                    "trigger_to_version_s": round(version.created_at - job.created_at, 1)
                    if job is not None and version.created_at
                    else None,
                    "train_seconds": version.train_seconds,
                    **({"promotion": version.metrics.get("promotion")} if version.tier != "fast" else {}),
                }
            )
        return out
    finally:
        services.close()


def _fast_at(fast: Sequence[Any], n_train: int) -> Any | None:
    """The fast version trained on the most labels up to ``n_train`` (the newest of those), or None."""
    below = [v for v in fast if v.n_train <= n_train]
    return max(below, key=lambda v: (v.n_train, v.created_at or 0.0)) if below else None


def _jobs(services: Any, project_id: int) -> list[Any]:
    from sqlalchemy import select

    from backend.jobs.queue import _record
    from backend.store.models import Job

    with services.store.session() as s:
        rows = s.scalars(select(Job).where(Job.project_id == project_id, Job.state == "done")).all()
        return [_record(r) for r in rows]


def _predicted(proba: Any, labels: Sequence[str], multi_label: bool) -> list[list[str]]:
    if multi_label:
        return [[label for label, p in zip(labels, row, strict=True) if p >= 0.5] for row in proba]
    return [[labels[int(row.argmax())]] for row in proba]


def summary(scored: list[dict[str, Any]]) -> dict[str, Any]:
    """Every promoted slow-tier version next to the fast version trained on the same number of labels (or the
    nearest below): seconds from its trigger, both accuracies, what its promotion guard compared; the headline keys
    are the first such version's, and the worst trigger-to-promotion time and accuracy gap over all of them. Slow
    versions the guard rejected are listed apart (``slow_rejected``), with their held-out accuracy."""
    pairs = []
    for slow in (v for v in scored if v["tier"] != "fast" and v["status"] == "ready"):
        fast = _fast_at_scored(scored, slow["n_train"])
        pairs.append(
            {
                "version": slow["version"],
                "n_train": slow["n_train"],
                "trigger_to_promoted_s": slow["trigger_to_version_s"],
                "heldout": slow["heldout_accuracy"],
                "fast_version": fast["version"] if fast else None,
                "fast_n_train": fast["n_train"] if fast else None,
                "fast_heldout": fast["heldout_accuracy"] if fast else None,
                "guard": slow.get("promotion"),
            }
        )
    rejected = [
        {
            "version": v["version"],
            "n_train": v["n_train"],
            "heldout": v["heldout_accuracy"],
            "guard": v.get("promotion"),
        }
        for v in scored
        if v["tier"] != "fast" and v["status"] == "rejected"
    ]
    stamp = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not pairs:
        return {"slow_promoted": None, "slow_versions": [], "slow_rejected": rejected, **stamp}
    first = pairs[0]
    gaps = [p["heldout"] - p["fast_heldout"] for p in pairs if p["fast_heldout"] is not None]
    return {
        "slow_promoted": first["version"],
        "slow_n_train": first["n_train"],
        "slow_trigger_to_promoted_s": first["trigger_to_promoted_s"],
        "slow_heldout": first["heldout"],
        "fast_same_labels": first["fast_version"],
        "fast_same_labels_heldout": first["fast_heldout"],
        "slow_max_trigger_to_promoted_s": max(p["trigger_to_promoted_s"] or 0.0 for p in pairs),
        "slow_minus_fast_min_pp": round(100 * min(gaps), 2) if gaps else None,
        "slow_versions": pairs,
        "slow_rejected": rejected,
        **stamp,
    }


def _fast_at_scored(scored: list[dict[str, Any]], n_train: int) -> dict[str, Any] | None:
    below = [v for v in scored if v["tier"] == "fast" and v["n_train"] <= n_train]
    return max(below, key=lambda v: v["n_train"]) if below else None
