"""The Label Studio jobs: ``push`` (the served version's queue head into Label Studio) and ``catchup`` (annotations
Label Studio's webhooks did not deliver), with what a failing Label Studio means for the project.

A call that fails definitely (Label Studio has no such project) detaches the project: no more catch-ups, pushes or
scans until Label Studio calls tagloop for it again. Other failures raise, so the job is retried with backoff, and
detach the project once they have lasted ``ls_detach_after_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from backend.jobs.handlers import JobContext, JobHandlers
from backend.jobs.kinds import JobKind
from backend.labelstudio.client import LabelStudioClient, failure
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.loop.catchup import catch_up
from backend.loop.sync import push_version
from backend.services import Services
from backend.store.records import ProjectRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


def register_jobs(handlers: JobHandlers) -> None:
    """The ``push`` and ``catchup`` handlers."""
    handlers.register(JobKind.PUSH, lambda services, context: _run(services, context, run_push))
    handlers.register(JobKind.CATCHUP, lambda services, context: _run(services, context, run_catch_up))


def _run(
    services: Services, context: JobContext, job: Callable[[Services, ProjectRecord, LabelSpec], dict[str, Any]]
) -> dict[str, Any]:
    project = services.store.projects.get(context.job.project_id)
    if project is None:
        raise LookupError(f"project {context.job.project_id} is unknown to tagloop")
    return job(services, project, parse_label_config(project.label_config))


def client_for(services: Services, project: ProjectRecord) -> LabelStudioClient | None:
    """A client for the project's Label Studio (settings first, then what /setup gave), or None."""
    url = services.settings.label_studio_url or project.ls_url
    token = services.settings.label_studio_token or project.ls_token
    return LabelStudioClient(url, token) if url and token else None


def calling(
    services: Services, project: ProjectRecord, client: LabelStudioClient, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``work`` (calls to the project's Label Studio); record success or failure on the project. Returns what
    ``work`` returns, or ``{"detached": reason}`` when the failure detached the project; raises other failures (to
    be retried with backoff)."""
    store = services.store
    try:
        result = work()
    except Exception as exc:
        found = failure(exc, client.url, project.id)
        if found is None:
            raise
        now = store.projects.ls_failed(
            project.id, found.reason, definite=found.definite, detach_after_s=services.settings.ls_detach_after_s
        )
        if now is not None and now.detached:
            log.warning("project %s detached: %s", project.id, found.reason)
            return {"detached": found.reason}
        raise
    if project.ls_failing_since is not None:
        store.projects.ls_reached(project.id)
    return result


def run_push(services: Services, project: ProjectRecord, spec: LabelSpec) -> dict[str, Any]:
    """Push the served version's ranked queue head to Label Studio (``sync.push_version``)."""
    client = client_for(services, project)
    if client is None or project.detached:
        return {"skipped": "project detached" if project.detached else "no Label Studio URL/token"}
    model = services.models.get(project, spec)

    def push() -> dict[str, Any]:
        client.project_model_version(project.id)  # a project Label Studio no longer has: 404, detached
        result = push_version(
            services.store,
            project,
            spec,
            model,
            settings=services.settings,
            client=client,
            models=services.models,
            labeled=services.labeled_examples(project.id),
        )
        log.info("project %s: pushed %s (%s)", project.id, model.version, result)
        return {"version": model.version, **asdict(result)}

    return calling(services, project, client, push)


def run_catch_up(services: Services, project: ProjectRecord, spec: LabelSpec) -> dict[str, Any]:
    """Read annotations Label Studio's webhooks missed back from its API; queue a training if anything changed."""
    client = client_for(services, project)
    if client is None or project.detached:
        return {"skipped": "project detached" if project.detached else "no Label Studio URL/token"}

    def read() -> dict[str, Any]:
        client.project_model_version(project.id)
        result = catch_up(services.store, project.id, spec, client)
        log.info("project %s: catch-up %s", project.id, result)
        if result.changed or result.deleted:
            kind = JobKind.FAST if services.settings.fast_tier else services.settings.slow_tier
            services.request_job(project.id, kind, "catch-up")
        return asdict(result)

    return calling(services, project, client, read)
