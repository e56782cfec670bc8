"""The ``tagloop`` commands that are tooling, not the server: ``simulate``, ``bench …`` and ``demo``.

``backend.cli`` mounts them with ``register``; nothing in the server imports this package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.console import settings_or_exit, stderr_console
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.progress import TaskID

DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]
_settings = settings_or_exit
_stderr = stderr_console


def register(app: typer.Typer) -> None:
    """Add the tool commands to the ``tagloop`` app."""
    app.command()(simulate)
    app.add_typer(bench_app, name="bench")
    app.command()(demo)


def _bundled() -> Path:
    from backend.models.encoder import bundled_model_path

    return bundled_model_path()


def simulate(
    data: Annotated[Path, typer.Option(help="Labeled pool CSV (text,label; multi-label joined by '|').")],
    eval_csv: Annotated[Path, typer.Option("--eval", help="Labeled evaluation CSV.")],
    out: Annotated[Path, typer.Option(help="Output directory: results.json and learning-curve PNGs.")],
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="Strategy name (repeatable); default: TAGLOOP_STRATEGY. random always runs."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Repetitions with different seed sets.")] = 5,
    seed_size: Annotated[int, typer.Option(help="Random labels before the first query.")] = 20,
    batch: Annotated[int, typer.Option(help="Labels queried per step.")] = 10,
    budget: Annotated[int, typer.Option(help="Total labels, seed set included.")] = 500,
    model: Annotated[
        str,
        typer.Option(help="frozen: heads on fixed embeddings (fast); setfit: fine-tune the body every step (slow)."),
    ] = "frozen",
    setfit_steps: Annotated[int, typer.Option(help="SetFit training steps per step with --model setfit.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """Replay active learning offline on a labeled CSV (labels act as the annotator) and compare strategies."""
    from rich.progress import Progress

    from backend.models.encoder import Encoder
    from tools.simulation import SimulationConfig, load_dataset, run_simulation

    settings = _settings(data_dir)
    try:
        default = settings.multi_label_strategy if load_dataset(data).multi_label else settings.strategy
        config = SimulationConfig(
            pool_path=data,
            eval_path=eval_csv,
            out_dir=out,
            strategies=tuple(strategy or ()),
            default_strategy=default,
            seeds=seeds,
            seed_size=seed_size,
            batch=batch,
            budget=budget,
            cache_dir=settings.data_dir / "embedding-cache",
            model=model,
            setfit_base=Path(settings.base_model) if settings.base_model else _bundled(),
            setfit_steps=setfit_steps,
        )
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    base = Path(settings.base_model) if settings.base_model else None
    encoder = Encoder.load(base or _bundled(), max_seq_length=settings.max_seq_length, batch_size=64)
    with Progress(console=_stderr(), transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            results = run_simulation(config, encoder, progress=progress)
        except TagloopError as exc:
            typer.secho(f"error: {exc.reason}", fg="red", err=True)
            raise typer.Exit(2) from None
    for name, row in sorted(results["strategies"].items(), key=lambda kv: -kv[1]["auc"]):
        typer.echo(f"{name:<28} AUC {row['auc']:.4f} ± {row['auc_std']:.4f}   vs random {row['auc_minus_random']:+.4f}")
    typer.echo(f"wrote {out / 'results.json'}")


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


def demo(
    config: Annotated[str, typer.Option(help="annotation_configs/ name (or an XML path).")] = "news_topics",
    data: Annotated[str, typer.Option(help="../shared/data set name (or a CSV path with a text column).")] = "ag_news",
    n: Annotated[int, typer.Option(help="Tasks imported (drawn at random from the data).")] = 300,
    ls_port: Annotated[int | None, typer.Option(help="Label Studio port (default: a free one).")] = None,
    port: Annotated[int | None, typer.Option(help="tagloop port (default: a free one).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Query strategy (default: TAGLOOP_STRATEGY's).")] = None,
    ls_venv: Annotated[Path | None, typer.Option(help="Label Studio's venv (default: $TAGLOOP_LS_VENV).")] = None,
    check: Annotated[bool, typer.Option(help="Verify a task carries tagloop's prediction, print, stop.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Label Studio + tagloop on 127.0.0.1 with a project of real data and uncertainty sampling; prints the URL,
    user and password (installs Label Studio into its own venv first if needed). Ctrl-C stops both."""
    from rich.console import Console

    from tools.demo import DemoConfig, DemoError, ls_venv_path, run_demo

    settings = _settings(data_dir)
    try:
        demo_config = DemoConfig(
            workdir=settings.data_dir / "demo",
            ls_venv=ls_venv or ls_venv_path(settings.ls_venv),
            config=config,
            data=data,
            n=n,
            ls_port=ls_port,
            port=port,
            strategy=strategy or "",
            seed=settings.seed,
        )
    except DemoError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    code = run_demo(demo_config, check=check, console=Console(soft_wrap=True))
    if code:
        raise typer.Exit(code)
