"""Run `tagloop simulate` on the shared datasets through the served model, under both priors, and summarise.

Usage: python -m tools.experiments.simulate_datasets [--shared ../shared/data] [--work var/simulations]
       [--out docs/results/simulate] [--datasets ag_news banking77 sst2] [--seeds 3] [--seed-size 20] [--batch 20]
       [--budget 500] [--strategy margin] [--summary-only]

Pools and eval sets come from each dataset's own splits where it has them (train → pool, test → eval); ag_news has
one split, so its first rows are the pool and its last rows the eval set. Pools are capped at --pool-cap rows and
eval sets at --eval-cap rows (first rows; the files are already shuffled). Each dataset is simulated with its
labeling config (label names and hints as a project would serve them; none for banking77: its CSV labels, no
hints), ``--prior zeroshot --prior none``, into ``<out>/<dataset>/``; all share one data dir (``<work>/data``), so
the served body is exported once and every text is embedded once. ``<out>/summary.md`` gets the commands with their
wall times (kept in ``<out>/runs.json``), the zero-shot accuracy, the AUCs, the margin curve's lowest point against
zero-shot, ECE at 100 labels and the accuracy at the budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATASETS: dict[str, str | None] = {
    "ag_news": "annotation_configs/news_topics.xml",
    "banking77": None,
    "sst2": "annotation_configs/binary_sentiment.xml",
}
"""Dataset → labeling config (relative to the repo; None: the CSV's labels)."""
TOLERANCE_PP = 1.0
"""No point of the served (zeroshot) margin curve may be more than this below zero-shot accuracy."""
ECE_AT = 100
REPO = Path(__file__).resolve().parents[2]


def split(shared: Path, name: str, work: Path, pool_cap: int, eval_cap: int) -> tuple[Path, Path]:
    """Write ``<work>/<name>_pool.csv`` and ``<work>/<name>_eval.csv`` (text,label) from the shared CSV."""
    with (shared / name / f"{name}.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    splits = {r.get("split", "") for r in rows}
    if {"train", "test"} <= splits:
        pool = [r for r in rows if r["split"] == "train"][:pool_cap]
        ev = [r for r in rows if r["split"] == "test"][:eval_cap]
    else:
        pool, ev = rows[:pool_cap], rows[-eval_cap:]
    paths = []
    for part, data in (("pool", pool), ("eval", ev)):
        path = work / f"{name}_{part}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(data)
        paths.append(path)
    return paths[0], paths[1]


def command(name: str, pool: Path, ev: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """The `tagloop simulate` command line of one dataset (paths relative to the repo where they can be)."""
    cmd = ["tagloop", "simulate", "--data", _rel(pool), "--eval", _rel(ev), "--out", _rel(out)]
    cmd += ["--data-dir", _rel(args.work / "data")]
    if DATASETS[name]:
        cmd += ["--config", str(DATASETS[name])]
    cmd += ["--seeds", str(args.seeds), "--seed-size", str(args.seed_size), "--batch", str(args.batch)]
    cmd += ["--budget", str(args.budget), "--prior", "zeroshot", "--prior", "none"]
    for strategy in args.strategy:
        cmd += ["--strategy", strategy]
    return cmd


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def mean_at(curve: dict[str, list], x: int) -> float | None:
    """The curve's mean at x labels (None when x is not a point)."""
    return curve["mean"][curve["labels"].index(x)] if x in curve["labels"] else None


def row(name: str, results: dict[str, Any]) -> dict[str, Any]:
    """What the summary reports for one dataset (margin is the default strategy; random the baseline)."""
    metric = results["metric"]
    zero = results["zero_shot"][metric]
    priors = results["priors"]
    margin = priors["zeroshot"]["strategies"]["margin"]
    gaps = [(m - zero) * 100 for m in margin["curve"]["mean"]]
    worst = min(range(len(gaps)), key=gaps.__getitem__)
    after = 1 + min(range(len(gaps) - 1), key=lambda i: gaps[i + 1])  # the 0-label point is zero-shot itself
    return {
        "dataset": name,
        "metric": metric,
        "zero_shot": zero,
        "auc": {p: {s: priors[p]["auc"][s] for s in ("margin", "random")} for p in priors},
        "margin_prior_gain_pp": (priors["zeroshot"]["auc"]["margin"] - priors["none"]["auc"]["margin"]) * 100,
        "min_gap_pp": gaps[worst],
        "min_gap_at": margin["curve"]["labels"][worst],
        "min_gap_after_0_pp": gaps[after],
        "min_gap_after_0_at": margin["curve"]["labels"][after],
        "final": {p: {s: e["curve"]["mean"][-1] for s, e in priors[p]["strategies"].items()} for p in priors},
        "budget": margin["curve"]["labels"][-1],
        "below_tolerance": [
            (x, round(g, 2)) for x, g in zip(margin["curve"]["labels"], gaps, strict=True) if g < -TOLERANCE_PP
        ],
        "ece_at": {
            s: (mean_at(e["ece_uncalibrated"], ECE_AT), mean_at(e["ece"], ECE_AT))
            for s, e in priors["zeroshot"]["strategies"].items()
        },
    }


def summary(rows: list[dict[str, Any]], commands: dict[str, list[str]], walls: dict[str, float]) -> str:
    """summary.md: commands, then one table row per dataset, then the check."""
    lines = [
        "# `tagloop simulate` through the served model: zero-shot prior vs head alone",
        "",
        "Regenerate: `python -m tools.experiments.simulate_datasets` (runs these; wall times on a shared 2-core "
        "machine, so rough):",
        "",
        "```",
    ]
    for name, cmd in commands.items():
        wall = f"  # {walls[name] / 60:.1f} min" if name in walls else ""
        lines.append(" ".join(cmd) + wall)
    lines += [
        "```",
        "",
        "`zeroshot` = what tagloop serves at every step (the zero-shot prior from label names + hints blended with "
        "the logistic head, weight chosen out of fold and capped at n/(n+20), temperature-calibrated); `none` = the "
        "logistic head alone (the old simulation). AUC = accuracy over 0…500 labels, normalised, mean over seeds; "
        "Δ prior = AUC(margin, zeroshot) − AUC(margin, none). Min gap = lowest point of the margin zeroshot mean "
        f"curve minus zero-shot accuracy (requirement: ≥ −{TOLERANCE_PP:g} pp). ECE at {ECE_AT} labels (margin, "
        "zeroshot, mean over seeds): uncalibrated (same blend weight, temperatures 1) → calibrated.",
        "",
        "| dataset | zero-shot acc | margin zeroshot | random zeroshot | margin none | random none | Δ prior (margin) "
        f"| min gap (at labels) | ECE@{ECE_AT} margin | ECE@{ECE_AT} random |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        auc, ece = r["auc"], {s: _ece(v) for s, v in r["ece_at"].items()}
        cells = [
            r["dataset"],
            f"{r['zero_shot']:.4f}",
            *(f"{auc[p][s]:.4f}" for p in ("zeroshot", "none") for s in ("margin", "random")),
            f"{r['margin_prior_gain_pp']:+.2f} pp",
            f"{r['min_gap_pp']:+.2f} pp ({r['min_gap_at']}); after 0: {r['min_gap_after_0_pp']:+.2f} pp "
            f"({r['min_gap_after_0_at']})",
            ece.get("margin", "-"),
            ece.get("random", "-"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracy at the budget (mean over seeds):", ""]
    lines += ["| dataset | labels | margin zeroshot | margin none | random zeroshot | random none |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in rows:
        f = r["final"]
        cells = [f"{f[p][s]:.4f}" for s in ("margin", "random") for p in ("zeroshot", "none")]
        lines.append(f"| {r['dataset']} | {r['budget']} | " + " | ".join(cells) + " |")
    lines += ["", f"Check (no point of the margin zeroshot curve below zero-shot − {TOLERANCE_PP:g} pp):", ""]
    for r in rows:
        if r["below_tolerance"]:
            points = ", ".join(f"{x} labels: {g:+.2f} pp" for x, g in r["below_tolerance"])
            lines.append(f"- {r['dataset']}: **fails** at {points}")
        else:
            lines.append(
                f"- {r['dataset']}: passes (lowest point after 0 labels: {r['min_gap_after_0_pp']:+.2f} pp at "
                f"{r['min_gap_after_0_at']})"
            )
    lines += ["", "Where the served model ends below the head alone (accuracy at the budget, zeroshot − none):", ""]
    worse = [
        f"- {r['dataset']} {s}: {(f['zeroshot'][s] - f['none'][s]) * 100:+.2f} pp"
        for r in rows
        for s, f in ((s, r["final"]) for s in ("margin", "random"))
        if f["zeroshot"][s] < f["none"][s]
    ]
    lines += worse or ["- nowhere"]
    return "\n".join(lines) + "\n"


def _ece(pair: tuple[float | None, float | None]) -> str:
    return "-" if pair[0] is None or pair[1] is None else f"{pair[0]:.3f} → {pair[1]:.3f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "var" / "simulations")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "simulate")
    parser.add_argument("--pool-cap", type=int, default=5000)
    parser.add_argument("--eval-cap", type=int, default=1000)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--strategy", action="append", default=None, help="default: margin (random always runs)")
    parser.add_argument("--summary-only", action="store_true", help="rewrite summary.md from existing results")
    args = parser.parse_args()
    args.strategy = args.strategy or ["margin"]
    return args


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    commands, rows = {}, []
    runs_path = args.out / "runs.json"  # wall time of each dataset's last run (summary-only keeps them)
    walls: dict[str, float] = json.loads(runs_path.read_text()) if runs_path.exists() else {}
    for name in args.datasets:
        pool, ev = split(args.shared, name, args.work, args.pool_cap, args.eval_cap)
        out = args.out / name
        commands[name] = command(name, pool, ev, out, args)
        if not args.summary_only:
            print("$", " ".join(commands[name]), flush=True)
            started = time.perf_counter()
            run = [sys.executable, "-m", "backend", *commands[name][1:]]
            subprocess.run(run, check=True, cwd=REPO, env=env)
            walls[name] = round(time.perf_counter() - started, 1)
            runs_path.write_text(json.dumps(walls, indent=1) + "\n", encoding="utf-8")
            (out / "final_eval_predictions.npz").unlink(missing_ok=True)  # for `tagloop report`; not kept in docs
        rows.append(row(name, json.loads((out / "results.json").read_text())))
    text = summary(rows, commands, walls)
    (args.out / "summary.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
