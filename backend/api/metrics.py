"""``GET /metrics`` in the Prometheus text format, from a registry owned by each app.

Two kinds of metrics:

- **per process**: ``tagloop_http_request_duration_seconds{method, endpoint, status}``, a histogram observed by a
  before/after-request pair (``endpoint`` is the route template, e.g. ``/api/projects/<int:project_id>``, or
  ``unmatched``: bounded label values), plus the process collector (CPU, memory, open files).
- **read from the store at scrape time** (``StoreCollector``), so they are right whichever process trains:
  ``tagloop_training_jobs{tier, state}`` (queue depth: ``queued``/``running``; also ``done``/``failed``),
  ``tagloop_training_duration_seconds{tier}`` (histogram of finished jobs' last attempt),
  ``tagloop_training_failed_attempts_total{tier}``, ``tagloop_model_info{project, version, tier}`` (the served
  version), ``tagloop_model_train_examples{project}``, ``tagloop_annotations{project, state}``,
  ``tagloop_tasks{project}``, the plug-ins' families (``Hooks.metric_families``: the review plug-in's
  ``tagloop_review_queue_items{project, queue, state}`` and ``tagloop_psi{project, version}``) and
  ``tagloop_suggestion_acceptance{project}``, ``tagloop_stop_kappa{project}``, ``tagloop_overall_uncertainty{project}``,
  ``tagloop_project_detached{project}`` (``backend.insights``) and
  ``tagloop_store_up`` (0 when the database could not be read; the other store families are then absent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Float, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from backend.jobs.kinds import JobKind
from backend.services import Services
from backend.store import models as orm

log = logging.getLogger(__name__)
EXTENSION = "tagloop.metrics"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TRAINING_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
JOB_TIERS = tuple(k.value for k in JobKind)
ACTIVE_STATES = ("queued", "running")

FamilySource = Callable[[Services], Iterable[Metric]]


@dataclass(frozen=True)
class AppMetrics:
    """The metrics objects of one app (``app.extensions["tagloop.metrics"]``)."""

    registry: CollectorRegistry
    request_seconds: Histogram


def init_app(app: Flask, services: Services, *, extra_sources: Iterable[FamilySource] = ()) -> AppMetrics:
    """Create the app's registry, time every request and serve ``GET /metrics``.

    ``extra_sources`` are called at scrape time after the built-in families (each gets the app's services).
    """
    registry = CollectorRegistry(auto_describe=True)
    request_seconds = Histogram(
        "tagloop_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template.",
        ("method", "endpoint", "status"),
        buckets=REQUEST_BUCKETS,
        registry=registry,
    )
    ProcessCollector(registry=registry)
    registry.register(StoreCollector(services, tuple(extra_sources)))
    metrics = AppMetrics(registry, request_seconds)
    app.extensions[EXTENSION] = metrics

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            labels = (request.method, endpoint, str(response.status_code))
            seconds = time.perf_counter() - started
            request_seconds.labels(*labels).observe(seconds)
            # the time spent in the app, for a client to tell it from queueing and transport (W3C Server Timing)
            response.headers["Server-Timing"] = f"app;dur={seconds * 1000:.2f}"
        return response

    app.add_url_rule("/metrics", "metrics", _scrape, methods=["GET"])
    return metrics


def _scrape() -> Response:
    metrics: AppMetrics = current_app.extensions[EXTENSION]
    return Response(generate_latest(metrics.registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)


class StoreCollector(Collector):
    """Families read from the database on every scrape (right in scaled-out mode, where workers train)."""

    def __init__(self, services: Services, sources: Iterable[FamilySource] = ()) -> None:
        self.services = services
        self.sources = tuple(sources)

    def describe(self) -> list[Metric]:
        """Nothing up front: the families depend on the store's contents (and the store may be down)."""
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tagloop_store_up", "1 if the store could be read for this scrape, else 0.")
        try:
            families = [*job_families(self.services), *model_families(self.services), *label_families(self.services)]
            families += insight_families(self.services)
            for hook in self.services.hooks.metric_families:  # plug-ins: PSI and review queues
                families += list(hook(self.services))
        except SQLAlchemyError as exc:
            log.warning("metrics: the store could not be read: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families
        for source in self.sources:
            try:
                yield from source(self.services)
            except Exception:  # an extension must not break the scrape; its failure is logged
                log.exception("metrics: source %s failed", getattr(source, "__name__", source))


def job_families(services: Services) -> list[Metric]:
    """Queue depth and totals by (tier, state), training durations and failed attempts by tier."""
    job = orm.Job
    jobs = GaugeMetricFamily(
        "tagloop_training_jobs",
        "Training jobs by tier and state (queued + running = queue depth).",
        labels=["tier", "state"],
    )
    with services.store.session() as s:
        counts = {
            (t, st): n
            for t, st, n in s.execute(select(job.kind, job.state, func.count()).group_by(job.kind, job.state))
        }
        failed: dict[str, int] = dict(s.execute(select(job.kind, func.sum(job.attempts)).group_by(job.kind)).all())
        duration = (job.finished_at - job.started_at).cast(Float)
        buckets = [func.sum(case((duration <= b, 1), else_=0)) for b in TRAINING_BUCKETS]
        rows = s.execute(
            select(job.kind, func.count(), func.sum(duration), *buckets)
            .where(job.state == "done", job.started_at.is_not(None), job.finished_at.is_not(None))
            .group_by(job.kind)
        ).all()
    for tier in JOB_TIERS:
        for state in ACTIVE_STATES:
            counts.setdefault((tier, state), 0)
    for (tier, state), n in sorted(counts.items()):
        jobs.add_metric([tier, state], float(n))
    failures = CounterMetricFamily(
        "tagloop_training_failed_attempts", "Failed training attempts (retried or given up), by tier.", labels=["tier"]
    )
    for tier in sorted(set(JOB_TIERS) | set(failed)):
        failures.add_metric([tier], float(failed.get(tier) or 0))
    durations = HistogramMetricFamily(
        "tagloop_training_duration_seconds",
        "Wall time of finished training jobs (last attempt), by tier.",
        labels=["tier"],
    )
    for tier, total, seconds, *cumulative in rows:
        bounds = [(floatToGoString(b), float(c or 0)) for b, c in zip(TRAINING_BUCKETS, cumulative, strict=True)]
        durations.add_metric([tier], [*bounds, ("+Inf", float(total))], float(seconds or 0.0))
    return [jobs, failures, durations]


def model_families(services: Services) -> list[Metric]:
    """The served version of each project (info), and how many examples it was trained on."""
    project, version = orm.Project, orm.ModelVersion
    with services.store.session() as s:
        rows = s.execute(
            select(project.id, project.config_hash, version.name, version.tier, version.n_train, version.config_hash)
            .outerjoin(version, version.name == project.current_version)
            .order_by(project.id)
        ).all()
    info = InfoMetricFamily(
        "tagloop_model", "The model version each project serves.", labels=["project", "version", "tier"]
    )
    examples = GaugeMetricFamily(
        "tagloop_model_train_examples", "Labeled examples the served version was trained on.", labels=["project"]
    )
    for pid, project_hash, name, tier, n_train, version_hash in rows:
        trained = name is not None and version_hash == project_hash
        served = name if trained else f"{pid}-zeroshot-{project_hash[:8]}"
        info.add_metric([str(pid), served, tier if trained else "zeroshot"], {})
        examples.add_metric([str(pid)], float(n_train if trained else 0))
    return [info, examples]


def label_families(services: Services) -> list[Metric]:
    """Annotations by project and state (``usable``, ``skipped``, ``deleted``) and known tasks by project."""
    ann, task = orm.Annotation, orm.Task
    with services.store.session() as s:
        rows = s.execute(
            select(ann.project_id, ann.deleted, ann.was_cancelled, func.count()).group_by(
                ann.project_id, ann.deleted, ann.was_cancelled
            )
        ).all()
        tasks = s.execute(select(task.project_id, func.count()).group_by(task.project_id)).all()
    annotations = GaugeMetricFamily(
        "tagloop_annotations", "Stored annotations by project and state.", labels=["project", "state"]
    )
    totals: dict[tuple[str, str], int] = {}
    for pid, deleted, cancelled, n in rows:
        state = "deleted" if deleted else "skipped" if cancelled else "usable"
        totals[(str(pid), state)] = totals.get((str(pid), state), 0) + n
    for labels, n in sorted(totals.items()):
        annotations.add_metric(list(labels), float(n))
    known = GaugeMetricFamily("tagloop_tasks", "Tasks tagloop has seen, by project.", labels=["project"])
    for pid, n in tasks:
        known.add_metric([str(pid)], float(n))
    return [annotations, known]


def insight_families(services: Services) -> list[Metric]:
    """Per project: suggestion acceptance (last 100 labels), the stopping criteria, and whether it is detached."""
    from backend.insights import insights

    accepted = GaugeMetricFamily(
        "tagloop_suggestion_acceptance",
        "Share of the last 100 submitted annotations equal to the suggestion shown.",
        labels=["project"],
    )
    kappa = GaugeMetricFamily(
        "tagloop_stop_kappa",
        "Cohen's kappa between versions some labels apart (stabilizing predictions).",
        labels=["project"],
    )
    uncertainty = GaugeMetricFamily(
        "tagloop_overall_uncertainty", "Mean uncertainty of the unlabeled stop-set tasks.", labels=["project"]
    )
    detached = GaugeMetricFamily(
        "tagloop_project_detached", "1 when Label Studio no longer has the project.", labels=["project"]
    )
    for project in services.store.projects.all():
        found = insights(services.store, project.id, services.settings)
        pid = [str(project.id)]
        detached.add_metric(pid, 1.0 if project.detached else 0.0)
        if found["acceptance"]["last_100"] is not None:
            accepted.add_metric(pid, float(found["acceptance"]["last_100"]))
        if found["stopping"].get("kappa") is not None:
            kappa.add_metric(pid, float(found["stopping"]["kappa"]))
        if found["stopping"].get("overall_uncertainty") is not None:
            uncertainty.add_metric(pid, float(found["stopping"]["overall_uncertainty"]))
    return [accepted, kappa, uncertainty, detached]
