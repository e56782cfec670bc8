"""``tagloop bench …``: benchmarks that measure tagloop and a baseline in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from backend.errors import TagloopError

bench_app = typer.Typer(help="Benchmarks: each measures tagloop and a baseline in the same run.", no_args_is_help=True)


@bench_app.command("freshness")
def bench_freshness(
    data: Annotated[Path, typer.Option(help="Labeled CSV (single-label) to replay as annotations.")],
    pool: Annotated[int, typer.Option(help="Tasks in the project (sent as TASKS_CREATED).")] = 10_000,
    checkpoints: Annotated[str, typer.Option(help="Label counts to measure at, comma-separated.")] = "100,1000,5000",
    window: Annotated[int, typer.Option(help="Labels measured one by one at each checkpoint.")] = 20,
    pace: Annotated[float, typer.Option(help="Seconds between labels in a measured window (annotator pace).")] = 1.0,
    setup: Annotated[
        str,
        typer.Option(
            help="default: what `make serve` starts (web + supervised worker); inprocess: train in the web process."
        ),
    ] = "default",
) -> None:
    """Webhook ack p50/p99 and label → served-version latency, tagloop vs synchronous retrain every 10 labels."""
    from tools.bench.freshness import FreshnessConfig, main_json, run_freshness

    try:
        config = FreshnessConfig(
            data=data,
            pool=pool,
            checkpoints=tuple(int(c) for c in checkpoints.split(",")),
            window=window,
            pace_s=pace,
            setup=setup,
        )
        report = run_freshness(config, progress=lambda m: typer.echo(m, err=True))
    except (ValueError, RuntimeError, TagloopError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
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
    setup: Annotated[
        str,
        typer.Option(
            help="default: what `make serve` starts (web + supervised worker); inprocess: train in the web "
            "process; redis: in a separate `tagloop worker` woken through Redis."
        ),
    ] = "default",
    ack_labels: Annotated[int, typer.Option(help="Webhook labels sent while it trains (ack latency).")] = 1000,
    ack_rate: Annotated[float, typer.Option(help="Labels/s of that phase.")] = 50.0,
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
        setup=setup,
        ack_labels=ack_labels,
        ack_rate=ack_rate,
        training_priority=training_priority,
    )
    try:
        report = run_predict_bench(config, progress=lambda m: typer.echo(m, err=True))
    except (ValueError, RuntimeError, TagloopError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(table(report))
    typer.echo(json.dumps(summary(report)))


@bench_app.command("loop")
def bench_loop(
    data: Annotated[Path, typer.Option(help="Labeled CSV: text,label (multi-label cells join labels with '|').")],
    config: Annotated[str, typer.Option(help="Labeling config XML (a path, or an annotation_configs/ name).")],
    labels: Annotated[int, typer.Option(help="Labels the annotator submits.")] = 100,
    pace: Annotated[float, typer.Option(help="Seconds the annotator looks at a task before submitting.")] = 1.0,
    strategy: Annotated[str | None, typer.Option(help="Query strategy set in tagloop (default: its own).")] = None,
    ls_database: Annotated[
        str, typer.Option(help="Label Studio's database: sqlite, or postgresql (a fresh database on 127.0.0.1:5432).")
    ] = "sqlite",
    eval_n: Annotated[int, typer.Option(help="Rows held out (never imported) for accuracy before and after.")] = 400,
    tasks: Annotated[int, typer.Option(help="Tasks imported into the project.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle that picks held-out rows and tasks.")] = 42,
    work: Annotated[
        Path | None, typer.Option(help="Work dir for both servers' data and logs (kept; default: a temporary one).")
    ] = None,
    tagloop_env: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE setting of the tagloop server (repeatable).")
    ] = None,
    ls_venv: Annotated[Path | None, typer.Option(help="Label Studio's venv (default: $TAGLOOP_LS_VENV).")] = None,
    score_versions: Annotated[
        bool,
        typer.Option(
            help="Afterwards, score each slow-tier version and the fast one at the same label count on the held-out "
            "rows (keeps every version's artifact during the run; slower)."
        ),
    ] = False,
) -> None:
    """One annotator in a real Label Studio with a real tagloop (as `make serve` starts it): suggestions right,
    Label Studio errors, /next latency and held-out accuracy before and after. Last line: one JSON object."""
    from backend.console import settings_or_exit
    from backend.runtime import signals_as_interrupt
    from tools.bench.loop import LoopBenchConfig, run_loop_bench
    from tools.harness import ls_venv_path

    env = dict(item.split("=", 1) for item in tagloop_env or [] if "=" in item)
    if len(env) != len(tagloop_env or []):
        typer.secho(f"error: --tagloop-env: got {tagloop_env}, expected KEY=VALUE items", fg="red", err=True)
        raise typer.Exit(2)
    try:
        bench_config = LoopBenchConfig(
            data=data,
            config=config,
            ls_venv=ls_venv or ls_venv_path(settings_or_exit().ls_venv),
            labels=labels,
            pace=pace,
            strategy=strategy or "",
            ls_database=ls_database,  # type: ignore[arg-type]  # checked by LoopBenchConfig
            eval_n=eval_n,
            tasks=tasks,
            seed=seed,
            work=work,
            tagloop_env=env,
            score_versions=score_versions,
        )
        with signals_as_interrupt():
            report = run_loop_bench(bench_config, progress=lambda m: typer.echo(m, err=True))
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: stopped Label Studio and tagloop", err=True)
        raise typer.Exit(130) from None
    typer.echo(json.dumps(report))
