"""Pool-based active-learning simulation, "frozen-embedding fast tier".

The pool and eval texts are embedded once; then, per strategy and seed, a logistic head is fitted on the
labeled embeddings at each step, scored on the eval set, and the strategy picks the next batch from the
unlabeled pool. Every strategy is compared with ``random`` run in the same invocation.

Index spaces: **dataset index** = row of the pool CSV (0-based); **pool position** = row of the unlabeled
subset handed to a strategy (what a ``Selection`` holds), mapped back with ``unlabeled[position]``.
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
from threadpoolctl import threadpool_limits

from backend.models.heads import fit_head
from strategies import MULTI_LABEL, Selection, StrategyError, get_strategy
from tools.simulation.data import LabeledDataset, SimulationError, load_dataset
from tools.simulation.embeddings import ProgressCallback, TextEncoder, embed_texts
from tools.simulation.plots import plot_learning_curves

Metric = Literal["accuracy", "micro_f1"]
MODELS = ("frozen", "setfit")
BASELINE = "random"
THRESHOLD = 0.5
"""Multi-label: a label is predicted when its probability is ≥ this (as the served model does)."""


class SimulationConfigError(SimulationError):
    """A simulation setting outside what it allows."""

    code = "bad_simulation_config"


class _Strategy(Protocol):
    def __call__(self, proba: np.ndarray, n_instances: int, **kwargs: Any) -> Selection: ...


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SimulationConfigError(f"{name}: got {value!r}, expected an integer >= {minimum}")


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """What to simulate. ``strategies`` empty → ``default_strategy``; ``random`` always runs too.

    ``budget`` counts the seed set: curves have x = seed_size, seed_size + batch, …, budget (the last step
    may be smaller than ``batch``). ``cache_dir``: where embeddings are kept between runs (None: no cache).
    """

    pool_path: Path
    eval_path: Path
    out_dir: Path
    strategies: tuple[str, ...] = ()
    default_strategy: str = "margin"
    seeds: int = 5
    seed_size: int = 20
    batch: int = 25
    budget: int = 500
    cache_dir: Path | None = None
    model: str = "frozen"
    """``frozen``: heads on fixed embeddings (fast tier). ``setfit``: at every step a copy of the body at
    ``setfit_base`` is fine-tuned with SetFit on the labeled rows and pool and eval are re-embedded (slow)."""
    setfit_base: Path | None = None
    setfit_steps: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategies", tuple(self.strategies))
        _check_int("seeds", self.seeds, 1)
        _check_int("seed_size", self.seed_size, 1)
        _check_int("batch", self.batch, 1)
        _check_int("budget", self.budget, 1)
        if self.model not in MODELS:
            raise SimulationConfigError(f"model: got {self.model!r}, expected one of {list(MODELS)}")
        if self.model == "setfit" and self.setfit_base is None:
            raise SimulationConfigError("setfit_base: got None, expected the body directory to fine-tune")
        if self.budget < self.seed_size:
            raise SimulationConfigError(
                f"budget: got {self.budget}, expected >= seed_size ({self.seed_size}); the budget counts the seed set"
            )
        for name in self.strategy_names:
            try:
                get_strategy(name)
            except StrategyError as exc:
                raise SimulationConfigError(f"strategy: {exc}") from None

    @property
    def strategy_names(self) -> tuple[str, ...]:
        """The strategies to run, in order, without repeats, ending with ``random`` unless asked earlier."""
        asked = self.strategies or (self.default_strategy,)
        return tuple(dict.fromkeys((*asked, BASELINE)))

    @property
    def label_counts(self) -> list[int]:
        """Labels at each evaluation: seed_size, seed_size + batch, …, budget."""
        return [*range(self.seed_size, self.budget, self.batch), self.budget]

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (paths as strings)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}
        out["strategies"] = list(self.strategy_names)
        return out


@dataclass(frozen=True)
class Problem:
    """Embedded pool and eval set on one label space (column j = ``labels[j]``).

    ``pool_emb`` (n_pool, dim) by dataset index; ``eval_emb`` (n_eval, dim); ``eval_truth`` (n_eval, n_labels) bool.
    """

    labels: tuple[str, ...]
    multi_label: bool
    pool_emb: np.ndarray
    pool_targets: tuple[tuple[str, ...], ...]
    eval_emb: np.ndarray
    eval_truth: np.ndarray
    pool_texts: tuple[str, ...] = ()
    eval_texts: tuple[str, ...] = ()

    @property
    def metric(self) -> Metric:
        """``micro_f1`` for multi-label data, else ``accuracy``."""
        return "micro_f1" if self.multi_label else "accuracy"


@dataclass
class SeedRun:
    """One strategy, one seed: the main metric and macro-F1 at each label count."""

    seed: int
    labels: list[int] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    fallback_at: list[int] = field(default_factory=list)
    """Label counts at which no head could be fitted (fewer than two classes): uniform / 0.5 probabilities."""
    final_eval_proba: np.ndarray | None = None
    """(n_eval, n_labels) probabilities of the model at the budget (for ``tagloop report --simulation``)."""


def indicator(targets: tuple[tuple[str, ...], ...], labels: tuple[str, ...]) -> np.ndarray:
    """Label lists → (n, n_labels) bool matrix, column j = labels[j]."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(targets), len(labels)), dtype=bool)
    for i, row in enumerate(targets):
        out[i, [index[label] for label in row]] = True
    return out


def predictions(proba: np.ndarray, multi_label: bool) -> np.ndarray:
    """(n, n_labels) probabilities → (n, n_labels) bool predictions: arg-max row, or p ≥ THRESHOLD."""
    if multi_label:
        return proba >= THRESHOLD
    out = np.zeros(proba.shape, dtype=bool)
    out[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return out


def f1_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(micro-F1, macro-F1) of (n, n_labels) bool matrices; macro over labels true or predicted at least once.

    0/0 counts as 0 (scikit-learn's ``zero_division=0``). For single-label rows micro-F1 equals accuracy.
    """
    tp = (truth & pred).sum(axis=0)
    wrong = (truth ^ pred).sum(axis=0)
    present = (tp + wrong) > 0
    micro_den = 2 * tp.sum() + wrong.sum()
    micro = float(2 * tp.sum() / micro_den) if micro_den else 0.0
    macro = float((2 * tp[present] / (2 * tp[present] + wrong[present])).mean()) if present.any() else 0.0
    return micro, macro


def trapezoid_auc(x: list[int], y: list[float]) -> float:
    """Area under y(x) by the trapezoid rule divided by the x range (the value itself for one point)."""
    if len(x) == 1:
        return float(y[0])
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def build_problem(
    pool: LabeledDataset, evaluation: LabeledDataset, pool_emb: np.ndarray, eval_emb: np.ndarray
) -> Problem:
    """One label space for both files: pool labels first, then eval-only labels, in order of appearance."""
    labels = tuple(dict.fromkeys((*pool.labels, *evaluation.labels)))
    multi_label = pool.multi_label or evaluation.multi_label
    truth = indicator(evaluation.targets, labels)
    return Problem(
        labels, multi_label, pool_emb, pool.targets, eval_emb, truth, tuple(pool.texts), tuple(evaluation.texts)
    )


def fit_and_predict(
    problem: Problem, labeled: np.ndarray, unlabeled: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fit a head on the ``labeled`` dataset indices; (eval proba, unlabeled proba, whether a head was fitted).

    Probabilities are (n_eval, n_labels) and (len(unlabeled), n_labels), rows of the second aligned with
    ``unlabeled``. Without a head (fewer than two classes seen) they are uniform, or 0.5 for multi-label.
    """
    targets = [list(problem.pool_targets[i]) for i in labeled]
    head = fit_head(problem.labels, problem.multi_label, problem.pool_emb[labeled], targets, seed=seed)
    if head is not None:
        return head.predict_proba(problem.eval_emb), head.predict_proba(problem.pool_emb[unlabeled]), True
    fill = THRESHOLD if problem.multi_label else 1.0 / len(problem.labels)
    k = len(problem.labels)
    return np.full((len(problem.eval_emb), k), fill), np.full((len(unlabeled), k), fill), False


def accepts_cardinality(strategy: Callable[..., Selection]) -> bool:
    """Whether a strategy takes ``label_cardinality`` (registered ones do; a user's own may not)."""
    params = inspect.signature(strategy, follow_wrapped=False).parameters.values()
    return any(p.name == "label_cardinality" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@dataclass(frozen=True)
class Query:
    """What a strategy is asked: ``n`` rows of the unlabeled pool, scored by ``proba`` (len(unlabeled), k)."""

    proba: np.ndarray
    labeled: np.ndarray
    unlabeled: np.ndarray
    n: int


def query(strategy: _Strategy, name: str, problem: Problem, q: Query, rng: np.random.Generator) -> np.ndarray:
    """Run the strategy on the unlabeled pool; returns the dataset indices it picked, most informative first.

    Raises:
        SimulationError: the strategy returned other than ``q.n`` distinct in-range pool positions.
    """
    kwargs: dict[str, Any] = {
        "embeddings": problem.pool_emb[q.unlabeled],
        "labeled_embeddings": problem.pool_emb[q.labeled],
        "rng": rng,
    }
    if accepts_cardinality(strategy):
        kwargs["label_cardinality"] = float(np.mean([len(problem.pool_targets[i]) for i in q.labeled]))
    positions = np.asarray(strategy(q.proba, q.n, **kwargs).indices, dtype=np.int64)
    in_range = len(positions) == 0 or (positions.min() >= 0 and positions.max() < len(q.unlabeled))
    if len(positions) != q.n or len(np.unique(positions)) != q.n or not in_range:
        raise SimulationError(
            f"strategy {name!r} returned positions {positions.tolist()[:10]}…; "
            f"expected {q.n} distinct pool positions in [0, {len(q.unlabeled)})"
        )
    return q.unlabeled[positions]


def simulate_seed(strategy: _Strategy, name: str, problem: Problem, config: SimulationConfig, seed: int) -> SeedRun:
    """One learning curve. The seed set is the first draw of ``default_rng(seed)``, so every strategy with
    the same seed starts from the same rows; the same generator then breaks the strategy's ties."""
    rng = np.random.default_rng(seed)
    n_pool = len(problem.pool_emb)
    is_labeled = np.zeros(n_pool, dtype=bool)
    is_labeled[rng.choice(n_pool, config.seed_size, replace=False)] = True
    order = list(np.flatnonzero(is_labeled))
    run = SeedRun(seed)
    while True:
        labeled, unlabeled = np.asarray(order, dtype=np.int64), np.flatnonzero(~is_labeled)
        step = tuned_problem(problem, labeled, config, seed) if config.model == "setfit" else problem
        eval_proba, pool_proba, fitted = fit_and_predict(step, labeled, unlabeled, seed)
        main, macro = f1_scores(problem.eval_truth, predictions(eval_proba, problem.multi_label))
        run.labels.append(len(order))
        run.main.append(main)
        run.macro_f1.append(macro)
        if not fitted:
            run.fallback_at.append(len(order))
        if len(order) >= config.budget:
            run.final_eval_proba = eval_proba
            return run
        n = min(config.batch, config.budget - len(order))
        picked = query(strategy, name, problem, Query(pool_proba, labeled, unlabeled, n), rng)
        is_labeled[picked] = True
        order.extend(int(i) for i in picked)


def tuned_problem(problem: Problem, labeled: np.ndarray, config: SimulationConfig, seed: int) -> Problem:
    """The problem re-embedded by a copy of the base body fine-tuned with SetFit on the ``labeled`` rows."""
    import dataclasses

    from backend.config import Settings
    from backend.labelstudio.label_config import ControlSpec
    from backend.models.encoder import Encoder
    from backend.training.dataset import ControlData
    from backend.training.setfit_training import fine_tune_body

    if config.setfit_base is None:
        raise SimulationConfigError("setfit_base: got None, expected the body directory to fine-tune")
    encoder = Encoder.load(config.setfit_base, max_seq_length=128, batch_size=64)
    control = ControlSpec(
        "label", "text", "Text", "text", problem.labels, ("",) * len(problem.labels), problem.multi_label
    )
    rows = ControlData(
        control, [problem.pool_texts[i] for i in labeled], [list(problem.pool_targets[i]) for i in labeled]
    )
    settings = Settings(setfit_max_steps=config.setfit_steps, setfit_batch_size=16, seed=seed)
    fine_tune_body(encoder, rows, settings, None)
    return dataclasses.replace(
        problem, pool_emb=encoder.encode(list(problem.pool_texts)), eval_emb=encoder.encode(list(problem.eval_texts))
    )


def curve(x: list[int], runs: list[list[float]]) -> dict[str, list]:
    """Mean and standard deviation (over seeds, ddof=0) of aligned curves."""
    values = np.asarray(runs, dtype=np.float64)
    return {"labels": x, "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist()}


def summarize(name: str, runs: list[SeedRun], metric: Metric, seconds: float) -> dict[str, Any]:
    """One strategy's results entry (``auc_minus_random`` is filled in by ``run_simulation``)."""
    x = runs[0].labels
    aucs = [trapezoid_auc(r.labels, r.main) for r in runs]
    return {
        "auc": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "auc_minus_random": 0.0,
        "macro_f1_auc": float(np.mean([trapezoid_auc(r.labels, r.macro_f1) for r in runs])),
        "multi_label_strategy": name in MULTI_LABEL,
        "curve": curve(x, [r.main for r in runs]),
        "macro_f1_curve": curve(x, [r.macro_f1 for r in runs]),
        "per_seed": [
            {"seed": r.seed, "labels": r.labels, metric: r.main, "macro_f1": r.macro_f1, "fallback_at": r.fallback_at}
            for r in runs
        ],
        "seconds": round(seconds, 3),
    }


def check_sizes(config: SimulationConfig, pool: LabeledDataset) -> None:
    """The budget must fit in the pool."""
    if config.budget > len(pool):
        raise SimulationConfigError(
            f"budget: got {config.budget}, expected <= the pool size ({len(pool)} rows in {pool.path})"
        )


def embed_problem(
    config: SimulationConfig, encoder: TextEncoder, progress: ProgressCallback | None
) -> tuple[Problem, LabeledDataset]:
    """Load both CSVs, check the budget against the pool, and embed them (through the cache if configured)."""
    pool, evaluation = load_dataset(config.pool_path), load_dataset(config.eval_path)
    check_sizes(config, pool)
    pool_emb = embed_texts(pool.texts, encoder, cache_dir=config.cache_dir, progress=progress, stage="embed pool")
    eval_emb = embed_texts(evaluation.texts, encoder, cache_dir=config.cache_dir, progress=progress, stage="embed eval")
    return build_problem(pool, evaluation, pool_emb, eval_emb), pool


def simulate_all(
    config: SimulationConfig, problem: Problem, progress: ProgressCallback | None
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Every strategy × seed; progress stage ``simulate`` counts finished (strategy, seed) runs.

    Returns the summaries and, per strategy, seed 0's final eval probabilities (n_eval, n_labels).
    """
    out: dict[str, dict[str, Any]] = {}
    finals: dict[str, np.ndarray] = {}
    total, done = len(config.strategy_names) * config.seeds, 0
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # Small matrices: threaded BLAS is ~100x slower. Few rows of many classes (banking77) is expected.
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        for name in config.strategy_names:
            strategy = cast(_Strategy, get_strategy(name))
            start, runs = time.perf_counter(), []
            for seed in range(config.seeds):
                runs.append(simulate_seed(strategy, name, problem, config, seed))
                done += 1
                if progress is not None:
                    progress("simulate", done, total)
            out[name] = summarize(name, runs, problem.metric, time.perf_counter() - start)
            if runs[0].final_eval_proba is not None:
                finals[name] = runs[0].final_eval_proba
    baseline = out[BASELINE]["auc"]
    for entry in out.values():
        entry["auc_minus_random"] = entry["auc"] - baseline
    return out, finals


def run_simulation(
    config: SimulationConfig, encoder: TextEncoder, *, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Run the simulation, write ``results.json`` and the learning-curve PNGs to ``config.out_dir``.

    Returns the results: ``dataset`` (pool file stem), ``pool``, ``eval``, ``multi_label``, ``metric``
    (``accuracy`` | ``micro_f1``), ``labels``, ``config``, ``strategies`` {name: entry}, ``auc`` {name: auc},
    ``seconds``. ``progress(stage, done, total)`` is called with stages ``embed pool``, ``embed eval``
    (texts encoded; cached ones are not counted) and ``simulate`` ((strategy, seed) runs finished).

    Raises:
        DatasetError: a CSV cannot be read.
        SimulationConfigError: the budget exceeds the pool.
        SimulationError: a strategy returned an invalid selection.
    """
    start = time.perf_counter()
    problem, pool = embed_problem(config, encoder, progress)
    embedded = time.perf_counter()
    strategies, finals = simulate_all(config, problem, progress)
    results: dict[str, Any] = {
        "dataset": pool.name,
        "pool": str(config.pool_path),
        "eval": str(config.eval_path),
        "multi_label": problem.multi_label,
        "metric": problem.metric,
        "labels": list(problem.labels),
        "n_pool": len(problem.pool_emb),
        "n_eval": len(problem.eval_emb),
        "config": config.to_json(),
        "strategies": strategies,
        "auc": {name: entry["auc"] for name, entry in strategies.items()},
        "embedding_seconds": round(embedded - start, 3),
        "seconds": round(time.perf_counter() - start, 3),
    }
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plot_learning_curves(results, config.out_dir)
    arrays: dict[str, Any] = {"truth": problem.eval_truth, "labels": np.array(problem.labels)}
    arrays |= {f"proba__{name}": proba for name, proba in finals.items()}
    np.savez_compressed(config.out_dir / "final_eval_predictions.npz", **arrays)
    return results
