"""Active-learning simulation: the served path at every step, priors, labeling configs, results, CLI; real data slices."""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from backend.config import Settings
from backend.models.encoder import Encoder
from tests.conftest import CONFIGS, config_xml, read_rows
from tools.simulation import (
    DatasetError,
    ServedBody,
    SimulationConfig,
    SimulationConfigError,
    embed_in_chunks,
    load_dataset,
    run_simulation,
    trapezoid_auc,
)
from tools.simulation.metrics import f1_scores

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NEWS = CONFIGS / "news_topics.xml"
NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
CONTRACT_KEYS = {"dataset", "pool", "eval", "multi_label", "metric", "labels", "config", "strategies", "auc", "seconds"}
PRIOR_KEYS = {"zero_shot", "priors", "prior", "control", "body"}
ENTRY_KEYS = {
    "auc",
    "auc_std",
    "auc_minus_random",
    "curve",
    "macro_f1_curve",
    "ece",
    "ece_uncalibrated",
    "per_seed",
    "multi_label_strategy",
    "prior",
}
X = [0, 10, 20, 30, 40, 50]


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
def services(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Services on a fresh data dir serving the session's torch body (no ONNX export in tests)."""
    from backend.bootstrap import build

    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), serve_precision="torch")
    built = build(settings, base_encoder=encoder, role="cli")
    yield built
    built.close()


@pytest.fixture(scope="module")
def body(services: Any) -> ServedBody:
    """The served base body, embedding through tagloop's cache."""
    return ServedBody.of(services)


def ag_config(files: tuple[Path, Path], out_dir: Path, **overrides: Any) -> SimulationConfig:
    """Both priors, news_topics.xml, two seeds, 10 seed rows, batches of 10 up to 50 labels."""
    values: dict[str, Any] = {
        "strategies": ("margin",),
        "priors": ("zeroshot", "none"),
        "label_config": NEWS,
        "seeds": 2,
        "seed_size": 10,
        "batch": 10,
        "budget": 50,
    }
    values.update(overrides)
    return SimulationConfig(pool_path=files[0], eval_path=files[1], out_dir=out_dir, **values)


@pytest.fixture(scope="module")
def ag_results(
    ag_news_files: tuple[Path, Path], body: ServedBody, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """One real single-label run (margin asked, random added; both priors) and its output directory."""
    out = tmp_path_factory.mktemp("ag_out")
    return run_simulation(ag_config(ag_news_files, out), body), out


@pytest.mark.model
def test_results_follow_the_contract_for_every_prior(ag_results: tuple[dict[str, Any], Path]) -> None:
    results, out = ag_results
    assert results.keys() >= CONTRACT_KEYS | PRIOR_KEYS
    assert results["dataset"] == "ag_slice" and results["metric"] == "accuracy" and results["multi_label"] is False
    assert results["labels"] == NEWS_LABELS and results["control"]["name"] == "topic"
    assert results["control"]["hints"][0].startswith("world politics")
    assert list(results["priors"]) == ["zeroshot", "none"] and results["prior"] == "zeroshot"
    assert results["strategies"] == results["priors"]["zeroshot"]["strategies"]
    assert results["auc"] == results["priors"]["zeroshot"]["auc"]
    assert json.loads((out / "results.json").read_text()) == results
    for prior, block in results["priors"].items():
        assert list(block["strategies"]) == ["margin", "random"]
        for name, entry in block["strategies"].items():
            assert entry.keys() >= ENTRY_KEYS and entry["prior"] == prior
            assert ("blend_weight" in entry) == (prior == "zeroshot")
            assert 0.0 <= entry["auc"] <= 1.0 and block["auc"][name] == entry["auc"]
            assert entry["auc_minus_random"] == pytest.approx(entry["auc"] - block["auc"]["random"])
            for key in ("curve", "macro_f1_curve", "ece", "ece_uncalibrated", "suggestions_right", "zero_shot_right"):
                assert entry[key]["labels"] == X and len(entry[key]["mean"]) == len(entry[key]["std"]) == len(X)
            for run in entry["per_seed"]:  # cumulative counts of right suggestions among the rows labeled so far
                for key in ("suggestions_right", "zero_shot_right"):
                    assert run[key][0] == 0 and all(
                        0 <= b - a <= n - m for a, b, m, n in zip(run[key], run[key][1:], X, X[1:])
                    )
            assert [s["seed"] for s in entry["per_seed"]] == [0, 1]
            per_seed_auc = [trapezoid_auc(s["labels"], s["accuracy"]) for s in entry["per_seed"]]
            assert entry["auc"] == pytest.approx(np.mean(per_seed_auc))


@pytest.mark.model
def test_zero_label_point_is_the_served_zero_shot_accuracy(
    ag_results: tuple[dict[str, Any], Path], ag_news_files: tuple[Path, Path], encoder: Encoder
) -> None:
    """x = 0 is what a project with news_topics.xml serves before any label: label names + hints."""
    from backend.labelstudio.label_config import parse_label_config
    from backend.models.classifier import zero_shot_heads

    results = ag_results[0]
    evaluation = load_dataset(ag_news_files[1])
    prior = zero_shot_heads(encoder, parse_label_config(config_xml("news_topics")), 0.05)["topic"]
    truth = np.array([NEWS_LABELS.index(t[0]) for t in evaluation.targets])
    expected = float((prior.predict_proba(encoder.encode(evaluation.texts)).argmax(axis=1) == truth).mean())
    assert results["zero_shot"]["accuracy"] == pytest.approx(expected, abs=1 / 60)
    for entry in results["priors"]["zeroshot"]["strategies"].values():
        assert all(s["accuracy"][0] == results["zero_shot"]["accuracy"] for s in entry["per_seed"])
        assert all(s["fallback_at"] == [0] and s["blend_weight"][0] == 0.0 for s in entry["per_seed"])
        assert entry["ece"]["mean"][0] == entry["ece_uncalibrated"]["mean"][0] == results["zero_shot"]["ece"]


@pytest.mark.model
def test_prior_none_reproduces_the_head_only_curve(
    ag_results: tuple[dict[str, Any], Path], ag_news_files: tuple[Path, Path], body: ServedBody
) -> None:
    """``--prior none`` replays the old simulation: a logistic head alone, refitted at every step."""
    pool, evaluation = load_dataset(ag_news_files[0]), load_dataset(ag_news_files[1])
    pool_emb, eval_emb = body.embed(pool.texts), body.embed(evaluation.texts)
    truth = np.array([NEWS_LABELS.index(t[0]) for t in evaluation.targets])
    with threadpool_limits(1, "blas"):  # as the simulation runs
        curves = {(name, seed): head_only_curve(name, seed, pool, pool_emb, eval_emb, truth) for name, seed in RUNS}
    for (name, seed), curve in curves.items():
        got = ag_results[0]["priors"]["none"]["strategies"][name]["per_seed"][seed]
        assert got["accuracy"] == pytest.approx(curve) and got["fallback_at"] == [0]


RUNS = [("margin", 0), ("margin", 1), ("random", 0), ("random", 1)]


def head_only_curve(
    name: str, seed: int, pool: Any, pool_emb: np.ndarray, eval_emb: np.ndarray, truth: np.ndarray
) -> list[float]:
    """The old simulation's loop (seed set 10, batch 10, budget 50) with the 0-label point in front."""
    from backend.models.heads import fit_head
    from strategies import get_strategy

    rng = np.random.default_rng(seed)
    order = list(np.sort(rng.choice(len(pool), 10, replace=False)))
    curve = [float((truth == 0).mean())]  # 0 labels: uniform probabilities, arg-max = the first label
    while True:
        head = fit_head(tuple(NEWS_LABELS), False, pool_emb[order], [list(pool.targets[i]) for i in order], seed=42)
        assert head is not None
        curve.append(float((head.predict_proba(eval_emb).argmax(axis=1) == truth).mean()))
        if len(order) >= 50:
            return curve
        unlabeled = np.setdiff1d(np.arange(len(pool)), order)
        picked = get_strategy(name)(head.predict_proba(pool_emb[unlabeled]), 10, rng=rng)
        order.extend(int(i) for i in unlabeled[picked.indices])


@pytest.mark.model
def test_strategies_share_the_seed_set(ag_results: tuple[dict[str, Any], Path]) -> None:
    """Same seed → same initial rows, so every strategy's point at the seed set is the same within a prior."""
    for block in ag_results[0]["priors"].values():
        margin, random = block["strategies"]["margin"], block["strategies"]["random"]
        for seed in (0, 1):
            assert margin["per_seed"][seed]["accuracy"][:2] == random["per_seed"][seed]["accuracy"][:2]


@pytest.mark.model
def test_pngs_are_written(ag_results: tuple[dict[str, Any], Path]) -> None:
    import matplotlib.image

    for name in ("learning_curves.png", "learning_curves_macro_f1.png"):
        path = ag_results[1] / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert matplotlib.image.imread(path).ndim == 3


@pytest.mark.model
def test_embeddings_go_through_tagloops_cache(
    ag_results: tuple[dict[str, Any], Path], ag_news_files: tuple[Path, Path], services: Any, body: ServedBody
) -> None:
    """After a run the store holds every text under the served body: encoding them again encodes nothing."""

    served = body.encoder

    class NoEncode:
        source, dim = served.source, served.dim
        max_seq_length = getattr(served, "max_seq_length", None)
        body = getattr(served, "body", None)

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            raise AssertionError(f"{len(texts)} texts were not cached")

    assert ag_results[0]["body"] == body.encoder.source
    texts = load_dataset(ag_news_files[0]).texts + load_dataset(ag_news_files[1]).texts
    cached = services.embeddings.encode(NoEncode(), list(texts))
    np.testing.assert_array_equal(cached, body.embed(texts))


@pytest.mark.model
def test_same_seed_gives_the_same_curve(
    ag_news_files: tuple[Path, Path], body: ServedBody, ag_results: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    again = run_simulation(ag_config(ag_news_files, tmp_path, seeds=1, priors=("zeroshot",)), body)
    for name, entry in ag_results[0]["strategies"].items():
        assert again["strategies"][name]["per_seed"][0] == entry["per_seed"][0]


@pytest.mark.model
def test_seed_size_zero_lets_the_strategy_pick_from_zero_shot(
    ag_news_files: tuple[Path, Path], body: ServedBody, tmp_path: Path
) -> None:
    """Without a seed set, margin labels the rows the zero-shot prior is least sure of, then the served head is fit."""
    from backend.labelstudio.label_config import parse_label_config
    from backend.models.classifier import zero_shot_heads
    from backend.training.fitting import served_head
    from strategies import get_strategy

    config = ag_config(ag_news_files, tmp_path, seed_size=0, budget=10, seeds=1, priors=("zeroshot",))
    results = run_simulation(config, body)
    margin = results["strategies"]["margin"]["per_seed"][0]
    assert margin["labels"] == [0, 10] and margin["accuracy"][0] == results["zero_shot"]["accuracy"]

    pool, evaluation = load_dataset(ag_news_files[0]), load_dataset(ag_news_files[1])
    control = parse_label_config(config_xml("news_topics")).controls[0]
    prior = zero_shot_heads(body.encoder, parse_label_config(config_xml("news_topics")), 0.05)["topic"]
    pool_emb, eval_emb = body.embed(pool.texts), body.embed(evaluation.texts)
    rng = np.random.default_rng(0)
    rng.choice(len(pool), 0, replace=False)  # the (empty) seed set draw
    picked = get_strategy("margin")(prior.predict_proba(pool_emb), 10, rng=rng).indices
    with threadpool_limits(1, "blas"):
        head, _ = served_head(
            control, prior, pool_emb[picked], [list(pool.targets[i]) for i in picked], seed=42, prior_strength=20.0
        )
    truth = np.array([NEWS_LABELS.index(t[0]) for t in evaluation.targets])
    assert margin["accuracy"][1] == float((head.predict_proba(eval_emb).argmax(axis=1) == truth).mean())
    # The first batch was queued by the zero-shot prior: what the annotator saw is what zero-shot says.
    shown = prior.predict_proba(pool_emb[picked]).argmax(axis=1)
    right = int(sum(NEWS_LABELS[j] == pool.targets[i][0] for i, j in zip(picked, shown, strict=True)))
    assert margin["suggestions_right"] == margin["zero_shot_right"] == [0, right]


@pytest.mark.model
def test_multi_label_run_reports_micro_f1(body: ServedBody, tmp_path: Path) -> None:
    rows = read_rows("jigsaw_toxic", 100)
    pool = write_csv(tmp_path / "toxic_pool.csv", rows[:60])
    evaluation = write_csv(tmp_path / "toxic_eval.csv", rows[60:])
    config = SimulationConfig(
        pool_path=pool,
        eval_path=evaluation,
        out_dir=tmp_path / "out",
        strategies=("mean_label_uncertainty", "entropy"),
        seeds=1,
        seed_size=10,
        batch=15,
        budget=40,
    )
    results = run_simulation(config, body)
    assert results["multi_label"] is True and results["metric"] == "micro_f1"
    assert results["control"] == {"name": "label", "hints": [""] * len(results["labels"]), "config": None}
    assert list(results["strategies"]) == ["mean_label_uncertainty", "entropy", "random"]
    entry = results["strategies"]["mean_label_uncertainty"]
    assert entry["multi_label_strategy"] is True and results["strategies"]["entropy"]["multi_label_strategy"] is False
    assert entry["curve"]["labels"] == [0, 10, 25, 40]
    assert entry["per_seed"][0]["micro_f1"][0] == results["zero_shot"]["micro_f1"]
    assert all(0.0 <= a <= 1.0 for a in results["auc"].values())
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_labels_outside_the_config_are_refused_naming_both(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": "World"}, {"text": "b", "label": "Politics"}, {"text": "c", "label": "Tech"}]
    pool = write_csv(tmp_path / "p.csv", rows)
    config = SimulationConfig(
        pool_path=pool, eval_path=pool, out_dir=tmp_path, label_config=NEWS, seed_size=1, batch=1, budget=2
    )
    with pytest.raises(SimulationConfigError) as err:
        run_simulation(config, ServedBody.uncached(NoEncoder()))
    assert "label(s) ['Politics', 'Tech'] are not choices of <Choices name='topic'>" in err.value.reason
    assert f"allowed: {NEWS_LABELS}" in err.value.reason and str(pool) in err.value.reason


def test_multi_label_data_needs_a_multiple_choice_config(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "p.csv", [{"text": "a", "label": "World|Sports"}, {"text": "b", "label": "World"}])
    config = SimulationConfig(
        pool_path=pool, eval_path=pool, out_dir=tmp_path, label_config=NEWS, seed_size=1, budget=2
    )
    with pytest.raises(SimulationConfigError, match='is multi-label .* expected choice="multiple"'):
        run_simulation(config, ServedBody.uncached(NoEncoder()))


def test_unreadable_or_unservable_config_is_refused(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "p.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    bad = tmp_path / "bad.xml"
    bad.write_text("<View><Text name='text' value='$text'/></View>")
    for path, message in ((tmp_path / "nope.xml", "cannot be read"), (bad, "no <Choices> bound to a text object")):
        config = SimulationConfig(
            pool_path=pool, eval_path=pool, out_dir=tmp_path, label_config=path, seed_size=1, budget=2
        )
        with pytest.raises(SimulationConfigError) as err:
            run_simulation(config, ServedBody.uncached(NoEncoder()))
        assert f"config: {path}" in err.value.reason and message in err.value.reason


def test_default_strategy_and_label_counts(tmp_path: Path) -> None:
    config = SimulationConfig(pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path)
    assert config.strategy_names == ("margin", "random") and config.priors == ("zeroshot",)
    other = SimulationConfig(
        pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path, default_strategy="entropy"
    )
    assert other.strategy_names == ("entropy", "random")
    asked = SimulationConfig(
        pool_path=tmp_path / "p.csv", eval_path=tmp_path / "e.csv", out_dir=tmp_path, strategies=("random", "coreset")
    )
    assert asked.strategy_names == ("random", "coreset")
    sizes = functools.partial(SimulationConfig, pool_path=tmp_path / "p.csv", eval_path=tmp_path, out_dir=tmp_path)
    assert sizes(seed_size=20, batch=20, budget=100).label_counts == [0, 20, 40, 60, 80, 100]
    assert sizes(seed_size=0, batch=20, budget=50).label_counts == [0, 20, 40, 50]
    assert sizes(seed_size=5, batch=20, budget=5).label_counts == [0, 5]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"budget": 10, "seed_size": 20}, "budget: got 10, expected >= seed_size (20)"),
        ({"batch": 0}, "batch: got 0, expected an integer >= 1"),
        ({"seeds": 0}, "seeds: got 0, expected an integer >= 1"),
        ({"seed_size": -1}, "seed_size: got -1, expected an integer >= 0"),
        ({"priors": ("zeroshot", "bayes")}, "prior: got ['zeroshot', 'bayes'], expected one or more of ['zeroshot', "),
        ({"prior_strength": -1.0}, "prior_strength: got -1.0, expected a number >= 0.0"),
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


class NoEncoder:
    """A body that must not be used."""

    source = "none"
    dim = 3

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("nothing should be encoded")


def test_budget_larger_than_the_pool_is_refused(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "p.csv", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(6)])
    config = SimulationConfig(pool_path=pool, eval_path=pool, out_dir=tmp_path, seed_size=2, budget=10)
    with pytest.raises(SimulationConfigError, match=r"budget: got 10, expected <= the pool size \(6 rows"):
        run_simulation(config, ServedBody.uncached(NoEncoder()))


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


class LengthEncoder:
    """Deterministic fake body: a text's vector depends on its length; records what it was asked to encode."""

    source = "length-fake"
    dim = 3

    def __init__(self) -> None:
        self.seen: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.append(len(texts))
        out = np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32).reshape(len(texts), 3)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_embed_in_chunks_reports_progress_per_chunk() -> None:
    encoder, calls = LengthEncoder(), []
    out = embed_in_chunks(["x" * i for i in range(600)], encoder.encode, progress=lambda *a: calls.append(a))
    assert encoder.seen == [256, 256, 88] and out.shape == (600, 3) and out.dtype == np.float32
    assert calls == [("embed", 256, 600), ("embed", 512, 600), ("embed", 600, 600)]


def test_auc_and_f1_by_hand() -> None:
    assert trapezoid_auc([10, 20, 40], [0.5, 0.7, 0.7]) == pytest.approx((6.0 + 14.0) / 30)
    assert trapezoid_auc([10], [0.4]) == 0.4
    truth = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)
    pred = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)
    micro, macro = f1_scores(truth, pred)
    assert micro == pytest.approx(2 * 2 / (2 * 2 + 2)) and macro == pytest.approx((1.0 + 0.0) / 2)


def test_few_labels_serve_the_prior_and_one_class_falls_back(tmp_path: Path) -> None:
    """One labeled row: no head. ``zeroshot`` serves the prior (below min_labels_to_train), ``none`` is uniform."""
    rows = [{"text": "x" * (i + 1), "label": "short" if i < 10 else "long"} for i in range(20)]
    pool = write_csv(tmp_path / "lengths.csv", rows)
    config = SimulationConfig(
        pool_path=pool,
        eval_path=pool,
        out_dir=tmp_path / "out",
        strategies=("coreset",),
        priors=("none", "zeroshot"),
        seed_size=1,
        batch=3,
        budget=7,
        seeds=2,
    )
    results = run_simulation(config, ServedBody.uncached(LengthEncoder()))
    assert results["prior"] == "none" and results["strategies"] == results["priors"]["none"]["strategies"]
    for prior, block in results["priors"].items():
        for entry in block["strategies"].values():
            assert entry["curve"]["labels"] == [0, 1, 4, 7]
            for s in entry["per_seed"]:
                assert s["fallback_at"][:2] == [0, 1]
                if prior == "none":
                    assert s["accuracy"][:2] == [0.5, 0.5]
                else:
                    assert s["accuracy"][1] == results["zero_shot"]["accuracy"] and s["blend_weight"][:2] == [0, 0]


def test_report_of_a_simulation(ag_results: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backend.cli import app

    _, out = ag_results
    result = CliRunner().invoke(app, ["report", "--simulation", str(out), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["strategies"]) == {"margin", "random"}
    for name, entry in report["strategies"].items():
        assert 0.0 <= entry["accuracy"] <= 1.0 and 0.0 <= entry["calibration"]["ece"] <= 1.0
        assert (tmp_path / "report" / f"confusion_{name}.png").exists()
    both = CliRunner().invoke(app, ["report", "--simulation", str(out), "--project", "1", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one" in both.output


@pytest.mark.model
def test_cli_end_to_end(
    ag_news_files: tuple[Path, Path],
    encoder: Encoder,
    services: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tagloop simulate` builds services on its data dir (here the module's: its texts are cached; the session's
    body is shared) and prints one line per (prior, strategy)."""
    from typer.testing import CliRunner

    import backend.bootstrap
    from backend.cli import app

    real = backend.bootstrap.build_services
    monkeypatch.setattr(backend.bootstrap, "build_services", functools.partial(real, base_encoder=encoder))
    pool, evaluation = ag_news_files
    base = ["simulate", "--data", str(pool), "--eval", str(evaluation), "--data-dir", str(services.settings.data_dir)]
    sizes = ["--seeds", "1", "--seed-size", "10", "--batch", "10", "--budget", "20"]
    args = [
        *base,
        *sizes,
        "--out",
        str(tmp_path / "out"),
        "--config",
        str(NEWS),
        "--prior",
        "none",
        "--prior",
        "zeroshot",
    ]
    result = CliRunner().invoke(app, args, env={"TAGLOOP_SERVE_PRECISION": "torch"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("zero-shot accuracy: 0.")
    assert sorted(line.split()[:2] for line in lines[1:5]) == [
        ["none", "margin"],
        ["none", "random"],
        ["zeroshot", "margin"],
        ["zeroshot", "random"],
    ]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["prior"] == "none" and list(results["priors"]) == ["none", "zeroshot"]
    assert results["config"]["prior_strength"] == 20.0 and results["config"]["label_config"] == str(NEWS)

    bad = write_csv(tmp_path / "bad.csv", [{"text": "a", "label": "Politics"}, {"text": "b", "label": "World"}])
    refused = CliRunner().invoke(app, [*base[:2], str(bad), *base[3:], "--out", str(tmp_path), "--config", str(NEWS)])
    assert refused.exit_code == 2 and "['Politics'] are not choices" in refused.output


@pytest.mark.model
def test_setfit_option_fine_tunes_the_body_every_step(body: ServedBody, tmp_path: Path) -> None:
    from backend.models.encoder import bundled_model_path

    rows = read_rows("ag_news", 60, offset=5000)
    files = (write_csv(tmp_path / "pool.csv", rows[:40]), write_csv(tmp_path / "eval.csv", rows[40:]))
    config = SimulationConfig(
        pool_path=files[0],
        eval_path=files[1],
        out_dir=tmp_path / "out",
        strategies=("margin",),
        label_config=NEWS,
        seeds=1,
        seed_size=8,
        budget=8,
        model="setfit",
        setfit_base=bundled_model_path(),
        setfit_steps=2,
    )
    results = run_simulation(config, body)
    assert results["config"]["model"] == "setfit" and set(results["strategies"]) == {"margin", "random"}
    entry = results["strategies"]["margin"]
    assert entry["curve"]["labels"] == [0, 8] and entry["curve"]["mean"][0] == results["zero_shot"]["accuracy"]
    assert all(w is not None for w in entry["per_seed"][0]["blend_weight"])
    with pytest.raises(SimulationConfigError, match="model: got 'bert'"):
        SimulationConfig(pool_path=files[0], eval_path=files[1], out_dir=tmp_path, model="bert")
