"""``tagloop bench loop``: its input handling, and one tiny run for real (a real Label Studio and a real tagloop,
marked ``e2e``) checked against the command's contract: the last line is one JSON object with the headline keys."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from backend.labelstudio.label_config import parse_label_config
from tests.conftest import REPO, SHARED_DATA, config_xml
from tools.bench.loop import LoopBenchConfig, LoopBenchError, Row, accuracy, bench_control, read_rows

AG_NEWS = SHARED_DATA / "ag_news" / "ag_news.csv"
KEYS = {
    "labels", "suggestions_right", "zero_shot_right_same_tasks", "ls_errors", "heldout_before", "heldout_after",
    "versions_seen", "next_p50_ms", "strategy",
}  # fmt: skip


def test_rows_the_config_lacks_are_dropped_and_counted(tmp_path: Path) -> None:
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text('text,label\n"a, b",World\nc,Sports|World\nd,Weather\ne,Sci/Tech\n', encoding="utf-8")
    said: list[str] = []
    rows = read_rows(csv_path, bench_control(config_xml("news_topics")), said.append)
    assert rows == [Row("a, b", frozenset({"World"})), Row("e", frozenset({"Sci/Tech"}))]
    assert said == ["dropped 2 of 4 rows whose labels <Choices topic> lacks"]  # two labels on a single choice, too

    multi = parse_label_config(config_xml("toxicity_types")).controls[0]
    csv_path.write_text("text,label\nx,toxic|insult\ny,\nz,spam\n", encoding="utf-8")
    assert [r.labels for r in read_rows(csv_path, multi, said.append)] == [frozenset({"toxic", "insult"}), frozenset()]


def test_bad_input_is_named() -> None:
    with pytest.raises(LoopBenchError, match="expected exactly one"):
        bench_control(config_xml("sentiment_and_topic"))
    with pytest.raises(LoopBenchError, match="ls_database: got 'mysql'"):
        LoopBenchConfig(data=AG_NEWS, config="news_topics", ls_venv=Path("x"), ls_database="mysql")  # type: ignore[arg-type]
    with pytest.raises(LoopBenchError, match="labels: got 20, expected at most tasks"):
        LoopBenchConfig(data=AG_NEWS, config="news_topics", ls_venv=Path("x"), labels=20, tasks=10)


def test_accuracy_is_an_exact_set_match() -> None:
    rows = [Row("a", frozenset({"x", "y"})), Row("b", frozenset())]
    assert accuracy([frozenset({"x", "y"}), frozenset()], rows) == 1.0
    assert accuracy([frozenset({"x"}), frozenset({"y"})], rows) == 0.0


@pytest.mark.e2e
def test_one_annotator_for_real(tmp_path: Path) -> None:
    if not AG_NEWS.exists():
        pytest.skip(f"shared data set {AG_NEWS} is absent (tests read ../shared/data beside the repo)")
    args = ["--data", str(AG_NEWS), "--config", "annotation_configs/news_topics.xml", "--labels", "5"]
    args += ["--pace", "0.1", "--tasks", "60", "--eval-n", "20", "--work", str(tmp_path / "work")]
    args += ["--tagloop-env", "TAGLOOP_SERVE_PRECISION=torch"]  # no ONNX export of the body in a fresh data dir
    done = subprocess.run(
        [sys.executable, "-m", "backend", "bench", "loop", *args],
        capture_output=True, text=True, cwd=REPO, timeout=420, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) >= KEYS, sorted(KEYS - set(result))
    assert result["labels"] == 5 and 0 <= result["suggestions_right"] <= 5
    assert 0 <= result["zero_shot_right_same_tasks"] <= 5 and result["ls_errors"] >= 0
    assert 0.0 <= result["heldout_before"] <= 1.0 and 0.0 <= result["heldout_after"] <= 1.0
    assert 1 <= result["versions_seen"] <= 5 and result["next_p50_ms"] > 0
    missed = result["suggestions_shown"] - result["suggestions_prefilled"]  # shown though not sent with /next
    assert len(result["not_prefilled"]) == result["labels"] - result["suggestions_prefilled"] >= missed
    assert result["strategy"] == "margin" and result["ls_database"] == "sqlite"  # tagloop's default for one choice
    assert result["tasks"] == 60 and result["eval_n"] == 20 and not result["settle_capped"]
    assert result["tagloop_last_error"] is None, result["tagloop_last_error"]
    assert "-fast-" in result["heldout_version"], result  # 5 labels >= TAGLOOP_MIN_LABELS_TO_TRAIN: a fast version
    assert "label 5/5" in done.stderr
    (started,) = [line for line in done.stderr.splitlines() if "starting Label Studio on" in line]
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", started)]
    assert len(ports) == 2 and not any(listening(p) for p in ports), "a server outlived the bench"
    print(f"\nbench loop, 5 labels: {result['seconds']} s; {json.dumps(result)}")


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_each_promoted_slow_version_is_paired_with_the_fast_one_at_its_label_count() -> None:
    from tools.bench.versions import summary

    def v(name: str, tier: str, n: int, acc: float, status: str = "ready", s: float | None = None) -> dict:
        return {"version": name, "tier": tier, "status": status, "n_train": n, "heldout_accuracy": acc,
                "trigger_to_version_s": s}  # fmt: skip

    scored = [
        v("1-fast-9", "fast", 9, 0.70), v("1-fast-10", "fast", 10, 0.74), v("1-setfit-1", "setfit", 10, 0.78, s=130.0),
        v("1-fast-50", "fast", 50, 0.85), v("1-setfit-2", "setfit", 60, 0.80, "rejected", 150.0),
        v("1-setfit-3", "setfit", 90, 0.87, s=218.0),
    ]  # fmt: skip
    out = summary(scored)
    assert [p["version"] for p in out["slow_versions"]] == ["1-setfit-1", "1-setfit-3"]  # the rejected one is not
    assert out["slow_promoted"] == "1-setfit-1" and out["fast_same_labels"] == "1-fast-10"
    assert out["slow_versions"][1]["fast_version"] == "1-fast-50"  # the nearest count below 90
    assert out["slow_max_trigger_to_promoted_s"] == 218.0 and out["slow_minus_fast_min_pp"] == 2.0
    assert [r["version"] for r in out["slow_rejected"]] == ["1-setfit-2"] and out["slow_rejected"][0]["heldout"] == 0.80
    assert summary([v("1-fast-3", "fast", 3, 0.5)])["slow_promoted"] is None
