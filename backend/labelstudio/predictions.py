"""Probabilities → Label Studio prediction objects (``result`` items, ``score``, ``model_version``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from backend.labelstudio.label_config import ControlSpec, LabelSpec


def confidence(control: ControlSpec, proba: np.ndarray, threshold: float) -> float:
    """Confidence of one prediction row in [0, 1]: top probability (single) or mean certainty (multi)."""
    if len(proba) == 0:
        return 0.0
    if control.multi_label:
        return float(np.mean(np.maximum(proba, 1.0 - proba)))
    return float(np.max(proba))


def chosen(control: ControlSpec, proba: np.ndarray, threshold: float) -> list[str]:
    """The labels a row predicts: argmax (single) or every label at or above ``threshold`` (multi)."""
    if control.multi_label:
        return [label for label, p in zip(control.labels, proba, strict=True) if p >= threshold]
    return [control.labels[int(np.argmax(proba))]]


def prediction(
    spec: LabelSpec,
    probas: Mapping[str, np.ndarray],
    row: int,
    *,
    model_version: str,
    threshold: float,
    score: float,
    truncated: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The LS prediction for task ``row`` (position in the request): one ``choices`` result per control.

    ``score`` is the model's certainty as the project's strategy measures it (``backend.ranking.certainty``), in
    [0, 1]: LS's "Uncertainty sampling" (score ascending) serves the least certain task first and shows it as the
    prediction's percentage. Each result item carries its control's confidence (``score``) and the per-label
    probabilities (``meta.probabilities``). ``truncated``: per control, (n_tasks,) bool; a text the model saw only in
    part (longer than ``max_seq_length`` tokens) gets ``"truncated": true`` in its result's ``meta``.
    """
    results: list[dict[str, Any]] = []
    scores: list[float] = []
    for control in spec.controls:
        proba = probas[control.name][row]
        scores.append(confidence(control, proba, threshold))
        results.append(
            {
                "from_name": control.name,
                "to_name": control.to_name,
                "type": "choices",
                "value": {"choices": chosen(control, proba, threshold)},
                "score": round(scores[-1], 6),
                "meta": {
                    "probabilities": {lab: round(float(p), 6) for lab, p in zip(control.labels, proba, strict=True)}
                },
            }
        )
        if truncated is not None and bool(truncated[control.name][row]):
            results[-1]["meta"]["truncated"] = True
    return {"result": results, "score": round(float(score), 6), "model_version": model_version}


def served_summary(pred: dict[str, Any]) -> dict[str, Any]:
    """What to remember of a served prediction: version, confidence, the choices and probabilities per control.

    ``score`` is the lowest control confidence (the prediction's own ``score`` is the strategy's certainty);
    ``probabilities`` let the review queues judge the flag at the version that served it.
    """
    return {
        "model_version": pred["model_version"],
        "score": min((item["score"] for item in pred["result"]), default=pred["score"]),
        "choices": {item["from_name"]: item["value"]["choices"] for item in pred["result"]},
        "probabilities": {item["from_name"]: item.get("meta", {}).get("probabilities", {}) for item in pred["result"]},
        "truncated": [item["from_name"] for item in pred["result"] if item.get("meta", {}).get("truncated")],
    }
