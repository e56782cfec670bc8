"""Learning-curve PNGs from a simulation's results: mean ± std band over seeds, one line per (prior, strategy).

Colour = strategy (``random`` grey), line style = prior (``zeroshot`` solid, ``none`` dashed); a dotted horizontal
line marks the zero-shot prior on the eval set. Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas
directly: no pyplot, no global backend switch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

METRIC_NAMES = {"accuracy": "accuracy", "micro_f1": "micro-F1", "macro_f1": "macro-F1"}
PRIOR_STYLES = {"zeroshot": "-", "none": "--"}
STYLE_NAMES = {"-": "solid", "--": "dashed"}
BASELINE_COLOR = "0.35"

Entries = Mapping[str, Mapping[str, Any]]


def _auc_of(entry: Mapping[str, Any], curve_key: str) -> float:
    """Normalised AUC of one curve of a strategy entry."""
    return float(entry["auc"] if curve_key == "curve" else entry["macro_f1_auc"])


def _priors(results: Mapping[str, Any]) -> dict[str, Entries]:
    """Prior → strategy entries (results without ``priors`` count as one prior)."""
    if "priors" in results:
        return {prior: block["strategies"] for prior, block in results["priors"].items()}
    return {str(results.get("prior", "zeroshot")): results["strategies"]}


def legend_rows(priors: Mapping[str, Entries], curve_key: str) -> dict[tuple[str, str], str]:
    """(prior, name) → fixed-width legend row ``name prior  AUC ± std  Δrandom`` (Δ against random, same prior)."""
    width = max(len(f"{name} {prior}") for prior, entries in priors.items() for name in entries)
    rows = {}
    for prior, entries in priors.items():
        baseline = _auc_of(entries["random"], curve_key) if "random" in entries else None
        for name, entry in entries.items():
            auc = _auc_of(entry, curve_key)
            spread = f" ± {entry['auc_std']:.3f}" if curve_key == "curve" else ""
            delta = f"  {auc - baseline:+.3f}" if baseline is not None else ""
            rows[(prior, name)] = f"{f'{name} {prior}':<{width}}  {auc:.3f}{spread}{delta}"
    return rows


def legend_header(priors: Mapping[str, Entries], curve_key: str) -> str:
    """Header row aligned with ``legend_rows``."""
    width = max(len(f"{name} {prior}") for prior, entries in priors.items() for name in entries)
    spread = f"{' ± std':<8}" if curve_key == "curve" else ""
    return f"{'strategy prior':<{width}}  {'AUC':<5}{spread}  {'Δrandom':>6}"


def _colors(priors: Mapping[str, Entries]) -> dict[str, Any]:
    names = list(dict.fromkeys(name for entries in priors.values() for name in entries if name != "random"))
    palette = [f"C{i % 10}" for i in range(len(names))]
    return {**dict(zip(names, palette, strict=True)), "random": BASELINE_COLOR}


def plot_curve(results: Mapping[str, Any], curve_key: str, metric: str, path: Path) -> Path:
    """Write one PNG: x = labels, y = ``metric``, a mean line and a ±std band per (prior, strategy)."""
    priors = _priors(results)
    rows, colors = legend_rows(priors, curve_key), _colors(priors)
    fig = Figure(figsize=(9.5, 6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([], [], linestyle="none", color="none", label=legend_header(priors, curve_key))  # the table's header
    for prior, entries in priors.items():
        for name, entry in entries.items():
            c = entry[curve_key]
            x, mean, std = np.asarray(c["labels"]), np.asarray(c["mean"]), np.asarray(c["std"])
            style = PRIOR_STYLES.get(prior, ":")
            ax.plot(x, mean, marker=".", markersize=3, label=rows[(prior, name)], color=colors[name], linestyle=style)
            ax.fill_between(x, mean - std, mean + std, color=colors[name], alpha=0.12, linewidth=0)
    zero_shot = results.get("zero_shot", {}).get(metric)
    if zero_shot is not None:
        ax.axhline(zero_shot, color="black", linestyle=":", linewidth=1, label=f"zero-shot {zero_shot:.3f}")
    config = results.get("config", {})
    ax.set_title(
        f"{results['dataset']}: {METRIC_NAMES.get(metric, metric)} vs labels "
        f"({config.get('seeds', '?')} seeds, batch {config.get('batch', '?')}, mean ± std; prior "
        + ", ".join(f"{p} {STYLE_NAMES.get(PRIOR_STYLES.get(p, ':'), 'dotted')}" for p in priors)
        + ")",
        fontsize=9,
    )
    ax.set_xlabel("labels")
    ax.set_ylabel(METRIC_NAMES.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend(prop={"family": "monospace", "size": 7.5}, loc="lower right")
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
