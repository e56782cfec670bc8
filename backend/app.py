"""``create_app``: the composition root."""

from __future__ import annotations

from flask import Flask

from backend import logging_setup
from backend.api import auth, labelstudio, metrics, openapi, projects
from backend.api.http import register_error_handlers, register_id_bounds
from backend.bootstrap import build, plugins
from backend.config import Settings
from backend.services import Services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    """A Flask app serving the Label Studio protocol and tagloop's API.

    Args:
        settings: defaults to ``Settings()`` (the environment is read only by the entry points).
        services: pre-built services (tests share one loaded model this way).
    """
    settings = settings or (services.settings if services else Settings())
    services = services or build(settings)
    app = Flask("tagloop", static_folder=None)  # no /static route: nothing is served from the disk
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["tagloop"] = services
    logging_setup.init_app(app)  # request ids first: every later hook and log line has one
    metrics.init_app(app, services)  # times requests, including those refused by auth
    auth.init_app(app, settings)
    openapi.init_app(app)
    app.register_blueprint(labelstudio.bp)
    app.register_blueprint(projects.bp)
    for plugin in plugins(settings):  # e.g. the review plug-in's /api/feedback and /api/projects/<id>/review
        for blueprint in getattr(plugin, "blueprints", list)():
            app.register_blueprint(blueprint)
    register_error_handlers(app)
    register_id_bounds(app)
    return app
