"""PSI of served scores: a davidson_hate-trained version on unshifted davidson_hate streams vs a shifted sms_spam one.

Usage: python -m tools.experiments.psi_drift [--shared ../shared/data] [--out docs/results] [--labeled 2000]
       [--window 1000]

Runs tagloop's own path in-process: a moderation project (``annotation_configs/content_moderation.xml``;
hate_speech → Violating, offensive_language → Potentially Harmful, neither → Safe) with ``--labeled`` davidson
labels and ``--known`` more davidson tasks, one fast-tier version (whose training hook scores a random sample of
the known tasks: the reference window), then streams of ``--window`` texts through ``POST /predict``, reading the
PSI of the newest window from ``GET /api/projects/<id>/status`` after each stream. Streams: three disjoint unseen
davidson windows (unshifted), an sms_spam window (shifted), and half of each (mixed). Writes ``psi_drift.json`` and
``psi_drift.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DAVIDSON = {"hate_speech": "Violating", "offensive_language": "Potentially Harmful", "neither": "Safe"}
PID = 1


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class NoWake:
    """Jobs are run explicitly below."""

    def wake(self, job: object = None) -> None:
        return None

    def stop(self) -> None:
        return None


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=repo.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=repo / "bench" / "results")
    parser.add_argument("--labeled", type=int, default=2000)
    parser.add_argument("--known", type=int, default=1000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from backend.app import create_app
    from backend.bootstrap import build
    from backend.config import Settings
    from backend.store.records import AnnotationRecord
    from backend.training.jobs import train_project

    rng = random.Random(args.seed)
    davidson = rows(args.shared / "davidson_hate" / "davidson_hate.csv")
    sms = [r["text"] for r in rows(args.shared / "sms_spam" / "sms_spam.csv")]
    rng.shuffle(davidson)
    rng.shuffle(sms)
    labeled, rest = davidson[: args.labeled], davidson[args.labeled :]
    known, unseen = rest[: args.known], [r["text"] for r in rest[args.known :]]
    w = args.window
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="tagloop-psi-")),
        train_every=0,
        fast_tier=False,
        serve_precision="torch",
        psi_window=w,
        psi_reference_size=w,
        seed=args.seed,
    )
    services = build(settings, role="cli")
    services.waker = NoWake()
    client = create_app(services=services).test_client()
    config = (repo / "annotation_configs" / "content_moderation.xml").read_text()
    assert client.post("/setup", json={"project": f"{PID}.1", "schema": config}).status_code == 200
    tasks = [(i, {"text": r["text"]}) for i, r in enumerate(labeled + known, start=1)]
    services.store.tasks.upsert(PID, tasks)
    for i, r in enumerate(labeled, start=1):
        choices = {"moderation": [DAVIDSON[r["label"]]]}
        services.store.annotations.upsert(AnnotationRecord(id=i, project_id=PID, task_id=i, choices=choices))
    started = time.perf_counter()
    version = train_project(services, PID, "fast")
    train_s = time.perf_counter() - started

    def stream(texts: list[str]) -> dict[str, Any]:
        for start in range(0, len(texts), 100):
            batch = [{"data": {"text": t}} for t in texts[start : start + 100]]
            response = client.post("/predict", json={"tasks": batch, "project": f"{PID}.1"})
            assert response.status_code == 200, response.json
        drift: dict[str, Any] = client.get(f"/api/projects/{PID}/status").json["review"]["drift"]
        return drift

    streams = {
        "davidson (unshifted) 1": unseen[:w],
        "davidson (unshifted) 2": unseen[w : 2 * w],
        "davidson (unshifted) 3": unseen[2 * w : 3 * w],
        "sms_spam (shifted)": sms[:w],
        "half davidson, half sms_spam": unseen[3 * w : 3 * w + w // 2] + sms[w : w + w // 2],
    }
    results: dict[str, Any] = {
        "model_version": version,
        "labeled": len(labeled),
        "known_tasks": len(labeled) + len(known),
        "window": w,
        "bands": list(settings.psi_thresholds),
        "train_seconds": round(train_s, 1),
        "streams": {},
    }
    for name, texts in streams.items():
        drift = stream(texts)
        results["streams"][name] = {k: drift[k] for k in ("psi", "band", "n_reference", "n_current")}
    version_record = services.store.versions.get(version)
    results["thresholds"] = (version_record.metrics.get("review") or {}).get("thresholds") if version_record else None
    services.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "psi_drift.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"PSI of {version}'s served harm scores (max harmful-class probability), newest {w} vs its reference window "
        f"({w} known davidson tasks scored at training); bands {results['bands']}.",
        "",
        "| stream | PSI | band |",
        "|---|---:|---|",
        *(f"| {name} | {r['psi']:.4f} | {r['band']} |" for name, r in results["streams"].items()),
    ]
    (args.out / "psi_drift.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
