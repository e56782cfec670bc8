"""Authentication (Basic on the Label Studio endpoints, Bearer on tagloop's API), the bind check, request ids and
secret-free logs. No model is loaded: /setup, /webhook (task events) and /api/... need none."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify

from backend.api.auth import check_bind, is_loopback, require_api_key
from backend.app import create_app
from backend.config import Settings
from backend.errors import SettingsError
from backend.logging_setup import make_handler
from tests.conftest import REPO, config_xml

API_KEY = "k-9d2f6c0b7e4a41b3"
USER, PASSWORD = "labelstudio", "p-3c8e1f5a9b"
NEWS = config_xml("news_topics")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(Settings(data_dir=tmp_path, api_key=API_KEY, basic_auth_user=USER, basic_auth_password=PASSWORD))
    yield app
    app.extensions["tagloop"].close()


def setup_body(project: str = "5.1700000000") -> dict[str, Any]:
    return {"project": project, "schema": NEWS, "access_token": "ls-token-0f9e8d7c"}


def refused(r: Any, scheme: str, reason_part: str) -> None:
    assert r.status_code == 401, (r.status_code, r.get_data(as_text=True))
    assert set(r.json) == {"error", "reason"} and r.json["error"] == "unauthorized"
    assert reason_part in r.json["reason"], r.json
    assert r.headers["WWW-Authenticate"].startswith(f'{scheme} realm="tagloop"')


def test_label_studio_endpoints_need_basic_auth(secured: Flask) -> None:
    client = secured.test_client()
    refused(client.post("/setup", json=setup_body()), "Basic", "no Authorization header")
    refused(client.post("/setup", json=setup_body(), headers=basic(USER, "wrong")), "Basic", "wrong user name")
    refused(client.post("/setup", json=setup_body(), headers=basic("someone", PASSWORD)), "Basic", "wrong user name")
    refused(client.post("/setup", json=setup_body(), headers={"Authorization": "Basic %%%"}), "Basic", "wrong")
    refused(
        client.post("/webhook", json={}, headers={"Authorization": "Token abc"}), "Basic", "'token' is not accepted"
    )
    refused(client.post("/predict", json={}, headers={"Authorization": "Bearer nope"}), "Basic", "not the API key")
    ok = client.post("/setup", json=setup_body(), headers=basic(USER, PASSWORD))
    assert ok.status_code == 200 and ok.json["model_version"].startswith("5-zeroshot-")
    # the API key is accepted too (scripts, or a header on Label Studio's webhook)
    event = {"action": "TASKS_CREATED", "project": {"id": 5}, "tasks": [{"id": 51, "data": {"text": "x"}}]}
    assert client.post("/webhook", json=event, headers=BEARER).json == {"status": "stored", "changed": 1, "push": None}


def test_api_needs_the_bearer_key(secured: Flask) -> None:
    client = secured.test_client()
    client.post("/setup", json=setup_body(), headers=BEARER)
    refused(client.get("/api/projects/5"), "Bearer", "no Authorization header")
    refused(client.get("/api/projects/5", headers={"Authorization": f"Bearer {API_KEY}x"}), "Bearer", "not the API key")
    refused(client.get("/api/projects/5", headers=basic(USER, PASSWORD)), "Bearer", "'basic' is not accepted")
    refused(client.post("/api/projects/5/train"), "Bearer", "no Authorization header")
    refused(client.get("/metrics"), "Bearer", "no Authorization header")
    refused(client.get("/no/such/route"), "Bearer", "no Authorization header")  # unknown paths are keyed too
    assert client.get("/api/projects/5", headers=BEARER).json["project"] == 5
    assert client.get("/api/projects/5", headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200
    assert client.get("/metrics", headers=BEARER).status_code == 200
    assert client.get("/no/such/route", headers=BEARER).status_code == 404


def test_health_and_openapi_stay_open(secured: Flask) -> None:
    client = secured.test_client()
    assert client.get("/health").json["status"] == "UP"
    assert client.get("/health", headers=basic(USER, "wrong")).status_code == 200  # LS sends its credentials here too
    assert client.get("/openapi.json").status_code == 200


def test_without_credentials_configured_everything_is_open(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    client = app.test_client()
    assert client.post("/setup", json=setup_body()).status_code == 200
    assert client.get("/api/projects/5").status_code == 200
    assert client.get("/metrics").status_code == 200
    app.extensions["tagloop"].close()


def test_require_api_key_helper(tmp_path: Path) -> None:
    """``require_api_key()`` keys a view even when the server has no key (then 403 names the setting)."""

    def keyed() -> Any:
        require_api_key()
        return jsonify({"ok": True})

    for key, expected in (("", (403, 403)), (API_KEY, (401, 200))):
        app = create_app(Settings(data_dir=tmp_path / (key or "none"), api_key=key))
        app.add_url_rule("/api/test-keyed", "keyed", keyed, methods=["POST"])
        client = app.test_client()
        without, with_key = client.post("/api/test-keyed"), client.post("/api/test-keyed", headers=BEARER)
        assert (without.status_code, with_key.status_code) == expected
        if not key:
            assert without.json["error"] == "auth_not_configured" and "TAGLOOP_API_KEY" in without.json["reason"]
        app.extensions["tagloop"].close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_auth(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, Settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "tagloop.example.org"])
def test_non_loopback_bind_is_refused_without_auth(host: str) -> None:
    with pytest.raises(SettingsError) as exc:
        check_bind(host, Settings())
    reason = exc.value.reason
    assert repr(host) in reason and "TAGLOOP_BASIC_AUTH_USER" in reason and "TAGLOOP_API_KEY" in reason
    assert "TAGLOOP_ALLOW_UNAUTHENTICATED=true" in reason
    with pytest.raises(SettingsError, match="TAGLOOP_API_KEY"):  # half the auth is not enough
        check_bind(host, Settings(basic_auth_user=USER, basic_auth_password=PASSWORD))
    check_bind(host, Settings(basic_auth_user=USER, basic_auth_password=PASSWORD, api_key=API_KEY))
    check_bind(host, Settings(allow_unauthenticated=True))


def test_serve_refuses_a_public_bind(tmp_path: Path) -> None:
    """The real command exits 2 with the reason before it loads or binds anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGLOOP_")}
    env["TAGLOOP_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "backend", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to serve on '0.0.0.0'" in done.stderr and "TAGLOOP_BASIC_AUTH_PASSWORD" in done.stderr


def test_request_ids_and_logs_without_secrets(tmp_path: Path) -> None:
    redis_password = "r-4e7d1a0c"
    settings = Settings(
        data_dir=tmp_path,
        api_key=API_KEY,
        basic_auth_user=USER,
        basic_auth_password=PASSWORD,
        label_studio_token="ls-token-0f9e8d7c",
        redis_url=f"redis://:{redis_password}@127.0.0.1:6379/0",
        log_format="json",
    )
    stream = io.StringIO()
    handler = make_handler(settings, stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        app = create_app(settings)

        @app.get("/api/test-log")
        def _log_secrets() -> Any:  # a careless log call in some handler
            logging.getLogger("tagloop.test").warning("connecting to %s with %s", settings.redis_url, API_KEY)
            return jsonify({})

        client = app.test_client()
        given = client.post("/setup", json=setup_body(), headers={**basic(USER, PASSWORD), "X-Request-ID": "req-42"})
        generated = client.get("/api/projects/5", headers={"Authorization": f"Bearer {API_KEY}-wrong"})
        forged = client.get("/api/projects/5", headers={**BEARER, "X-Request-ID": "bad id; forged=1"})
        assert client.get("/api/test-log", headers={**BEARER, "X-Request-ID": "req-43"}).status_code == 200
        app.extensions["tagloop"].close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    assert given.status_code == 200 and given.headers["X-Request-ID"] == "req-42"
    assert generated.status_code == 401 and len(generated.headers["X-Request-ID"]) == 32
    assert forged.headers["X-Request-ID"] != "bad id; forged=1"
    text = stream.getvalue()
    records = [json.loads(line) for line in text.splitlines()]
    access = {r["request_id"]: r for r in records if r["logger"] == "tagloop.access"}
    assert access["req-42"]["path"] == "/setup" and access["req-42"]["status"] == 200
    assert access[generated.headers["X-Request-ID"]]["status"] == 401
    assert {"ts", "level", "message", "method", "duration_ms"} <= set(access["req-42"])
    careless = next(r for r in records if r["logger"] == "tagloop.test")
    assert careless["request_id"] == "req-43" and "redis://:***@127.0.0.1" in careless["message"]
    for secret in (
        API_KEY,
        PASSWORD,
        redis_password,
        "ls-token-0f9e8d7c",
        base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    ):
        assert secret not in text


def test_describe_masks_secrets_and_url_passwords() -> None:
    described = Settings(
        api_key=API_KEY,
        basic_auth_user=USER,
        basic_auth_password=PASSWORD,
        database_url="postgresql+psycopg://tagloop:pg-pass-77@db:5432/tagloop",
        redis_url="redis://:redis-pass-88@redis:6379/0",
    ).describe()
    assert described["api_key"] == described["basic_auth_password"] == "***"
    assert described["basic_auth_user"] == USER
    assert described["database_url"] == "postgresql+psycopg://tagloop:***@db:5432/tagloop"
    assert described["redis_url"] == "redis://:***@redis:6379/0"
    assert described["log_format"] == "text"
    with pytest.raises(SettingsError, match=r"log_format: got 'xml', expected one of \['text', 'json'\]"):
        Settings(log_format="xml")
