"""`tagloop demo` as a user runs it: real Label Studio and tagloop processes, a project of ag_news, the printed
credentials logging in, `--check` passing, and Ctrl-C leaving no process behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import psycopg
import pytest
import requests
from rich.console import Console

from tests.conftest import SHARED_DATA, read_rows
from tests.e2e.conftest import LS_VENV
from tools.demo import DemoConfig, run_demo
from tools.harness import REPO, PostgresDatabase, ensure_label_studio

N_TASKS = "40"


def demo_command(data_dir: Path, *args: str) -> list[str]:
    data = str(SHARED_DATA / "ag_news" / "ag_news.csv")
    return [sys.executable, "-m", "backend", "demo", "--data-dir", str(data_dir), "--data", data, "--n", N_TASKS, *args]


def demo_env() -> dict[str, str]:
    return {**os.environ, "TAGLOOP_LS_VENV": str(LS_VENV), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def field(output: str, name: str) -> str:
    match = re.search(rf"^{name}\s+(\S+)", output, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{output}"
    return match.group(1)


def can_log_in(ls_url: str, user: str, password: str) -> bool:
    """The web login form accepts the printed credentials (a wrong password stays on /user/login/)."""
    with requests.Session() as web:
        web.get(f"{ls_url}/user/login/", timeout=30)
        answer = web.post(
            f"{ls_url}/user/login/",
            data={"email": user, "password": password, "csrfmiddlewaretoken": web.cookies["csrftoken"]},
            headers={"Referer": f"{ls_url}/user/login/"},
            timeout=30,
        )
        return answer.ok and "/user/login" not in answer.url


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def ls_venv() -> Path:
    read_rows("ag_news", 1)  # skips when ../shared/data is absent
    ensure_label_studio(LS_VENV)
    return LS_VENV


def test_bad_config_fails_before_starting_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        demo_command(tmp_path, "--check", "--config", "no_such_config"),
        capture_output=True, text=True, env=demo_env(), cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "config: got 'no_such_config', expected one of" in done.stdout and "news_topics" in done.stdout
    assert not (tmp_path / "demo" / "label-studio").exists()


def test_demo_check_twice_in_the_same_work_dir(ls_venv: Path, tmp_path: Path) -> None:
    """A second ``--check`` in the work dir of the first: Label Studio keeps its data (and hands out the deleted
    project's task ids again), tagloop starts afresh."""
    for run in ("first", "second"):
        done = subprocess.run(
            demo_command(tmp_path, "--check"), capture_output=True, text=True, env=demo_env(), cwd=REPO, timeout=420,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{run} run:\n{done.stdout}{done.stderr}"
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["check"] == "ok" and result["ls_database"] == "sqlite", result
        assert re.fullmatch(r"\d+-zeroshot-[0-9a-f]+", result["model_version"])
        assert set(result["choices"]) <= {"World", "Sports", "Business", "Sci/Tech"} and len(result["choices"]) == 1
        assert 0.0 <= result["score"] <= 1.0  # the strategy's certainty of tagloop's queue head (/next serves it first)
        assert "check passed" in done.stdout and not (tmp_path / "demo" / "demo.pid").exists()
        print(f"\ntagloop demo --check, {run} run in one work dir: ready in {result['ready_seconds']} s")


def test_demo_check_with_label_studio_on_postgresql(ls_venv: Path, tmp_path: Path) -> None:
    """``ls_database="postgresql"``: Label Studio runs on a database of its own on the local server (a private
    name here, dropped afterwards), where the demo's project is stored."""
    name = f"tagloop_test_demo_{uuid.uuid4().hex[:12]}"
    config = DemoConfig(
        workdir=tmp_path / "demo", ls_venv=ls_venv, data=str(SHARED_DATA / "ag_news" / "ag_news.csv"),
        n=int(N_TASKS), ls_database="postgresql", ls_database_name=name,
    )  # fmt: skip
    out = io.StringIO()
    try:
        code = run_demo(config, check=True, console=Console(file=out, width=200))
        assert code == 0, out.getvalue()
        result = json.loads(out.getvalue().strip().splitlines()[-1])
        assert result["check"] == "ok" and result["ls_database"] == "postgresql", result
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            titles = [row[0] for row in conn.execute("SELECT title FROM project")]
        assert [t for t in titles if t.startswith("tagloop demo")], titles
        assert not (tmp_path / "demo" / "label-studio" / "label_studio.sqlite3").exists()
    finally:
        PostgresDatabase(name).drop()


def test_demo_serves_until_ctrl_c(ls_venv: Path, tmp_path: Path) -> None:
    """The interactive demo from an empty work dir: the printed credentials log in; Ctrl-C stops both servers."""
    proc = subprocess.Popen(
        demo_command(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=demo_env(), cwd=REPO
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump, args=(proc.stdout, lines), daemon=True).start()
    output, deadline = "", time.monotonic() + 300
    try:
        while "Press Ctrl-C" not in output:
            assert time.monotonic() < deadline and proc.poll() is None, f"demo never got ready:\n{output}"
            with contextlib.suppress(queue.Empty):
                output += lines.get(timeout=1)
        ls_url = field(output, "Label Studio").split("/projects/")[0]
        pids = [int(p) for p in re.findall(r"pid (\d+)", field_line(output, "processes"))]
        assert len(pids) == 2 and all(group_alive(p) for p in pids)
        assert can_log_in(ls_url, field(output, "user"), field(output, "password"))
        assert not can_log_in(ls_url, field(output, "user"), "wrong-password")
        ready = float(re.search(r"ready in ([\d.]+) s", output).group(1))  # type: ignore[union-attr]
        print(f"\ntagloop demo, empty work dir: ready in {ready} s")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 130, output
    assert not any(group_alive(p) for p in pids), "a server process outlived the demo"
    assert not (tmp_path / "demo" / "demo.pid").exists()


def pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    """Copy ``stream``'s lines into ``lines`` until it ends."""
    for line in stream or ():
        lines.put(line)


def field_line(output: str, name: str) -> str:
    match = re.search(rf"^{name}\s+(.*)$", output, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{output}"
    return match.group(1)
