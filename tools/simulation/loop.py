"""Pool-based active-learning replay: per prior, strategy and seed, one learning curve of the served model.

At every step the model is the one tagloop would serve after those labels (``tools.simulation.model``), scored on
the eval set; the strategy then picks the next batch from that model's probabilities of the unlabeled pool. The
first point (0 labels) is the zero-shot prior; the seed set is a random draw, the same for every strategy and
prior with the same seed. Every strategy is compared with ``random`` run under the same prior.

Index spaces: **dataset index** = row of the pool CSV (0-based); **pool position** = row of the unlabeled
subset handed to a strategy (what a ``Selection`` holds), mapped back with ``unlabeled[position]``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from strategies import StrategyError, StrategyInfo, describe, run_strategy
from tools.simulation.config import SimulationConfig
from tools.simulation.data import SimulationConfigError, SimulationError
from tools.simulation.embeddings import ProgressCallback
from tools.simulation.metrics import predictions
from tools.simulation.model import Outcome, evaluate, step_model
from tools.simulation.problem import Problem, indicator


@dataclass
class SeedRun:
    """One prior, one strategy, one seed: per label count, the main metric, macro-F1, ECE and blend weight."""

    seed: int
    labels: list[int] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    ece: list[float] = field(default_factory=list)
    ece_uncalibrated: list[float] = field(default_factory=list)
    blend_weight: list[float | None] = field(default_factory=list)
    fallback_at: list[int] = field(default_factory=list)
    """Label counts without a fitted head: the zero-shot prior alone (``zeroshot``) or uniform / 0.5 (``none``)."""
    suggestions_right: list[int] = field(default_factory=list)
    """Per label count: of the rows labeled so far, how many the model that picked them suggested right (what an
    annotator sees prefilled: the served model's prediction when the row was queued)."""
    zero_shot_right: list[int] = field(default_factory=list)
    """Per label count: of the same rows, how many the zero-shot prior gets right."""
    final_eval_proba: np.ndarray | None = None
    """(n_eval, n_labels) probabilities of the model at the budget (for ``tagloop report --simulation``)."""

    def record(self, n_labels: int, outcome: Outcome, blend_weight: float | None, fitted: bool) -> None:
        """Append one point."""
        self.labels.append(n_labels)
        self.main.append(outcome.main)
        self.macro_f1.append(outcome.macro_f1)
        self.ece.append(outcome.ece)
        self.ece_uncalibrated.append(outcome.ece_uncalibrated)
        self.blend_weight.append(blend_weight)
        if not fitted:
            self.fallback_at.append(n_labels)


@dataclass(frozen=True)
class Query:
    """What a strategy is asked: ``n`` rows of the unlabeled pool, scored by ``proba`` (len(unlabeled), k)."""

    proba: np.ndarray
    labeled: np.ndarray
    unlabeled: np.ndarray
    n: int


def query(info: StrategyInfo, problem: Problem, q: Query, rng: np.random.Generator, *, max_pool: int = 0) -> np.ndarray:
    """Run the strategy on the unlabeled pool through the one validating call site (``strategies.run_strategy``,
    the same as the served queue's); returns the dataset indices it picked, most informative first.

    Raises:
        SimulationError: the strategy returned other than ``q.n`` distinct in-range pool positions.
    """
    counts = [len(problem.pool_targets[i]) for i in q.labeled]
    try:
        selection = run_strategy(
            info,
            q.proba,
            q.n,
            rng=rng,
            embeddings=problem.pool_emb[q.unlabeled],
            labeled_embeddings=problem.pool_emb[q.labeled] if len(q.labeled) else None,
            label_cardinality=float(np.mean(counts)) if counts and problem.multi_label else None,
            max_pool=max_pool,
        )
    except StrategyError as exc:
        raise SimulationError(str(exc)) from None
    return q.unlabeled[selection.indices]


@dataclass(frozen=True)
class Arm:
    """One curve family: a prior kind and a strategy."""

    prior: str
    name: str
    strategy: StrategyInfo


def simulate_seed(arm: Arm, problem: Problem, config: SimulationConfig, seed: int) -> SeedRun:
    """One learning curve. The seed set is the first draw of ``default_rng(seed)``, so every strategy and prior with
    the same seed starts from the same rows; the same generator then breaks the strategy's ties."""
    rng = np.random.default_rng(seed)
    seed_set = np.sort(rng.choice(len(problem.pool_emb), config.seed_size, replace=False)).astype(np.int64)
    is_labeled = np.zeros(len(problem.pool_emb), dtype=bool)
    labeled: np.ndarray = np.zeros(0, dtype=np.int64)
    run = SeedRun(seed)
    step, outcome = _serve(arm, problem, labeled, is_labeled, config, run)
    truth = indicator(problem.pool_targets, problem.labels)
    zero_shot_right = _right(problem.prior.predict_proba(problem.pool_emb), truth, problem.multi_label)
    run.suggestions_right.append(0)
    run.zero_shot_right.append(0)
    for n_labels in config.label_counts[1:]:
        unlabeled = np.flatnonzero(~is_labeled)
        if len(labeled) == 0 and len(seed_set):
            picked = seed_set
        else:
            q = Query(outcome.pool_proba, labeled, unlabeled, n_labels - len(labeled))
            picked = query(arm.strategy, step, q, rng, max_pool=config.max_pool)
        shown = outcome.pool_proba[np.searchsorted(unlabeled, picked)]
        run.suggestions_right.append(
            run.suggestions_right[-1] + int(_right(shown, truth[picked], problem.multi_label).sum())
        )
        run.zero_shot_right.append(run.zero_shot_right[-1] + int(zero_shot_right[picked].sum()))
        is_labeled[picked] = True
        labeled = np.concatenate([labeled, picked])
        step, outcome = _serve(arm, problem, labeled, is_labeled, config, run)
    run.final_eval_proba = outcome.eval_proba
    return run


def _right(proba: np.ndarray, truth: np.ndarray, multi_label: bool) -> np.ndarray:
    """(n,) bool: whether ``proba`` (n, n_labels) predicts each row's (n, n_labels) ``truth`` exactly."""
    return np.asarray((predictions(proba, multi_label) == truth).all(axis=1))


def _serve(
    arm: Arm, problem: Problem, labeled: np.ndarray, is_labeled: np.ndarray, config: SimulationConfig, run: SeedRun
) -> tuple[Problem, Outcome]:
    """Train what would be served after ``labeled``, score it into ``run``; the step's problem and outcome."""
    step = tuned_problem(problem, labeled, config) if config.model == "setfit" and len(labeled) else problem
    model = step_model(arm.prior, step, labeled, config)
    outcome = evaluate(model, step, np.flatnonzero(~is_labeled))
    run.record(len(labeled), outcome, model.blend_weight, model.fitted)
    return step, outcome


def tuned_problem(problem: Problem, labeled: np.ndarray, config: SimulationConfig) -> Problem:
    """The problem re-embedded by a copy of the base body fine-tuned with SetFit on the ``labeled`` rows, with the
    zero-shot prior on that body (as a slow-tier version serves it)."""
    from backend.config import Settings
    from backend.labelstudio.label_config import LabelSpec
    from backend.models.classifier import zero_shot_heads
    from backend.models.encoder import Encoder
    from backend.training.dataset import ControlData
    from backend.training.setfit_training import fine_tune_body

    if config.setfit_base is None:
        raise SimulationConfigError("setfit_base: got None, expected the body directory to fine-tune")
    encoder = Encoder.load(config.setfit_base, max_seq_length=config.max_seq_length, batch_size=64)
    rows = ControlData(
        problem.control, [problem.pool_texts[i] for i in labeled], [list(problem.pool_targets[i]) for i in labeled]
    )
    settings = Settings(
        setfit_max_steps=config.setfit_steps,
        setfit_batch_size=16,
        seed=config.seed,
        max_seq_length=config.max_seq_length,
    )
    fine_tune_body(encoder, rows, settings, None)
    spec = LabelSpec(controls=(problem.control,), config_hash="setfit")
    return dataclasses.replace(
        problem,
        prior=zero_shot_heads(encoder, spec, config.zero_shot_temperature)[problem.control.name],
        pool_emb=encoder.encode(list(problem.pool_texts)),
        eval_emb=encoder.encode(list(problem.eval_texts)),
    )


def arms(config: SimulationConfig) -> Iterator[Arm]:
    """Every (prior, strategy) in the order asked: priors first, then strategies (``random`` last)."""
    for prior in config.priors:
        for name in config.strategy_names:
            yield Arm(prior, name, describe(name))


def simulate_all(
    config: SimulationConfig, problem: Problem, progress: ProgressCallback | None
) -> list[tuple[Arm, list[SeedRun], float]]:
    """Every prior × strategy × seed: each arm's runs (by seed) and seconds; progress stage ``simulate`` counts
    finished (prior, strategy, seed) runs."""
    out = []
    total = len(config.priors) * len(config.strategy_names) * config.seeds
    done = 0
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # Small matrices: threaded BLAS is ~100x slower. Few rows of many classes (banking77) is expected.
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        for arm in arms(config):
            start, runs = time.perf_counter(), []
            for seed in range(config.seeds):
                runs.append(simulate_seed(arm, problem, config, seed))
                done += 1
                if progress is not None:
                    progress("simulate", done, total)
            out.append((arm, runs, time.perf_counter() - start))
    return out
