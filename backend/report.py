"""``tagloop report``: per-class precision/recall/F1, confusion matrix, calibration and version history.

The numbers come from out-of-fold predictions (``backend.training.evaluation``: the served version's head
procedure, zero-shot prior blended and calibrated, on the served body's cached embeddings of the labeled texts), so
every labeled task is scored by a model that did not see it. Single-choice controls only (multiple-choice controls
are listed with their label counts). Also: suggestion acceptance and the stopping criteria (``backend.insights``),
with ``progress.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Settings
from backend.errors import NotFound, UnprocessableRequest
from backend.insights import insights
from backend.labelstudio.label_config import parse_label_config
from backend.models.calibration import reliability
from backend.models.heads import Head
from backend.services import Services
from backend.training.dataset import ControlData, control_data
from backend.training.fitting import control_out_of_fold

BINS = 10


def project_report(
    services: Services, project_id: int, out: Path, *, sections: Mapping[str, Callable[[], Any]] | None = None
) -> dict[str, Any]:
    """Write ``report.json``, ``confusion_<control>.png``, ``calibration_<control>.png`` and ``progress.png`` under
    ``out``. ``sections``: extra entries of ``report.json`` computed by the caller (e.g. the review plug-in's slice
    audit)."""
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    model = services.models.get(project, spec)
    data = control_data(spec, services.labeled_examples(project_id), max_chars=services.settings.max_text_chars)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"project": project_id, "model_version": model.version, "controls": {}}
    for name, rows in data.items():
        if rows.control.multi_label:
            report["controls"][name] = {"multi_label": True, "label_counts": rows.label_counts()}
            continue
        emb = services.embeddings.encode(model.encoder, rows.texts)
        report["controls"][name] = _control_report(rows, model.heads[name], emb, services.settings, out)
    report["versions"] = [
        {
            "name": v.name,
            "tier": v.tier,
            "status": v.status,
            "n_train": v.n_train,
            "metrics": v.metrics,
            "train_seconds": v.train_seconds,
            "created_at": v.created_at,
        }
        for v in services.store.versions.of_project(project_id)
    ]
    report["insights"] = insights(services.store, project_id, services.settings)
    _plot_progress(services.store.annotations.acceptance_rows(project_id), report["insights"], out / "progress.png")
    for name, section in (sections or {}).items():
        report[name] = section()
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def simulation_report(directory: Path, out: Path) -> dict[str, Any]:
    """Per strategy, the same report for the final model of seed 0 on the simulation's eval set."""
    path = directory / "final_eval_predictions.npz"
    if not path.exists():
        raise NotFound(f"{path} is missing; run `tagloop simulate --out {directory}` first")
    saved = np.load(path, allow_pickle=False)
    labels = tuple(str(x) for x in saved["labels"])
    truth = saved["truth"]
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"simulation": str(directory), "strategies": {}}
    for key in saved.files:
        if not key.startswith("proba__"):
            continue
        name, proba = key.removeprefix("proba__"), saved[key]
        if truth.sum(axis=1).max(initial=0) > 1 or (truth.sum(axis=1) == 0).any():
            report["strategies"][name] = {"multi_label": True}
            continue
        report["strategies"][name] = _scores(truth.argmax(axis=1), proba, labels, out, name)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _control_report(rows: ControlData, head: Head, emb: np.ndarray, settings: Settings, out: Path) -> dict[str, Any]:
    """Out-of-fold scores of the served head's procedure on the labeled rows (``evaluation``)."""
    y = np.array([rows.control.labels.index(t[0]) for t in rows.targets])
    if len(set(y.tolist())) < 2 or np.bincount(y).max() < 2:
        raise UnprocessableRequest(
            f"<Choices name={rows.control.name!r}>: need labeled tasks of at least 2 classes, one of them twice, for "
            f"a report; label counts: {rows.label_counts()}"
        )
    proba = control_out_of_fold(head, rows.control, emb, rows.targets, settings)
    return _scores(y, proba, rows.control.labels, out, rows.control.name)


def _scores(y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], out: Path, name: str) -> dict[str, Any]:
    """Per-class P/R/F1, confusion matrix and calibration of (y (n,), proba (n, k)); PNGs named after ``name``."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pred = proba.argmax(axis=1)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=range(len(labels)), zero_division=0)
    matrix = confusion_matrix(y, pred, labels=range(len(labels)))
    cal = reliability(proba, np.eye(len(labels))[y], False)
    _plot_confusion(matrix, labels, out / f"confusion_{name}.png")
    _plot_calibration(cal, out / f"calibration_{name}.png")
    return {
        "n": len(y),
        "accuracy": round(float((pred == y).mean()), 4),
        "per_class": {
            label: {
                "precision": round(float(p[j]), 4),
                "recall": round(float(r[j]), 4),
                "f1": round(float(f[j]), 4),
                "support": int(support[j]),
            }
            for j, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
        "calibration": cal,
    }


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _plot_confusion(matrix: np.ndarray, labels: tuple[str, ...], path: Path) -> None:
    size = max(4.0, 0.5 * len(labels) + 2)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted (out of fold)")
    ax.set_ylabel("human label")
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _plot_progress(accepted: list[tuple[int, str, bool]], found: dict[str, Any], path: Path) -> None:
    """Left: share of suggestions accepted, rolling over 20 annotations; right: κ of the stopping checks."""
    fig = _figure(10, 4)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    flags = np.array([ok for _, _, ok in accepted], dtype=float)
    if len(flags):
        window = min(20, len(flags))
        rolling = np.convolve(flags, np.ones(window) / window, mode="valid")
        left.plot(np.arange(window, len(flags) + 1), rolling)
    left.set_xlabel("submitted annotations with a suggestion")
    left.set_ylabel("suggestion accepted (rolling 20)")
    left.set_ylim(0, 1)
    left.set_title(f"acceptance (last 100: {found['acceptance']['last_100']})")
    checks = found["stopping"].get("checks") or []
    if checks:
        right.plot([c["labels"] for c in checks], [c["kappa"] for c in checks], "o-")
        right.axhline(found["stopping"]["kappa_threshold"], linestyle="--", color="grey", label="stop threshold")
        right.legend(loc="lower right")
    right.set_xlabel("labels")
    right.set_ylabel("κ vs the version some labels earlier")
    right.set_ylim(0, 1.02)
    right.set_title("stabilizing predictions")
    fig.suptitle(found["stopping"]["recommendation"][:110], fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def _plot_calibration(cal: dict[str, Any], path: Path) -> None:
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    xs = [b["confidence"] for b in cal["bins"]]
    ys = [b["accuracy"] for b in cal["bins"]]
    ax.plot(xs, ys, "o-", label=f"tagloop (ECE {cal['ece']:.3f})")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
