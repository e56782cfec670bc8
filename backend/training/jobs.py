"""``train_project``: stored labels of a project → a new model version, promoted unless it is worse; the
``fast``, ``setfit`` and ``transformer`` job handlers (``register_jobs``).

Three tiers share this path:
- ``fast``: refit the heads on cached embeddings of the served body (about a second);
- ``setfit``: SetFit contrastive fine-tuning of a fresh copy of the base body, then heads;
- ``transformer``: full fine-tuning of ``transformer_model`` (AutoModelForSequenceClassification), chosen as the
  slow tier by ``slow_tier=transformer`` or asked for explicitly.
A slow-tier version whose accuracy is below the served body's by more than ``promotion_tolerance`` is recorded
with status ``rejected`` and not served (``_guard``: on the labels that arrived during a SetFit training, else
cross-validated on the training labels).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from backend.jobs.handlers import JobContext, JobHandlers, Pause, Progress, no_progress
from backend.jobs.kinds import TRAINING_KINDS, JobKind
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.models.classifier import TextClassifier
from backend.models.serving import split_source
from backend.services import Services
from backend.store.records import ModelVersionRecord
from backend.training.dataset import ControlData, control_data
from backend.training.evaluation import fresh_fold_accuracy
from backend.training.fitting import TrainResult, mean_cv_accuracy, served_cv_accuracy, train_fast
from backend.training.retention import prune_versions
from backend.training.setfit_training import DEFAULT_SECONDS_PER_STEP, train_setfit
from backend.training.stopping import predict_stop_set

log = logging.getLogger(__name__)
FAST, SLOW, TRANSFORMER = JobKind.FAST.value, JobKind.SETFIT.value, JobKind.TRANSFORMER.value
MAX_PLANNED_SECONDS_PER_STEP = 2 * DEFAULT_SECONDS_PER_STEP
TRAINING_TIERS = (FAST, SLOW, TRANSFORMER)


def register_jobs(handlers: JobHandlers) -> None:
    """The training kinds' handlers."""
    for kind in TRAINING_KINDS:
        handlers.register(kind, _handler)


def _handler(services: Services, context: JobContext) -> dict[str, Any]:
    job = context.job
    version = train_project(services, job.project_id, job.kind, progress=context.progress, pause=context.pause)
    record = services.store.versions.get(version)
    return {"version": version, "status": record.status if record else None}


def train_project(
    services: Services,
    project_id: int,
    tier: str = SLOW,
    *,
    progress: Progress = no_progress,
    pause: Pause | None = None,
) -> str:
    """Train a ``tier`` version on the project's usable labels, record it, publish it if it is not worse; returns
    the version's name. ``pause`` is called throughout a slow-tier training (``yielding.pause_points``)."""
    if tier not in TRAINING_TIERS:
        raise ValueError(f"tier: got {tier!r}, expected one of {list(TRAINING_TIERS)}")
    store, settings = services.store, services.settings
    project = store.projects.get(project_id)
    if project is None:
        raise LookupError(f"project {project_id} is unknown to tagloop; connect it from Label Studio first")
    spec = parse_label_config(project.label_config)
    started = time.monotonic()
    examples = services.labeled_examples(project_id)
    data = control_data(spec, examples, max_chars=settings.max_text_chars)
    version = f"{project_id}-{tier}-{store.versions.count(project_id, tier) + 1}"
    log.info("training %s on %d labeled tasks", version, len(examples))
    served = services.models.get(project, spec)
    if tier == FAST:
        embed = lambda texts: services.embeddings.encode(served.encoder, texts)  # noqa: E731
        result = train_fast(spec, data, served.encoder, embed, settings, version)
    elif tier == TRANSFORMER:
        from backend.training.transformer_training import train_transformer

        base = Path(settings.transformer_model) if settings.transformer_model else services.models.base_path
        result = train_transformer(spec, data, base, settings, version, progress=progress, pause=pause)
    else:
        deadline = None
        if settings.slow_tier_budget_s > 0:
            deadline = started + max(10.0, settings.slow_tier_budget_s - settings.slow_tier_reserve_s)
        base = resume_from(services, served)
        result = train_setfit(
            spec,
            data,
            base,
            settings,
            version,
            progress=progress,
            pause=pause,
            deadline=deadline,
            seconds_per_step=_seconds_per_step(services, project_id),
        )
    path = settings.models_dir / str(project_id) / version
    if path.exists():
        shutil.rmtree(path)
    progress(0.9, "saving")
    distilled = tier == TRANSFORMER and settings.distill
    if distilled:  # keep the teacher next to the version; serve the small body with heads fit on its labels
        result = _distill(services, project_id, spec, data, result, path / "teacher")
    result.classifier.save(path, share_body=tier == FAST or distilled)
    services.models.prepare_serving(project_id, result.classifier)  # new body: ONNX export + parity (issue #7)
    status, guard = _guard(services, project_id, tier, spec, result, served, data, {ex.task_id for ex in examples})
    for hook in services.hooks.version_trained:  # e.g. moderation: flag thresholds, label-error suspects
        result.metrics.update(hook(services, project, spec, result.classifier))
    classifier = result.classifier
    last = store.versions.last_stop_set_labels(project_id)
    predicted: dict[int, int] | None = None
    if tier != FAST or last is None or result.n_train - last >= settings.stop_every_labels:  # a checkpoint
        predicted, result.metrics["stopping"] = predict_stop_set(
            store, services.models, project_id, spec, classifier, settings
        )
    record = _record(project_id, tier, version, result, str(path.resolve()), spec, status, guard)
    store.versions.add(record, stop_set=predicted)
    if status != "ready":
        log.info("%s not promoted: %s", version, guard)
        return version
    store.projects.set_current_version(project_id, version)
    services.models.publish(project_id, result.classifier)
    prune_versions(store, project_id, settings.keep_versions)
    log.info("published %s (%.1f s, metrics %s)", version, result.seconds, result.metrics)
    if (project.ls_url or settings.label_studio_url) and not project.detached:
        request_push(services, project_id, f"{version} published")
    return version


def setfit_report(record: ModelVersionRecord) -> dict[str, Any]:
    """The SetFit fine-tuning report (steps planned and made, ...) of a slow-tier version; {} if it has none."""
    for control in record.metrics.values():
        if isinstance(control, dict) and isinstance(control.get("setfit"), dict):
            return dict(control["setfit"])
    return {}


def planning_seconds_per_step(measured: list[float]) -> float:
    """The seconds per contrastive step a SetFit version plans its steps with: the fastest of the recent versions'
    measured ones, at most ``MAX_PLANNED_SECONDS_PER_STEP`` (the default guess before any). A step slowed by
    contention says little about the next version's: one measured at 8.8 s while an annotator labeled planned the
    next version 13 steps, which finished in 35 s on an idle machine (held-out 0.8425 instead of about 0.87 in
    ``tagloop bench loop``); a version that does run slow is still stopped by its deadline."""
    fastest = min((m for m in measured if m > 0), default=DEFAULT_SECONDS_PER_STEP)
    return min(fastest, MAX_PLANNED_SECONDS_PER_STEP)


def _seconds_per_step(services: Services, project_id: int) -> float:
    """``planning_seconds_per_step`` of the last three SetFit versions' measurements."""
    recent = services.store.versions.newest(project_id, SLOW, 3)
    return planning_seconds_per_step([float(setfit_report(v).get("seconds_per_step") or 0.0) for v in recent])


def resume_from(services: Services, served: TextClassifier) -> Path:
    """The body a SetFit version starts from: the served version's body when it is a fine-tuned SetFit body (the
    training resumes), else the base body."""
    body, _ = split_source(served.encoder.source)
    base = services.models.base_path
    models_dir = services.settings.models_dir.resolve()
    fine_tuned = body.is_dir() and body.resolve() != base.resolve() and models_dir in body.resolve().parents
    sentence_transformer = (body / "modules.json").exists()
    return body if fine_tuned and sentence_transformer else base


def request_push(services: Services, project_id: int, reason: str) -> str:
    """Queue a push of the served version, at most one per ``push_interval_s`` (a queued push is joined)."""
    last = services.jobs.latest(project_id, JobKind.PUSH)
    since = time.time() - (last.finished_at or last.created_at) if last is not None else float("inf")
    delay = max(0.0, services.settings.push_interval_s - since)
    return services.request_job(project_id, JobKind.PUSH, reason, delay_s=delay)


def _distill(
    services: Services,
    project_id: int,
    spec: LabelSpec,
    data: dict[str, ControlData],
    teacher: TrainResult,
    teacher_path: Path,
) -> TrainResult:
    """``distill``: the transformer version's labels on the pool, learnt by heads on the base (served) body."""
    from backend.models.sequence import TransformerClassifier
    from backend.training.transformer_training import distill

    model = teacher.classifier
    assert isinstance(model, TransformerClassifier)
    model.save(teacher_path)
    student = services.models.base_encoder()
    pool = services.store.tasks.unlabeled(project_id, limit=services.settings.push_pool_limit)
    control = next(c for c in spec.controls if c.name == model.control)
    texts = [str(task.get(control.value_key, "")) for _, task in pool if control.value_key in task]
    result = distill(
        model,
        student,
        lambda t: services.embeddings.encode(student, t),
        spec,
        data,
        texts,
        services.settings,
        model.version,
    )
    metrics = {**result.metrics}
    metrics[model.control] = {**teacher.metrics.get(model.control, {}), **metrics.get(model.control, {})}
    seconds = teacher.seconds + result.seconds
    return TrainResult(result.classifier, metrics, teacher.label_counts, teacher.n_train, seconds)


def _guard(
    services: Services,
    project_id: int,
    tier: str,
    spec: LabelSpec,
    result: TrainResult,
    served: TextClassifier,
    data: dict[str, ControlData],
    trained_on: set[int],
) -> tuple[str, dict[str, Any]]:
    """Compare a new body with the served one on the same labels (only the slow tier changes the body), over the
    single-choice controls.

    A SetFit version is judged on the labels that arrived while it trained, when there are at least
    ``promotion_fresh_labels``: neither body saw them; each body's rows are scored by heads fitted on the training
    labels plus the other folds of the fresh ones (``evaluation.fresh_fold_accuracy``). Otherwise, and for the
    transformer tier, on the cross-validated accuracy of the heads on the training labels; that comparison favours a
    SetFit body, which was tuned on the very rows its folds hold out (at 10 labels every version passed it, though
    two of six scored 3.25 pp below the fast tier on held-out data in ``tagloop bench loop``)."""
    single = {n: d for n, d in data.items() if not d.control.multi_label}
    new = mean_cv_accuracy({n: m for n, m in result.metrics.items() if n in single})
    if tier == FAST or new is None:
        return "ready", {"cv_accuracy": new}
    settings = services.settings
    tolerance = settings.promotion_tolerance
    embed = lambda texts: services.embeddings.encode(served.encoder, texts)  # noqa: E731
    fresh = fresh_labels(services, project_id, spec, trained_on) if tier == SLOW else {}
    fresh = {n: d for n, d in fresh.items() if n in single and single[n].texts}  # single choice, trained
    n_fresh = max((len(d.texts) for d in fresh.values()), default=0)
    if n_fresh >= settings.promotion_fresh_labels:
        candidate = _fresh_accuracy(services, result.classifier.encoder, single, fresh)
        fresh_current = _fresh_accuracy(services, served.encoder, single, fresh)
        judged: dict[str, Any] = {
            "cv_accuracy": new,
            "fresh_labels": n_fresh,
            "fresh_accuracy": candidate,
            "served_fresh_accuracy": fresh_current,
            "tolerance": tolerance,
        }
        return ("rejected" if candidate < fresh_current - tolerance else "ready"), judged
    current = served_cv_accuracy(spec, data, served.encoder, embed, settings)
    guard: dict[str, Any] = {
        "cv_accuracy": new,
        "served_cv_accuracy": current,
        "tolerance": tolerance,
        "fresh_labels": n_fresh,
    }
    if current is not None and new < current - tolerance:
        return "rejected", guard
    return "ready", guard


def fresh_labels(services: Services, project_id: int, spec: LabelSpec, trained_on: set[int]) -> dict[str, ControlData]:
    """Per control, the rows of the tasks labeled since a training read its labels (tasks not in ``trained_on``)."""
    fresh = [ex for ex in services.labeled_examples(project_id) if ex.task_id not in trained_on]
    return {n: d for n, d in control_data(spec, fresh, max_chars=services.settings.max_text_chars).items() if d.texts}


def _fresh_accuracy(
    services: Services, body: Any, train: dict[str, ControlData], fresh: dict[str, ControlData]
) -> float:
    """Mean over the controls of ``evaluation.fresh_fold_accuracy`` with ``body``'s (cached) embeddings."""
    scores = []
    for name, rows in fresh.items():
        known = train[name]
        scores.append(
            fresh_fold_accuracy(
                rows.control.labels,
                (services.embeddings.encode(body, known.texts), known.targets),
                (services.embeddings.encode(body, rows.texts), rows.targets),
                seed=services.settings.seed,
            )
        )
    return sum(scores) / len(scores)


def _record(
    project_id: int,
    tier: str,
    version: str,
    result: TrainResult,
    path: str,
    spec: LabelSpec,
    status: str,
    guard: dict[str, Any],
) -> ModelVersionRecord:
    return ModelVersionRecord(
        name=version,
        project_id=project_id,
        tier=tier,
        status=status,
        n_train=result.n_train,
        label_counts=result.label_counts,
        metrics={**result.metrics, "promotion": guard},
        train_seconds=round(result.seconds, 3),
        artifact_path=path,
        config_hash=spec.config_hash,
    )
