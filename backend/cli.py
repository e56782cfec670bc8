"""The ``tagloop`` command line. Settings come from ``TAGLOOP_*`` variables; options override them."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.config import Settings
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from backend.services import Services

app = typer.Typer(
    help="tagloop: a Label Studio ML backend with SetFit pre-annotations, active learning and review queues.\n\n"
    "Every setting is read from an environment variable TAGLOOP_<NAME> (see `tagloop settings`).",
    no_args_is_help=True,
    add_completion=False,
)
DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]


def _settings(data_dir: Path | None = None) -> Settings:
    try:
        return Settings.from_env(data_dir=data_dir)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9090,
    threads: Annotated[int, typer.Option(help="Request threads of the WSGI server.")] = 8,
    data_dir: DataDir = None,
) -> None:
    """Serve the ML backend (Label Studio connects to http://HOST:PORT) with the in-process trainer."""
    from waitress import serve as waitress_serve

    from backend.app import create_app

    _logging()
    settings = _settings(data_dir)
    flask_app = create_app(settings)
    services = flask_app.extensions["tagloop"]
    threading.Thread(target=services.models.base_encoder, name="warm-up", daemon=True).start()
    for project in services.store.list_projects():  # annotations made while tagloop was down
        if project.ls_url and project.ls_token:
            services.request_training(project.id, "catchup", "start")
    typer.echo(
        f"tagloop serving on http://{host}:{port} (data: {settings.data_dir.resolve()}, "
        f"database: {settings.resolved_database_url.split('@')[-1]})"
    )
    waitress_serve(flask_app, host=host, port=port, threads=threads, ident="tagloop")


def _services(data_dir: Path | None) -> Services:
    from backend.services import build_services

    return build_services(_settings(data_dir), worker=False)


def _require_project(services: Services, project: int) -> None:
    if services.store.get_project(project) is None:
        known = [p.id for p in services.store.list_projects()]
        typer.secho(f"error: project {project} is unknown; known projects: {known}", fg="red", err=True)
        raise typer.Exit(2)


@app.command()
def train(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    tier: Annotated[
        str | None,
        typer.Option(
            help="fast: refit heads on cached embeddings; setfit: fine-tune the body; transformer: full "
            "fine-tuning of TAGLOOP_TRANSFORMER_MODEL. Default: TAGLOOP_SLOW_TIER (setfit)."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Train a new model version of PROJECT now (in this process), with a progress bar; prints JSON."""
    from rich.progress import Progress

    from backend.training.jobs import train_project

    services = _services(data_dir)
    _require_project(services, project)
    tier = tier or services.settings.slow_tier
    with Progress(transient=True, console=_stderr()) as bar:
        task = bar.add_task(f"{tier} training of project {project}", total=1.0)
        try:
            version = train_project(
                services, project, tier, progress=lambda f, m: bar.update(task, completed=f, description=m)
            )
        except (TagloopError, LookupError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
    record = services.store.get_version(version)
    summary: dict[str, object] = {"model_version": version, "status": record.status if record else None}
    summary |= {"n_train": record.n_train if record else None, "metrics": record.metrics if record else None}
    typer.echo(json.dumps(summary))


@app.command()
def status(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    watch: Annotated[bool, typer.Option(help="Show a progress bar until no job is queued or running.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Labels, served version, metrics and training jobs of PROJECT (JSON); --watch follows running jobs."""
    from backend.api.projects import project_status

    services = _services(data_dir)
    _require_project(services, project)
    if watch:
        _watch(services, project)
    typer.echo(json.dumps(project_status(services, project), indent=2, default=str))


def _watch(services: Services, project: int) -> None:
    from rich.progress import Progress

    with Progress(console=_stderr()) as bar:
        tasks: dict[int, TaskID] = {}
        while active := services.jobs.active(project):
            for job in active:
                label = f"job {job.id} {job.tier} [{job.state}] {job.message}"
                if job.id not in tasks:
                    tasks[job.id] = bar.add_task(label, total=1.0)
                bar.update(tasks[job.id], completed=job.progress, description=label)
            time.sleep(0.5)
        for task in tasks.values():
            bar.update(task, completed=1.0)


@app.command()
def rollback(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    version: Annotated[str, typer.Option(help="A kept version name (see `tagloop status`).")],
    data_dir: DataDir = None,
) -> None:
    """Serve an earlier version of PROJECT again (Label Studio is updated by the next worker run)."""
    from backend.api.projects import rollback_to

    services = _services(data_dir)
    try:
        typer.echo(json.dumps(rollback_to(services, project, version)))
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def worker(
    data_dir: DataDir = None,
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty (scripts and tests).")] = False,
) -> None:
    """Run training jobs dispatched through Redis with RQ (scaled-out mode; the store is TAGLOOP_DATABASE_URL)."""
    from backend.services import build_services
    from backend.training.rq_worker import QUEUE, run_worker

    _logging()
    settings = _settings(data_dir)
    services = build_services(settings, worker=False)
    where = settings.resolved_database_url.split("@")[-1]
    typer.echo(f"tagloop worker: RQ queue {QUEUE!r} on {settings.redis_url.split('@')[-1]}, store {where}")
    try:
        run_worker(services, burst=burst)
    finally:
        services.close()


@app.command()
def export(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    version: Annotated[str | None, typer.Option(help="Also export this version's model (default: current).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write PROJECT's labels with provenance, and a version's model as a SetFit directory per control."""
    from backend.export import export_labels, export_model

    services = _services(data_dir)
    _require_project(services, project)
    try:
        labels = export_labels(services, project, out, fmt)
        models = export_model(services, project, out, version)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"labels": str(labels), "models": {k: str(v) for k, v in models.items()}}))


@app.command()
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
    from backend.simulation import SimulationConfig, load_dataset, run_simulation

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


def _bundled() -> Path:
    from backend.models.encoder import bundled_model_path

    return bundled_model_path()


@app.command("strategy")
def strategy_command(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    set_to: Annotated[str | None, typer.Option("--set", help="Strategy name, dotted path, or 'default'.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Show PROJECT's query strategy, or --set it (the queue in Label Studio is re-ranked by the worker)."""
    from backend.api.projects import set_strategy, strategy_json

    services = _services(data_dir)
    try:
        if set_to is None:
            out = strategy_json(services, project)
        else:
            out = set_strategy(services, project, "" if set_to == "default" else set_to)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(out))


@app.command("strategies")
def list_strategies() -> None:
    """List the registered query strategies with their one-line descriptions."""
    from strategies import REGISTRY

    for name, fn in sorted(REGISTRY.items()):
        doc = (fn.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:<28} {doc[0] if doc else ''}")


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Output directory: report.json and PNGs.")],
    project: Annotated[int | None, typer.Option(help="Label Studio project id.")] = None,
    simulation: Annotated[Path | None, typer.Option(help="A `tagloop simulate --out` directory.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Per-class precision/recall/F1, confusion matrix and calibration (reliability diagram, ECE): for a project
    (out of fold on its labels, plus the version history) or a simulation (final models on its eval set)."""
    from backend.report import project_report, simulation_report

    if (project is None) == (simulation is None):
        typer.secho("error: give exactly one of --project or --simulation", fg="red", err=True)
        raise typer.Exit(2)
    try:
        if simulation is not None:
            result = simulation_report(simulation, out)
            sections = result["strategies"]
        else:
            result = project_report(_services(data_dir), int(project or 0), out)
            sections = result["controls"]
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    for name, control in sections.items():
        if "accuracy" in control:
            typer.echo(
                f"{name}: accuracy {control['accuracy']:.3f} on {control['n']} labeled tasks (out of fold), "
                f"ECE {control['calibration']['ece']:.3f}"
            )
            for label, row in control["per_class"].items():
                typer.echo(
                    f"  {label:<24} P {row['precision']:.3f}  R {row['recall']:.3f}  F1 {row['f1']:.3f}"
                    f"  n {row['support']}"
                )
    typer.echo(f"wrote {out / 'report.json'}")


bench_app = typer.Typer(help="Benchmarks: each measures tagloop and a baseline in the same run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("freshness")
def bench_freshness(
    data: Annotated[Path, typer.Option(help="Labeled CSV (single-label) to replay as annotations.")],
    pool: Annotated[int, typer.Option(help="Tasks in the project (sent as TASKS_CREATED).")] = 10_000,
    checkpoints: Annotated[str, typer.Option(help="Label counts to measure at, comma-separated.")] = "100,1000,5000",
    window: Annotated[int, typer.Option(help="Labels measured one by one at each checkpoint.")] = 20,
    pace: Annotated[float, typer.Option(help="Seconds between labels in a measured window (annotator pace).")] = 1.0,
) -> None:
    """Webhook ack p50/p99 and label → served-version latency, tagloop vs synchronous retrain every 10 labels."""
    from backend.bench.freshness import FreshnessConfig, main_json, run_freshness

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


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


@app.command("settings")
def show_settings(data_dir: DataDir = None) -> None:
    """Print the settings in force (secrets masked) with their environment variable names."""
    for name, value in _settings(data_dir).describe().items():
        typer.echo(f"TAGLOOP_{name.upper():<28} {value}")


def main() -> None:
    """Console-script entry point."""
    app()
