"""``tagloop bench predict`` end to end on a tiny slice of ag_news: the CLI contract (last line is one JSON
object with the headline keys) and that every phase measured something."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED_DATA, config_xml
from tools.bench.predict import PredictBenchConfig, labeling_config, read_rows

pytestmark = pytest.mark.model
AG_NEWS = SHARED_DATA / "ag_news" / "ag_news.csv"
KEYS = ("ratio_vs_pipeline", "p50_ms", "p99_ms", "rss_mb", "accuracy_delta_pp")


@pytest.fixture
def ag_news() -> str:
    if not AG_NEWS.exists():
        pytest.skip(f"shared data set {AG_NEWS} is absent (tests read ../shared/data beside the repo)")
    return str(AG_NEWS)


def test_cli_prints_a_table_then_one_json_line(ag_news: str, tmp_path: object) -> None:
    args = ["--n", "8", "--n-train", "24", "--n-eval", "16", "--single-calls", "6", "--clients", "2"]
    args += ["--slow-steps", "2", "--busy-calls", "8", "--feed-rate", "20", "--feed-s", "0.25"]
    args += ["--ack-labels", "10", "--ack-rate", "50"]  # --setup default: web + supervised worker
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "backend", "bench", "predict", "--data", ag_news, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path),
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert all(summary[k] is not None for k in KEYS), summary
    assert summary["ratio_vs_pipeline"] > 0 and 0 < summary["p50_ms"] <= summary["p99_ms"]
    assert 100 < summary["rss_mb"] < 2000 and abs(summary["accuracy_delta_pp"]) <= 100
    assert summary["served_body"] in ("int8-all", "int8", "fp32", "torch") and summary["version"] == "1-fast-1"
    assert summary["http"]["b32"]["texts"] == 8 and summary["pipeline"]["b1"]["texts"] == 6
    assert summary["busy"]["calls"] >= 1 and summary["accuracy"]["n_eval"] == 16
    assert summary["busy"]["paced"]["calls"] == 5 and summary["p50_feed_ms"] > 0  # 20/s for 0.25 s, then back to back
    assert "steps; training" in done.stdout and summary["busy"]["training_step_s_alone"] > 0
    assert summary["busy"]["acks"]["labels"] == 10 and 0 < summary["ack_p50_ms"] <= summary["ack_p99_ms"]
    assert summary["worker_rss_training_mb"] > 100  # the supervised worker's own peak, next to the web process's
    assert any(line.startswith("tagloop /predict HTTP") for line in lines)  # the table
    assert "labeling 24 rows" in done.stderr  # progress on stderr


def test_rows_are_disjoint_slices_and_config_matches_labels(ag_news: str) -> None:
    config = PredictBenchConfig(
        data=AG_NEWS, n=4, n_train=10, n_eval=5, single_calls=3, busy_calls=2, feed_rate=4, feed_s=0.5
    )
    rows, labels = read_rows(config)
    assert len(rows["train"]) == 10 and len(rows["eval"]) == 5 and len(rows["measure"]) == 4 + 2 * 3 + 2 + 2
    assert not set(rows["train"]) & set(rows["measure"]) and set(labels) == {"World", "Sports", "Business", "Sci/Tech"}
    assert labeling_config(labels) == config_xml("news_topics")  # the matching config from annotation_configs/
    assert 'choice value="a &amp; b"' in labeling_config(("a & b", "c")).lower()  # otherwise one is generated
    assert (REPO / "annotation_configs").is_dir()


def test_too_few_rows_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    small = Path(str(tmp_path)) / "small.csv"
    small.write_text("text,label\na,x\nb,y\n")
    with pytest.raises(ValueError, match="2 single-label rows; this run needs"):
        read_rows(PredictBenchConfig(data=small))
