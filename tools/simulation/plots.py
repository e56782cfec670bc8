"""Learning-curve PNGs from a simulation's results: mean ± std band over seeds, one line per strategy.

Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas directly: no pyplot, no global backend switch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

METRIC_NAMES = {"accuracy": "accuracy", "micro_f1": "micro-F1", "macro_f1": "macro-F1"}


def _auc_of(entry: Mapping[str, Any], curve_key: str) -> float:
    """Normalised AUC of one curve of a strategy entry."""
    return float(entry["auc"] if curve_key == "curve" else entry["macro_f1_auc"])


def legend_rows(strategies: Mapping[str, Mapping[str, Any]], curve_key: str) -> dict[str, str]:
    """Name → fixed-width legend row ``name  AUC ± std  Δrandom`` (the legend reads as an AUC table)."""
    width = max(len(name) for name in strategies)
    baseline = _auc_of(strategies["random"], curve_key) if "random" in strategies else None
    rows = {}
    for name, entry in strategies.items():
        auc = _auc_of(entry, curve_key)
        spread = f" ± {entry['auc_std']:.3f}" if curve_key == "curve" else ""
        delta = f"  {auc - baseline:+.3f}" if baseline is not None else ""
        rows[name] = f"{name:<{width}}  {auc:.3f}{spread}{delta}"
    return rows


def legend_header(strategies: Mapping[str, Mapping[str, Any]], curve_key: str) -> str:
    """Header row aligned with ``legend_rows``."""
    width = max(len(name) for name in strategies)
    spread = f"{' ± std':<8}" if curve_key == "curve" else ""
    delta = f"  {'Δrandom':>6}" if "random" in strategies else ""
    return f"{'strategy':<{width}}  {'AUC':<5}{spread}{delta}"


def plot_curve(results: Mapping[str, Any], curve_key: str, metric: str, path: Path) -> Path:
    """Write one PNG: x = labels, y = ``metric``, a mean line and a ±std band per strategy."""
    strategies: Mapping[str, Mapping[str, Any]] = results["strategies"]
    rows = legend_rows(strategies, curve_key)
    fig = Figure(figsize=(9, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(
        [], [], linestyle="none", color="none", label=legend_header(strategies, curve_key)
    )  # the table's header row
    for name, entry in strategies.items():
        c = entry[curve_key]
        x, mean, std = np.asarray(c["labels"]), np.asarray(c["mean"]), np.asarray(c["std"])
        baseline = name == "random"
        (line,) = ax.plot(
            x,
            mean,
            marker=".",
            label=rows[name],
            color="0.35" if baseline else None,
            linestyle="--" if baseline else "-",
        )
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15, linewidth=0)
    config = results.get("config", {})
    ax.set_title(
        f"{results['dataset']}: {METRIC_NAMES.get(metric, metric)} vs labels "
        f"({config.get('seeds', '?')} seeds, batch {config.get('batch', '?')}, mean ± std)"
    )
    ax.set_xlabel("labels")
    ax.set_ylabel(METRIC_NAMES.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend(prop={"family": "monospace", "size": 8}, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_learning_curves(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """``learning_curves.png`` (the main metric) and ``learning_curves_macro_f1.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_curve(results, "curve", str(results["metric"]), out_dir / "learning_curves.png"),
        plot_curve(results, "macro_f1_curve", "macro_f1", out_dir / "learning_curves_macro_f1.png"),
    ]
