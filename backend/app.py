"""``create_app``: the composition root."""

from __future__ import annotations

from flask import Flask

from backend.api import labelstudio, projects
from backend.api.http import register_error_handlers
from backend.config import Settings
from backend.services import Services, build_services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    """A Flask app serving the Label Studio protocol and tagloop's API.

    Args:
        settings: defaults to ``Settings()`` (the environment is read only by the entry points).
        services: pre-built services (tests share one loaded model this way).
    """
    settings = settings or (services.settings if services else Settings())
    services = services or build_services(settings)
    app = Flask("tagloop")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["tagloop"] = services
    app.register_blueprint(labelstudio.bp)
    app.register_blueprint(projects.bp)
    register_error_handlers(app)
    return app
