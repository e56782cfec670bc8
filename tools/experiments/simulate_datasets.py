"""Run `tagloop simulate` on the shared datasets (ag_news, banking77, sst2, jigsaw_toxic) and tabulate AUCs.

Usage: python -m tools.experiments.simulate_datasets [--shared ../shared/data] [--work DIR] [--pool-cap 5000]
       [--eval-cap 1000]

Pools and eval sets come from each dataset's own splits where it has them (train → pool, test → eval);
ag_news has one split, so its first rows are the pool and its last rows the eval set. Pools are capped at
--pool-cap rows and eval sets at --eval-cap rows (first rows; the files are already shuffled).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

SINGLE = ["margin", "entropy", "least_confidence", "coreset", "ranked_batch", "random"]
MULTI = ["mean_label_uncertainty", "max_label_uncertainty", "cardinality_inconsistency", *SINGLE]
DATASETS = {"ag_news": SINGLE, "banking77": SINGLE, "sst2": SINGLE, "jigsaw_toxic": MULTI}


def split(shared: Path, name: str, work: Path, pool_cap: int, eval_cap: int) -> tuple[Path, Path]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[2]
    parser.add_argument("--shared", type=Path, default=repo.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=repo / "var" / "simulations")
    parser.add_argument("--pool-cap", type=int, default=5000)
    parser.add_argument("--eval-cap", type=int, default=1000)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--seed-size", default="20")
    parser.add_argument("--batch", default="10")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in args.datasets:
        pool, ev = split(args.shared, name, args.work, args.pool_cap, args.eval_cap)
        out = args.work / name
        command = [
            sys.executable,
            "-m",
            "backend",
            "simulate",
            "--data",
            str(pool),
            "--eval",
            str(ev),
            "--out",
            str(out),
            "--seeds",
            "5",
            "--seed-size",
            args.seed_size,
            "--batch",
            args.batch,
            "--budget",
            "500",
        ]
        for strategy in DATASETS[name]:
            command += ["--strategy", strategy]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=repo)
        results = json.loads((out / "results.json").read_text())
        table[name] = {k: (v["auc"], v["auc_minus_random"]) for k, v in results["strategies"].items()}
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
