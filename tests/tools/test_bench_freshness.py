"""``tagloop bench freshness`` end to end on a small slice of ag_news, on the default set-up (web process and the
worker it supervises): both servers acknowledge every label and serve models trained on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA
from tools.bench.freshness import FreshnessConfig

pytestmark = pytest.mark.model
AG_NEWS = SHARED_DATA / "ag_news" / "ag_news.csv"


def test_cli_measures_both_servers_and_prints_one_json_line(tmp_path: Path) -> None:
    if not AG_NEWS.exists():
        pytest.skip(f"shared data set {AG_NEWS} is absent (tests read ../shared/data beside the repo)")
    args = ["--pool", "200", "--checkpoints", "30", "--window", "3", "--pace", "0.2", "--setup", "default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGLOOP_")}
    done = subprocess.run(
        [sys.executable, "-m", "backend", "bench", "freshness", "--data", str(AG_NEWS), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["setup"] == "default"
    for name in ("tagloop", "reference"):
        row = report[name]["30"]
        assert 0 < row["ack_p50_ms"] <= row["ack_p99_ms"], (name, row)
        assert row["fresh_timeouts"] == 0 and 0 < row["fresh_p50_s"] < 60, (name, row)


def test_an_unknown_setup_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="setup: got 'threads', expected one of"):
        FreshnessConfig(data=AG_NEWS, setup="threads")
