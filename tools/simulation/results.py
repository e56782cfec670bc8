"""``run_simulation``: embed, replay every (prior, strategy, seed), and write ``results.json`` and the PNGs.

``results.json`` (also returned):

- ``dataset`` (pool file stem), ``pool``, ``eval``, ``n_pool``, ``n_eval``, ``multi_label``, ``metric``
  (``accuracy`` | ``micro_f1``), ``labels`` (column order), ``control`` (name, hints, config file), ``body`` (the
  served body's source), ``config``;
- ``zero_shot``: the zero-shot prior on the eval set: ``<metric>``, ``macro_f1``, ``ece``;
- ``priors``: {prior: {``strategies``: {name: entry}, ``auc``: {name: auc}}} for every prior asked;
- ``prior``, ``strategies``, ``auc``: the first prior asked and its entries (the shape before priors existed);
- ``embedding_seconds``, ``seconds``.

An entry: ``auc`` (mean over seeds of the normalised area under the main-metric curve), ``auc_std``,
``auc_minus_random`` (against ``random`` under the same prior), ``macro_f1_auc``, ``multi_label_strategy``, ``prior``,
curves {labels, mean, std} over seeds: ``curve`` (main metric), ``macro_f1_curve``, ``ece`` (served model),
``ece_uncalibrated`` (same blend weight, temperatures 1), ``suggestions_right`` (of the rows labeled so far, how many
the model that queued them predicted right: the suggestions an annotator saw), ``zero_shot_right`` (how many the
zero-shot prior gets right of the same rows) and, for ``zeroshot``, ``blend_weight``; ``per_seed`` (the
same per seed, with ``fallback_at``: label counts without a fitted head); ``seconds``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.models.classifier import zero_shot_heads
from strategies import MULTI_LABEL
from tools.simulation.config import BASELINE, SimulationConfig
from tools.simulation.data import LabeledDataset, SimulationConfigError, load_dataset
from tools.simulation.embeddings import ProgressCallback, ServedBody, embed_in_chunks
from tools.simulation.loop import Arm, SeedRun, simulate_all
from tools.simulation.metrics import scores, trapezoid_auc
from tools.simulation.plots import plot_learning_curves
from tools.simulation.problem import Metric, Problem, indicator, resolve_control


def curve(x: list[int], runs: Sequence[Sequence[float]]) -> dict[str, list]:
    """Mean and standard deviation (over seeds, ddof=0) of aligned curves."""
    values = np.asarray(runs, dtype=np.float64)
    return {"labels": x, "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist()}


def per_seed(run: SeedRun, metric: Metric) -> dict[str, Any]:
    """One seed's curves."""
    return {
        "seed": run.seed,
        "labels": run.labels,
        metric: run.main,
        "macro_f1": run.macro_f1,
        "ece": run.ece,
        "ece_uncalibrated": run.ece_uncalibrated,
        "blend_weight": run.blend_weight,
        "fallback_at": run.fallback_at,
        "suggestions_right": run.suggestions_right,
        "zero_shot_right": run.zero_shot_right,
    }


def summarize(arm: Arm, runs: list[SeedRun], metric: Metric, seconds: float) -> dict[str, Any]:
    """One (prior, strategy) entry (``auc_minus_random`` is filled in by ``by_prior``)."""
    x = runs[0].labels
    aucs = [trapezoid_auc(r.labels, r.main) for r in runs]
    entry: dict[str, Any] = {
        "prior": arm.prior,
        "auc": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "auc_minus_random": 0.0,
        "macro_f1_auc": float(np.mean([trapezoid_auc(r.labels, r.macro_f1) for r in runs])),
        "multi_label_strategy": arm.name in MULTI_LABEL,
        "curve": curve(x, [r.main for r in runs]),
        "macro_f1_curve": curve(x, [r.macro_f1 for r in runs]),
        "ece": curve(x, [r.ece for r in runs]),
        "ece_uncalibrated": curve(x, [r.ece_uncalibrated for r in runs]),
        "suggestions_right": curve(x, [r.suggestions_right for r in runs]),
        "zero_shot_right": curve(x, [r.zero_shot_right for r in runs]),
    }
    if arm.prior == "zeroshot":
        entry["blend_weight"] = curve(x, [[w or 0.0 for w in r.blend_weight] for r in runs])
    entry["per_seed"] = [per_seed(r, metric) for r in runs]
    entry["seconds"] = round(seconds, 3)
    return entry


def by_prior(
    done: list[tuple[Arm, list[SeedRun], float]], metric: Metric
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """``priors`` of the results, and seed 0's final eval probabilities (n_eval, n_labels) per strategy of the
    first prior."""
    priors: dict[str, dict[str, Any]] = {}
    finals: dict[str, np.ndarray] = {}
    for arm, runs, seconds in done:
        entries = priors.setdefault(arm.prior, {"strategies": {}, "auc": {}})
        entries["strategies"][arm.name] = summarize(arm, runs, metric, seconds)
        entries["auc"][arm.name] = entries["strategies"][arm.name]["auc"]
        if arm.prior == done[0][0].prior and runs[0].final_eval_proba is not None:
            finals[arm.name] = runs[0].final_eval_proba
    for entries in priors.values():
        baseline = entries["auc"][BASELINE]
        for entry in entries["strategies"].values():
            entry["auc_minus_random"] = entry["auc"] - baseline
    return priors, finals


def check_sizes(config: SimulationConfig, pool: LabeledDataset) -> None:
    """The budget must fit in the pool."""
    if config.budget > len(pool):
        raise SimulationConfigError(
            f"budget: got {config.budget}, expected <= the pool size ({len(pool)} rows in {pool.path})"
        )


def load_problem(
    config: SimulationConfig, body: ServedBody, progress: ProgressCallback | None
) -> tuple[Problem, LabeledDataset]:
    """Load both CSVs, check them against the budget and the labeling config, and embed them with ``body``."""
    pool, evaluation = load_dataset(config.pool_path), load_dataset(config.eval_path)
    check_sizes(config, pool)
    control, spec = resolve_control(pool, evaluation, config.label_config)
    prior = zero_shot_heads(body.encoder, spec, config.zero_shot_temperature)[control.name]
    pool_emb = embed_in_chunks(pool.texts, body.embed, progress=progress, stage="embed pool")
    eval_emb = embed_in_chunks(evaluation.texts, body.embed, progress=progress, stage="embed eval")
    truth = indicator(evaluation.targets, control.labels)
    problem = Problem(control, prior, pool_emb, pool.targets, eval_emb, truth, pool.texts, evaluation.texts)
    return problem, pool


def zero_shot(problem: Problem) -> dict[str, float]:
    """The zero-shot prior on the eval set: main metric, macro-F1, ECE."""
    main, macro, ece = scores(problem.prior.predict_proba(problem.eval_emb), problem.eval_truth, problem.multi_label)
    return {problem.metric: main, "macro_f1": macro, "ece": ece}


def run_simulation(
    config: SimulationConfig, body: ServedBody, *, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Run the simulation, write ``results.json`` (module docstring), the learning-curve PNGs and seed 0's final
    eval probabilities of the first prior (``final_eval_predictions.npz``, for ``tagloop report --simulation``) to
    ``config.out_dir``.

    ``progress(stage, done, total)`` is called with stages ``embed pool``, ``embed eval`` (texts embedded, cached
    or not) and ``simulate`` ((prior, strategy, seed) runs finished).

    Raises:
        DatasetError: a CSV cannot be read.
        SimulationConfigError: the budget exceeds the pool; the labeling config cannot be read or does not fit.
        SimulationError: a strategy returned an invalid selection.
    """
    start = time.perf_counter()
    problem, pool = load_problem(config, body, progress)
    embedded = time.perf_counter()
    priors, finals = by_prior(simulate_all(config, problem, progress), problem.metric)
    first = config.priors[0]
    control = problem.control
    results: dict[str, Any] = {
        "dataset": pool.name,
        "pool": str(config.pool_path),
        "eval": str(config.eval_path),
        "multi_label": problem.multi_label,
        "metric": problem.metric,
        "labels": list(problem.labels),
        "control": {"name": control.name, "hints": list(control.hints), "config": config.to_json()["label_config"]},
        "body": body.encoder.source,
        "n_pool": len(problem.pool_emb),
        "n_eval": len(problem.eval_emb),
        "config": config.to_json(),
        "zero_shot": zero_shot(problem),
        "prior": first,
        "strategies": priors[first]["strategies"],
        "auc": priors[first]["auc"],
        "priors": priors,
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
