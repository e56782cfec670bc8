"""SetFit training: contrastive fine-tuning of the body, then a logistic head per control.

The body is fine-tuned once, on the control with the most labeled rows (SetFit's pair sampling is defined
for one target); every control then gets its own logistic-regression head on the fine-tuned embeddings.
A control whose labels have fewer than two distinct values keeps its zero-shot head.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.config import Settings
from backend.jobs.yielding import Pause, pause_points
from backend.labelstudio.label_config import LabelSpec
from backend.models.classifier import TextClassifier
from backend.models.device import resolve_device
from backend.models.encoder import Encoder, offline
from backend.training.dataset import ControlData
from backend.training.fitting import TrainResult, fit_heads, label_counts, primary_control

log = logging.getLogger(__name__)
DEFAULT_SECONDS_PER_STEP = 1.5
"""A contrastive step of MiniLM at batch 16 on 2 idle cores (measured: 1.1-2.2 s); the first budgeted version's
guess, later ones use the previous version's measurement."""
MIN_STEPS = 8


def train_setfit(
    spec: LabelSpec,
    data: dict[str, ControlData],
    base: Path,
    settings: Settings,
    version: str,
    *,
    progress: Callable[[float, str], None] | None = None,
    pause: Pause | None = None,
    deadline: float | None = None,
    seconds_per_step: float = DEFAULT_SECONDS_PER_STEP,
) -> TrainResult:
    """Slow tier: fine-tune a copy of the body at ``base`` with SetFit, then fit a head per control. ``pause`` is
    called at every layer's forward and backward pass (``yielding.pause_points``); the contrastive steps stop at
    ``deadline`` (``time.monotonic()``) if it comes before the step cap; the step count is sized beforehand from
    ``seconds_per_step`` (measured on the previous version) so the learning-rate schedule fits the budget. ``base``
    is the bundled body, or the last fine-tuned one: a new version resumes the training instead of starting over."""
    started = time.perf_counter()
    primary = primary_control(data, settings)
    encoder = Encoder.load(
        base,
        max_seq_length=settings.max_seq_length,
        batch_size=settings.predict_batch_size,
        device=resolve_device(settings.device),
    )
    report: dict[str, Any] = {"resumed_from": str(base)}
    if settings.setfit_num_iterations > 0 and settings.setfit_max_steps > 0:
        with pause_points(encoder.body, pause):
            report |= fine_tune_body(
                encoder, primary, settings, progress, deadline=deadline, seconds_per_step=seconds_per_step
            )
        encoder.source = f"unsaved:{version}"  # a new body: never share cached embeddings of the base
    heads, metrics = fit_heads(spec, data, encoder, encoder.encode, settings)
    metrics.setdefault(primary.control.name, {})["setfit"] = report
    classifier = TextClassifier(version=version, encoder=encoder, heads=heads)
    return TrainResult(classifier, metrics, label_counts(data), len(primary.texts), time.perf_counter() - started)


def preload_libraries() -> float:
    """Import what a slow-tier job needs (torch, sentence-transformers, SetFit, datasets); returns the seconds.

    `tagloop worker` calls it at start, so a job does not pay several seconds of imports, and the page faults
    and file reads of importing do not land while the web process serves (they run in kernel mode, where the
    idle training priority does not yield the CPU at once).
    """
    started = time.perf_counter()
    offline()
    import datasets  # noqa: F401
    import sentence_transformers  # noqa: F401
    import setfit  # noqa: F401
    import torch  # noqa: F401

    return time.perf_counter() - started


def schedule_steps(settings: Settings, n_labels: int) -> int:
    """The full contrastive schedule at ``n_labels`` labels: SetFit's ``max_steps`` replaces the epoch length, capped at
    one pass over the sampled pairs (before any time budget cuts it)."""
    pairs = 2 * settings.setfit_num_iterations * n_labels
    return min(settings.setfit_max_steps, math.ceil(pairs / settings.setfit_batch_size))


def fine_tune_body(
    encoder: Encoder,
    rows: ControlData,
    settings: Settings,
    progress: Callable[[float, str], None] | None,
    *,
    deadline: float | None = None,
    seconds_per_step: float = 0.0,
) -> dict[str, Any]:
    """SetFit contrastive fine-tuning of ``encoder.body`` in place on one control's labeled rows; stops at the step
    cap or at ``deadline`` (``time.monotonic()``), whichever comes first; with both a deadline and
    ``seconds_per_step``, the planned steps are those that fit. Returns the steps planned and made, and the measured
    seconds per step."""
    offline()
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import TrainerCallback

    control = rows.control
    if control.multi_label:
        y: list[Any] = [[int(label in t) for label in control.labels] for t in rows.targets]
        model = SetFitModel(model_body=encoder.body, multi_target_strategy="one-vs-rest")
    else:
        y = [control.labels.index(t[0]) for t in rows.targets]
        if len(set(y)) < 2:
            log.info("body fine-tuning skipped: one distinct label in %s", control.name)
            return {"steps": 0, "note": "one distinct label: body not fine-tuned"}
        model = SetFitModel(model_body=encoder.body)
    steps = schedule_steps(settings, len(y))
    if deadline is not None and seconds_per_step > 0:  # a schedule that ends when the budget does
        steps = max(MIN_STEPS, min(steps, int((deadline - time.monotonic()) / seconds_per_step)))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tagloop-setfit-") as out:
        args = TrainingArguments(
            output_dir=out,
            batch_size=settings.setfit_batch_size,
            num_epochs=1,
            num_iterations=settings.setfit_num_iterations,
            max_steps=steps,
            seed=settings.seed,
            report_to="none",
            show_progress_bar=False,
            save_strategy="no",
            end_to_end=False,
        )
        steps_done = _StepsCallback(progress, deadline, TrainerCallback)
        callbacks = [steps_done]
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"text": rows.texts, "label": y}),
            callbacks=callbacks,
        )
        trainer.train_embeddings(*trainer.dataset_to_parameters(trainer.train_dataset), args=args)
    encoder.body = model.model_body
    took = time.monotonic() - started
    return {
        "steps_planned": steps,
        "steps": steps_done.steps,
        "stopped_by_budget": steps_done.stopped,
        "seconds_per_step": round(took / steps_done.steps, 3) if steps_done.steps else None,
    }


def _StepsCallback(progress: Callable[[float, str], None] | None, deadline: float | None, base: type) -> Any:
    """A transformers ``TrainerCallback``: step / max_steps as 0-0.85 of the job's progress, and a stop at
    ``deadline`` (the slow tier's time budget)."""

    class StepsCallback(base):  # type: ignore[misc]
        steps = 0
        stopped = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps = int(state.global_step)
            if progress is not None and state.max_steps:
                progress(0.85 * state.global_step / state.max_steps, f"step {state.global_step}/{state.max_steps}")
            if deadline is not None and time.monotonic() >= deadline and state.global_step < state.max_steps:
                control.should_training_stop = True
                self.stopped = True

    return StepsCallback()
