"""The composition root of a process: services with their job handlers, plug-ins and wake-up.

Every entry point builds its services here: the web app (``create_app``), ``tagloop serve``, the worker process,
``tagloop worker`` and the other commands. ``role`` says how queued jobs reach a worker:

- ``web``: per ``settings.worker``: ``inprocess`` starts a worker pool in this process on the first job;
  ``process`` (``tagloop serve``'s default) writes to the supervised worker process's pipe (the supervisor attaches
  it); ``redis`` pushes to the Redis list ``tagloop worker`` processes wait on;
- ``worker``: a worker process nudges its own pool (jobs it queues itself, e.g. a push after a new version);
- ``cli``: nothing: a running worker finds the job within ``worker_poll_s``.

Plug-ins are modules with ``install(services)``, named in ``settings.plugins`` (``review`` by default) and imported
by name here, so the core never imports them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

from backend.config import Settings
from backend.errors import SettingsError
from backend.jobs.wakeup import NoWakeup, PipeWakeup, RedisWakeup
from backend.jobs.worker import InProcessWorker
from backend.loop.jobs import register_jobs as register_label_studio_jobs
from backend.models.encoder import Encoder
from backend.services import Services, build_services
from backend.training.jobs import register_jobs as register_training_jobs

PLUGINS = {"review": "backend.review.plugin"}
"""Known plug-ins: name → module with ``install(services)`` (and, optionally, ``blueprints()``)."""
Role = Literal["web", "worker", "cli"]


def plugins(settings: Settings) -> list[ModuleType]:
    """The plug-in modules ``settings.plugins`` names (``SettingsError`` for an unknown name)."""
    names = [n.strip() for n in settings.plugins.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PLUGINS))
    if unknown:
        raise SettingsError(f"plugins: got {unknown}, expected names from {sorted(PLUGINS)}")
    return [importlib.import_module(PLUGINS[n]) for n in names]


def build(settings: Settings, *, role: Role = "web", base_encoder: Encoder | None = None) -> Services:
    """Services with the core job handlers, the configured plug-ins and the wake-up of ``role``."""
    services = build_services(settings, base_encoder=base_encoder)
    register_training_jobs(services.handlers)
    register_label_studio_jobs(services.handlers)
    for plugin in plugins(settings):
        plugin.install(services)
    if role == "cli":
        services.wakeup = NoWakeup()
    elif role == "worker":
        services.wakeup = NoWakeup()  # the worker entry point nudges its own pool instead
    elif settings.worker == "inprocess":
        services.wakeup = InProcessWorker(services)
    elif settings.worker == "redis":
        services.wakeup = RedisWakeup(settings.redis_url, settings.resolved_database_url)
    else:
        services.wakeup = PipeWakeup()
    return services
