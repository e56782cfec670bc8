"""Authentication of every request, decided in one ``before_request`` hook by the path's surface.

Surfaces:

- **open**: ``GET /health`` (Label Studio polls it with a 1 s timeout) and ``GET /openapi.json`` (no secrets).
- **Label Studio** (``/setup``, ``/predict``, ``/webhook``): HTTP Basic with ``basic_auth_user`` /
  ``basic_auth_password`` when they are set (Label Studio sends them on its ML connection when the model's
  authentication is *Basic Auth*). The Bearer ``api_key`` is accepted too (operators, scripts, or a webhook
  header).
- **tagloop API** (every other path: ``/api/...``, ``/metrics``, and any route added later): Bearer ``api_key``
  when it is set. ``require_api_key()`` makes a view keyed even when no key is configured.

Credentials are compared in constant time (``hmac.compare_digest``) and never logged or echoed. A refused request
gets 401 JSON ``{"error": "unauthorized", "reason"}`` with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from flask import Flask, Response, current_app, jsonify, request

from backend.config import Settings
from backend.errors import SettingsError, TagloopError

OPEN_PATHS = frozenset({"/health", "/openapi.json"})
LABEL_STUDIO_PATHS = frozenset({"/setup", "/predict", "/webhook"})
REALM = "tagloop"


class Unauthorized(TagloopError):
    """The request lacks valid credentials for its surface (401 with a ``WWW-Authenticate`` challenge)."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, reason: str, *, challenge: str) -> None:
        super().__init__(reason)
        self.challenge = challenge


class AuthNotConfigured(TagloopError):
    """An always-keyed endpoint was called but the server has no ``api_key`` set."""

    status_code = 403
    code = "auth_not_configured"


def surface(path: str) -> str:
    """``"open"``, ``"labelstudio"`` or ``"api"``: which credentials a request path needs."""
    if path in OPEN_PATHS:
        return "open"
    if path.rstrip("/") in LABEL_STUDIO_PATHS:
        return "labelstudio"
    return "api"


def init_app(app: Flask, settings: Settings) -> None:
    """Register the authentication hook and the 401 handler on ``app``."""

    @app.before_request
    def _authenticate() -> None:
        check_request(settings)

    @app.errorhandler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> tuple[Response, int, dict[str, str]]:
        return jsonify(exc.to_json()), 401, {"WWW-Authenticate": exc.challenge}


def check_request(settings: Settings) -> None:
    """Raise ``Unauthorized`` unless the current request carries the credentials its surface needs."""
    kind = surface(request.path)
    if kind == "open":
        return
    if kind == "labelstudio" and settings.basic_auth_user:
        _check(settings, allow_basic=True)
    elif kind == "api" and settings.api_key:
        _check(settings, allow_basic=False)


def require_api_key() -> None:
    """Call at the top of a view that must always be keyed (e.g. ``POST /api/feedback``).

    Raises:
        AuthNotConfigured: (403) the server has no ``TAGLOOP_API_KEY``.
        Unauthorized: (401) the request's ``Authorization: Bearer`` is missing or wrong.
    """
    settings: Settings = current_app.extensions["tagloop"].settings
    if not settings.api_key:
        raise AuthNotConfigured(
            f"{request.method} {request.path} needs an API key, and the server has none: set TAGLOOP_API_KEY"
        )
    _check(settings, allow_basic=False)


def _check(settings: Settings, *, allow_basic: bool) -> None:
    challenge = f'Basic realm="{REALM}", charset="UTF-8"' if allow_basic else f'Bearer realm="{REALM}"'
    expected = " or ".join(name for name, on in (("Basic", allow_basic), ("Bearer", bool(settings.api_key))) if on)
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized(f"no Authorization header; expected {expected} credentials", challenge=challenge)
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and settings.api_key:
        if _same(value.strip(), settings.api_key):
            return
        raise Unauthorized("the Bearer token is not the API key", challenge=challenge)
    if scheme == "basic" and allow_basic:
        if _basic_matches(value.strip(), settings):
            return
        raise Unauthorized("wrong user name or password", challenge=challenge)
    shown = scheme[:20] if scheme.isalnum() else "?"
    raise Unauthorized(f"Authorization scheme {shown!r} is not accepted; expected {expected}", challenge=challenge)


def _basic_matches(value: str, settings: Settings) -> bool:
    if not settings.basic_auth_user:
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    user_ok = _same(user, settings.basic_auth_user)
    password_ok = _same(password, settings.basic_auth_password)
    return bool(sep) and user_ok and password_ok


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (compared as UTF-8 bytes)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to serve on a non-loopback ``host`` while a surface is unauthenticated.

    Raises:
        SettingsError: naming the host and the settings to set (or ``TAGLOOP_ALLOW_UNAUTHENTICATED=true``).
    """
    if is_loopback(host) or settings.allow_unauthenticated:
        return
    missing = []
    if not settings.basic_auth_user:
        missing.append("TAGLOOP_BASIC_AUTH_USER and TAGLOOP_BASIC_AUTH_PASSWORD (for /setup, /predict, /webhook)")
    if not settings.api_key:
        missing.append("TAGLOOP_API_KEY (for /api/... and /metrics)")
    if missing:
        raise SettingsError(
            f"refusing to serve on {host!r}, which is not a loopback address, without authentication: set "
            + " and ".join(missing)
            + ", or set TAGLOOP_ALLOW_UNAUTHENTICATED=true to serve unauthenticated on purpose"
        )
