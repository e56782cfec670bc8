"""``tagloop bench …``: benchmarks that measure tagloop and a baseline in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass


bench_app = typer.Typer(help="Benchmarks: each measures tagloop and a baseline in the same run.", no_args_is_help=True)


@bench_app.command("freshness")
def bench_freshness(
    data: Annotated[Path, typer.Option(help="Labeled CSV (single-label) to replay as annotations.")],
    pool: Annotated[int, typer.Option(help="Tasks in the project (sent as TASKS_CREATED).")] = 10_000,
    checkpoints: Annotated[str, typer.Option(help="Label counts to measure at, comma-separated.")] = "100,1000,5000",
    window: Annotated[int, typer.Option(help="Labels measured one by one at each checkpoint.")] = 20,
    pace: Annotated[float, typer.Option(help="Seconds between labels in a measured window (annotator pace).")] = 1.0,
) -> None:
    """Webhook ack p50/p99 and label → served-version latency, tagloop vs synchronous retrain every 10 labels."""
    from tools.bench.freshness import FreshnessConfig, main_json, run_freshness

    config = FreshnessConfig(
        data=data, pool=pool, checkpoints=tuple(int(c) for c in checkpoints.split(",")), window=window, pace_s=pace
    )
    report = run_freshness(config, progress=lambda m: typer.echo(m, err=True))
    for name in ("tagloop", "reference"):
        for cp, row in report[name].items():
            typer.echo(
                f"{name:<10} {cp:>6} labels  ack p50 {row['ack_p50_ms']:>8.2f} ms  p99 {row['ack_p99_ms']:>8.2f} ms"
                f"  fresh p50 {row['fresh_p50_s']:>7.3f} s  p95 {row['fresh_p95_s']:>7.3f} s"
            )
    typer.echo(main_json(report))


@bench_app.command("predict")
def bench_predict(
    data: Annotated[Path, typer.Option(help="Labeled CSV (text,label; single-label rows are used).")],
    n: Annotated[int, typer.Option(help="New texts per throughput measurement (batch 32).")] = 512,
    n_train: Annotated[int, typer.Option(help="Rows labeled for the fast-tier version.")] = 256,
    n_eval: Annotated[int, typer.Option(help="Held-out rows for served vs torch accuracy.")] = 500,
    single_calls: Annotated[int, typer.Option(help="Single-text calls per batch-1 measurement.")] = 200,
    clients: Annotated[int, typer.Option(help="Concurrent single-text callers (request coalescing).")] = 8,
    slow_steps: Annotated[int, typer.Option(help="SetFit steps of the training measured against.")] = 200,
    busy_calls: Annotated[int, typer.Option(help="Most back-to-back single-text calls while it trains.")] = 1000,
    feed_rate: Annotated[float, typer.Option(help="Calls/s of the feed phase while it trains.")] = 20.0,
    feed_s: Annotated[float, typer.Option(help="Seconds of the feed phase.")] = 20.0,
    worker: Annotated[
        str, typer.Option(help="inprocess: train in the web process; redis: in a `tagloop worker` process.")
    ] = "inprocess",
    training_priority: Annotated[
        str, typer.Option(help="CPU priority of the training measured against: idle, low or normal.")
    ] = "idle",
) -> None:
    """/predict throughput and latency (HTTP and in-process, batch 1 and 32) vs HF pipeline, latency while a
    slow-tier training runs, web-process RSS, served vs torch accuracy. Last line: one JSON object."""
    from tools.bench.predict import PredictBenchConfig, run_predict_bench, summary, table

    config = PredictBenchConfig(
        data=data,
        n=n,
        n_train=n_train,
        n_eval=n_eval,
        single_calls=single_calls,
        clients=clients,
        slow_steps=slow_steps,
        busy_calls=busy_calls,
        feed_rate=feed_rate,
        feed_s=feed_s,
        worker=worker,
        training_priority=training_priority,
    )
    try:
        report = run_predict_bench(config, progress=lambda m: typer.echo(m, err=True))
    except (ValueError, RuntimeError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(table(report))
    typer.echo(json.dumps(summary(report)))
