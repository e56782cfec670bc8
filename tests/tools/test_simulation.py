"""Active-learning simulation: data loading, embedding cache, config validation, and real runs on small slices."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.models.encoder import Encoder
from tests.conftest import read_rows
from tools.simulation import (
    DatasetError,
    EmbeddingCache,
    SimulationConfig,
    SimulationConfigError,
    load_dataset,
    run_simulation,
    trapezoid_auc,
)
from tools.simulation.loop import f1_scores

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONTRACT_KEYS = {"dataset", "pool", "eval", "multi_label", "metric", "config", "strategies", "auc", "seconds"}
ENTRY_KEYS = {"auc", "auc_std", "auc_minus_random", "curve", "macro_f1_curve", "per_seed", "multi_label_strategy"}


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """Rows (text, label, ...) → a CSV with the data sets' format."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def ag_news_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 160-row pool and a 60-row eval slice of ag_news."""
    root = tmp_path_factory.mktemp("ag_news")
    return write_csv(root / "ag_slice.csv", read_rows("ag_news", 160)), write_csv(
        root / "ag_eval.csv", read_rows("ag_news", 60, offset=3000)
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the module: later runs on the same texts encode nothing."""
    return tmp_path_factory.mktemp("embedding_cache")


def ag_config(files: tuple[Path, Path], out_dir: Path, cache_dir: Path, **overrides: Any) -> SimulationConfig:
    """Two seeds, 10 seed rows, batches of 10 up to 50 labels."""
    values: dict[str, Any] = {"strategies": ("margin",), "seeds": 2, "seed_size": 10, "batch": 10, "budget": 50}
    values.update(overrides)
    return SimulationConfig(pool_path=files[0], eval_path=files[1], out_dir=out_dir, cache_dir=cache_dir, **values)


@pytest.fixture(scope="module")
def ag_results(
    ag_news_files: tuple[Path, Path], cache_dir: Path, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """One real single-label run (margin asked; random added) and its output directory."""
    out = tmp_path_factory.mktemp("ag_out")
    return run_simulation(ag_config(ag_news_files, out, cache_dir), encoder), out


@pytest.mark.model
def test_single_label_results_follow_the_contract(ag_results: tuple[dict[str, Any], Path]) -> None:
    results, out = ag_results
    assert results.keys() >= CONTRACT_KEYS
    assert results["dataset"] == "ag_slice" and results["metric"] == "accuracy" and results["multi_label"] is False
    assert list(results["strategies"]) == ["margin", "random"]
    assert json.loads((out / "results.json").read_text()) == results
    for name, entry in results["strategies"].items():
        assert entry.keys() >= ENTRY_KEYS
        assert 0.0 <= entry["auc"] <= 1.0 and results["auc"][name] == entry["auc"]
        assert entry["auc_minus_random"] == pytest.approx(entry["auc"] - results["auc"]["random"])
        assert entry["curve"]["labels"] == [10, 20, 30, 40, 50] == entry["macro_f1_curve"]["labels"]
        assert len(entry["curve"]["mean"]) == len(entry["curve"]["std"]) == 5
        assert [s["seed"] for s in entry["per_seed"]] == [0, 1] and "accuracy" in entry["per_seed"][0]
        per_seed_auc = [trapezoid_auc(s["labels"], s["accuracy"]) for s in entry["per_seed"]]
        assert entry["auc"] == pytest.approx(np.mean(per_seed_auc))


@pytest.mark.model
def test_strategies_share_the_seed_set(ag_results: tuple[dict[str, Any], Path]) -> None:
    """Same seed → same initial rows, so every strategy's first point is the same."""
    strategies = ag_results[0]["strategies"]
    for seed in (0, 1):
        assert (
            strategies["margin"]["per_seed"][seed]["accuracy"][0]
            == strategies["random"]["per_seed"][seed]["accuracy"][0]
        )


@pytest.mark.model
def test_pngs_are_written(ag_results: tuple[dict[str, Any], Path]) -> None:
    import matplotlib.image

    for name in ("learning_curves.png", "learning_curves_macro_f1.png"):
        path = ag_results[1] / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert matplotlib.image.imread(path).ndim == 3


@pytest.mark.model
def test_same_seed_gives_the_same_curve(
    ag_news_files: tuple[Path, Path],
    cache_dir: Path,
    encoder: Encoder,
    ag_results: tuple[dict[str, Any], Path],
    tmp_path: Path,
) -> None:
    again = run_simulation(ag_config(ag_news_files, tmp_path, cache_dir), encoder)
    for name, entry in ag_results[0]["strategies"].items():
        assert again["strategies"][name]["per_seed"] == entry["per_seed"]


@pytest.mark.model
def test_multi_label_run_reports_micro_f1(encoder: Encoder, cache_dir: Path, tmp_path: Path) -> None:
    rows = read_rows("jigsaw_toxic", 160)
    pool = write_csv(tmp_path / "toxic_pool.csv", rows[:100])
    evaluation = write_csv(tmp_path / "toxic_eval.csv", rows[100:])
    config = SimulationConfig(
        pool_path=pool,
        eval_path=evaluation,
        out_dir=tmp_path / "out",
        cache_dir=cache_dir,
        strategies=("mean_label_uncertainty", "entropy"),
        seeds=1,
        seed_size=10,
        batch=15,
        budget=40,
    )
    results = run_simulation(config, encoder)
    assert results["multi_label"] is True and results["metric"] == "micro_f1"
    assert list(results["strategies"]) == ["mean_label_uncertainty", "entropy", "random"]
    entry = results["strategies"]["mean_label_uncertainty"]
    assert entry["multi_label_strategy"] is True and results["strategies"]["entropy"]["multi_label_strategy"] is False
    assert "micro_f1" in entry["per_seed"][0] and entry["curve"]["labels"] == [10, 25, 40]
    assert all(0.0 <= a <= 1.0 for a in results["auc"].values())
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_default_strategy_runs_when_none_is_asked(tmp_path: Path) -> None:
    config = SimulationConfig(pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path)
    assert config.strategy_names == ("margin", "random")
    other = SimulationConfig(
        pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path, default_strategy="entropy"
    )
    assert other.strategy_names == ("entropy", "random")
    asked = SimulationConfig(
        pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path, strategies=("random", "coreset")
    )
    assert asked.strategy_names == ("random", "coreset")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"budget": 10, "seed_size": 20}, "budget: got 10, expected >= seed_size (20)"),
        ({"batch": 0}, "batch: got 0, expected an integer >= 1"),
        ({"seeds": 0}, "seeds: got 0, expected an integer >= 1"),
        ({"strategies": ("nope",)}, "unknown strategy 'nope'; known: ["),
    ],
)
def test_config_validation_names_the_value_and_what_is_allowed(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SimulationConfigError) as err:
        SimulationConfig(pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path, **overrides)
    assert message in err.value.reason
    if "strategies" in overrides:
        assert "'margin'" in err.value.reason and "'random'" in err.value.reason


def test_budget_larger_than_the_pool_is_refused(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "p.csv", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(6)])

    class NoEncoder:
        source = "none"

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            raise AssertionError("nothing should be encoded")

    config = SimulationConfig(pool_path=pool, eval_path=pool, out_dir=tmp_path, seed_size=2, budget=10)
    with pytest.raises(SimulationConfigError, match=r"budget: got 10, expected <= the pool size \(6 rows"):
        run_simulation(config, NoEncoder())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("text,split\nhello,train\n", "missing column(s) ['label']; found columns ['text', 'split']"),
        ("text,label\n", "no data rows after the header"),
        ("text,label\nhello,World\nbye\n", "data row 2 (ending on line 3) has 1 fields; expected 2"),
    ],
)
def test_bad_csv_errors_name_the_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(path) in err.value.reason and message in err.value.reason


def test_load_dataset_labels_and_multi_label_detection(tmp_path: Path) -> None:
    single = load_dataset(write_csv(tmp_path / "s.csv", [{"text": "a", "label": "B"}, {"text": "b", "label": "A"}]))
    assert single.labels == ("B", "A") and single.targets == (("B",), ("A",)) and not single.multi_label
    multi = load_dataset(
        write_csv(
            tmp_path / "m.csv", [{"text": "a", "label": ""}, {"text": "b", "label": "x|y"}, {"text": "c", "label": "y"}]
        )
    )
    assert multi.multi_label and multi.labels == ("x", "y") and multi.targets == ((), ("x", "y"), ("y",))
    assert multi.name == "m" and len(multi) == 3


class CountingEncoder:
    """Deterministic fake: a text's vector depends on its length; records what it was asked to encode."""

    source = "counting-fake"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32).reshape(len(texts), 3)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_embedding_cache_encodes_only_missing_texts(tmp_path: Path) -> None:
    encoder, calls = CountingEncoder(), []
    cache = EmbeddingCache(tmp_path, encoder.source)
    first = cache.embed(["a", "bb", "a"], encoder, progress=lambda *args: calls.append(args))
    assert encoder.seen == ["a", "bb"] and first.shape == (3, 3) and first.dtype == np.float32
    assert calls[-1] == ("embed", 2, 2)
    second = EmbeddingCache(tmp_path, encoder.source).embed(["bb", "ccc", "a"], encoder)
    assert encoder.seen == ["a", "bb", "ccc"]
    np.testing.assert_array_equal(second[[0, 2]], first[[1, 0]])
    other = EmbeddingCache(tmp_path, "another-encoder").embed(["a"], encoder)
    assert encoder.seen[-1] == "a" and other.shape == (1, 3)


def test_auc_and_f1_by_hand() -> None:
    assert trapezoid_auc([10, 20, 40], [0.5, 0.7, 0.7]) == pytest.approx((6.0 + 14.0) / 30)
    assert trapezoid_auc([10], [0.4]) == 0.4
    truth = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)
    pred = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)
    micro, macro = f1_scores(truth, pred)
    assert micro == pytest.approx(2 * 2 / (2 * 2 + 2)) and macro == pytest.approx((1.0 + 0.0) / 2)


def test_one_class_seed_set_falls_back_and_is_recorded(tmp_path: Path) -> None:
    """A seed set of one row cannot fit a head: that step uses uniform probabilities and is recorded."""
    rows = [{"text": "x" * (i + 1), "label": "short" if i < 10 else "long"} for i in range(20)]
    pool = write_csv(tmp_path / "lengths.csv", rows)
    config = SimulationConfig(
        pool_path=pool,
        eval_path=pool,
        out_dir=tmp_path / "out",
        strategies=("coreset",),
        seed_size=1,
        batch=3,
        budget=7,
    )
    results = run_simulation(config, CountingEncoder())
    for entry in results["strategies"].values():
        assert entry["curve"]["labels"] == [1, 4, 7]
        assert all(s["fallback_at"][:1] == [1] for s in entry["per_seed"])
        assert all(s["accuracy"][0] == 0.5 for s in entry["per_seed"])


def test_report_of_a_simulation(ag_results: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backend.cli import app

    _, out = ag_results
    result = CliRunner().invoke(app, ["report", "--simulation", str(out), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "random" in report["strategies"]
    for name, entry in report["strategies"].items():
        assert 0.0 <= entry["accuracy"] <= 1.0 and 0.0 <= entry["calibration"]["ece"] <= 1.0
        assert (tmp_path / "report" / f"confusion_{name}.png").exists()
    both = CliRunner().invoke(app, ["report", "--simulation", str(out), "--project", "1", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one" in both.output


@pytest.mark.model
def test_setfit_option_fine_tunes_the_body_every_step(encoder: Encoder, tmp_path: Path) -> None:
    from backend.models.encoder import bundled_model_path

    rows = read_rows("ag_news", 60, offset=5000)
    files = (write_csv(tmp_path / "pool.csv", rows[:40]), write_csv(tmp_path / "eval.csv", rows[40:]))
    config = SimulationConfig(
        pool_path=files[0],
        eval_path=files[1],
        out_dir=tmp_path / "out",
        strategies=("margin",),
        seeds=1,
        seed_size=8,
        batch=8,
        budget=16,
        model="setfit",
        setfit_base=bundled_model_path(),
        setfit_steps=2,
    )
    results = run_simulation(config, encoder)
    assert results["config"]["model"] == "setfit" and set(results["strategies"]) == {"margin", "random"}
    assert results["strategies"]["margin"]["curve"]["labels"] == [8, 16]
    with pytest.raises(SimulationConfigError, match="model: got 'bert'"):
        SimulationConfig(pool_path=files[0], eval_path=files[1], out_dir=tmp_path, model="bert")
