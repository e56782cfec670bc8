"""The model a simulation step serves after some rows are labeled, under each prior kind, and its scores.

- ``zeroshot``: what tagloop serves. Before ``min_labels_to_train`` labels, the zero-shot prior itself (no version
  trained yet); then ``backend.training.fitting.served_head``: the prior blended with a logistic head (weight
  chosen out of fold, capped at n / (n + prior_strength)) and temperature-calibrated.
- ``none``: a logistic head alone (``fit_head``): labels it has not seen get probability 0, and before two classes
  exist the probabilities are uniform (single choice) or 0.5 (multiple choice).

Shapes: ``labeled`` holds dataset indices of the pool; probabilities are (n, n_labels), column j = label j.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from backend.models.calibration import Calibration
from backend.models.heads import BlendedHead, Head, fit_head
from backend.training.fitting import served_head
from tools.simulation.config import SimulationConfig
from tools.simulation.metrics import THRESHOLD, scores
from tools.simulation.problem import Problem


@dataclass(frozen=True)
class StepModel:
    """What is served at one step: ``head`` (None: no head yet, uniform / 0.5) and the same model without its
    temperatures (``uncalibrated``: same blend weight, both temperatures 1)."""

    head: Head | None
    uncalibrated: Head | None
    blend_weight: float | None
    """Weight of the fitted head in the blend (``zeroshot``; 0 while the prior alone is served); None for ``none``."""
    fitted: bool
    """Whether a fitted logistic head is part of the model."""

    def predict_proba(self, emb: np.ndarray, problem: Problem, *, calibrated: bool = True) -> np.ndarray:
        """(len(emb), n_labels) probabilities."""
        head = self.head if calibrated else self.uncalibrated
        if head is None:
            fill = THRESHOLD if problem.multi_label else 1.0 / len(problem.labels)
            return np.full((len(emb), len(problem.labels)), fill)
        return head.predict_proba(emb)


def head_only(problem: Problem, labeled: np.ndarray, config: SimulationConfig) -> StepModel:
    """Prior ``none``: a logistic head on the labeled rows, if they have two classes."""
    targets = [list(problem.pool_targets[i]) for i in labeled]
    head = fit_head(problem.labels, problem.multi_label, problem.pool_emb[labeled], targets, seed=config.seed)
    return StepModel(head, head, None, head is not None)


def served(problem: Problem, labeled: np.ndarray, config: SimulationConfig) -> StepModel:
    """Prior ``zeroshot``: the model tagloop serves after these labels."""
    if len(labeled) < config.min_labels_to_train:
        return StepModel(problem.prior, problem.prior, 0.0, False)
    targets = [list(problem.pool_targets[i]) for i in labeled]
    head, _ = served_head(
        problem.control,
        problem.prior,
        problem.pool_emb[labeled],
        targets,
        seed=config.seed,
        prior_strength=config.prior_strength,
    )
    if not isinstance(head, BlendedHead):  # served_head always blends; keep the types honest
        return StepModel(head, head, None, True)
    uncalibrated = dataclasses.replace(head, calibration=Calibration(weight=head.calibration.weight))
    return StepModel(head, uncalibrated, float(head.calibration.weight), head.fitted is not None)


def step_model(prior: str, problem: Problem, labeled: np.ndarray, config: SimulationConfig) -> StepModel:
    """The model of prior kind ``prior`` (``config.PRIORS``) after the ``labeled`` pool rows."""
    return served(problem, labeled, config) if prior == "zeroshot" else head_only(problem, labeled, config)


@dataclass(frozen=True)
class Outcome:
    """One step's scores on the eval set and the probabilities the strategy ranks (rows = ``unlabeled``)."""

    main: float
    macro_f1: float
    ece: float
    ece_uncalibrated: float
    eval_proba: np.ndarray
    pool_proba: np.ndarray


def evaluate(model: StepModel, problem: Problem, unlabeled: np.ndarray) -> Outcome:
    """Score ``model`` on the eval set and predict the ``unlabeled`` pool rows (dataset indices)."""
    eval_proba = model.predict_proba(problem.eval_emb, problem)
    main, macro, ece = scores(eval_proba, problem.eval_truth, problem.multi_label)
    if model.uncalibrated is model.head:
        ece_uncalibrated = ece
    else:
        raw = model.predict_proba(problem.eval_emb, problem, calibrated=False)
        ece_uncalibrated = scores(raw, problem.eval_truth, problem.multi_label)[2]
    pool_proba = model.predict_proba(problem.pool_emb[unlabeled], problem)
    return Outcome(main, macro, ece, ece_uncalibrated, eval_proba, pool_proba)
