"""The ``tagloop`` command line. Settings come from ``TAGLOOP_*`` variables; options override them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.config import Settings
from backend.console import settings_or_exit, stderr_console
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from backend.services import Services

app = typer.Typer(
    help="tagloop: a Label Studio ML backend with SetFit pre-annotations, active learning and review queues.\n\n"
    "Every setting is read from an environment variable TAGLOOP_<NAME> (see `tagloop settings`).",
    no_args_is_help=True,
    add_completion=False,
)
DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]


_settings = settings_or_exit
_stderr = stderr_console


def _logging(settings: Settings) -> None:
    from backend.logging_setup import configure_logging

    configure_logging(settings)  # TAGLOOP_LOG_FORMAT=text|json; secrets are scrubbed from every line


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9090,
    threads: Annotated[int, typer.Option(help="Request threads of the WSGI server.")] = 8,
    data_dir: DataDir = None,
) -> None:
    """Serve the ML backend (Label Studio connects to http://HOST:PORT); training runs in a worker process this
    command supervises (TAGLOOP_WORKER=process, the default), in the web process (inprocess), or in `tagloop worker`
    processes (redis). Ctrl-C / SIGTERM stops the server and its worker."""
    from backend.api.auth import check_bind
    from backend.app import create_app
    from backend.runtime import serve as run_server

    settings = _settings(data_dir)
    try:
        check_bind(host, settings)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    _logging(settings)
    flask_app = create_app(settings)
    services = flask_app.extensions["tagloop"]
    threading.Thread(target=services.models.served_base_encoder, name="warm-up", daemon=True).start()  # ONNX
    for project in services.store.projects.all():  # annotations made while tagloop was down
        if project.ls_url and project.ls_token and not project.detached:
            services.request_job(project.id, "catchup", "start")
    typer.echo(
        f"tagloop serving on http://{host}:{port} (data: {settings.data_dir.resolve()}, "
        f"database: {settings.resolved_database_url.split('@')[-1]}, worker: {settings.worker})"
    )
    run_server(flask_app, services, host=host, port=port, threads=threads)


def _services(data_dir: Path | None) -> Services:
    from backend.bootstrap import build

    return build(_settings(data_dir), role="cli")


def _require_project(services: Services, project: int) -> None:
    if services.store.projects.get(project) is None:
        known = [p.id for p in services.store.projects.all()]
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
    record = services.store.versions.get(version)
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
    burst: Annotated[bool, typer.Option(help="Stop when no job is queued or running (scripts and tests).")] = False,
    supervised: Annotated[
        bool, typer.Option(help="Started by `tagloop serve`: woken through stdin, stops when it closes.", hidden=True)
    ] = False,
    cpus: Annotated[
        str, typer.Option(help="CPUs planned by the supervising `tagloop serve` (a list like 2-3).", hidden=True)
    ] = "",
) -> None:
    """Run jobs from the database queue: one thread per lane (fast: heads, pushes, catch-ups, review; slow: SetFit or
    transformer training). Woken through Redis with TAGLOOP_WORKER=redis (scaled out), else it polls."""
    from backend.runtime import run_worker
    from backend.training.setfit_training import preload_libraries

    settings = _settings(data_dir)
    _logging(settings)
    loaded_s = preload_libraries()
    where = settings.resolved_database_url.split("@")[-1]
    wake = "the web process" if supervised else "Redis" if settings.worker == "redis" else "polling"
    typer.echo(f"tagloop worker: store {where}, woken by {wake}, training libraries loaded in {loaded_s:.1f} s")
    from backend.placement import parse_cpus

    code = run_worker(settings, supervised=supervised, burst=burst, cpus=parse_cpus(cpus) if cpus else None)
    if code:
        raise typer.Exit(code)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema to the newest revision (the container entrypoint runs this)."""
    from backend.store.sql_store import SqlStore

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.resolved_database_url)
    try:
        store.migrate()
    finally:
        store.close()
    typer.echo(f"database schema is current ({settings.resolved_database_url.split('@')[-1]})")


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
    slice_terms: Annotated[
        Path | None,
        typer.Option(help="Terms file (one per line): per-term FP/FN rates of the flag decision (moderated projects)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Per-class precision/recall/F1, confusion matrix and calibration (reliability diagram, ECE): for a project
    (out of fold on its labels, plus the version history) or a simulation (final models on its eval set)."""
    from backend.report import project_report, simulation_report
    from backend.review.slices import read_terms

    if (project is None) == (simulation is None):
        typer.secho("error: give exactly one of --project or --simulation", fg="red", err=True)
        raise typer.Exit(2)
    try:
        if simulation is not None:
            result = simulation_report(simulation, out)
            sections = result["strategies"]
        else:
            services = _services(data_dir)
            pid = int(project or 0)
            extra = {}
            if slice_terms is not None:
                from backend.review.audit import slice_audit

                terms = read_terms(slice_terms)
                extra["slices"] = lambda: slice_audit(services, pid, terms)
            result = project_report(services, pid, out, sections=extra)
            sections = result["controls"]
            stop = result["insights"]["stopping"]["recommendation"]
            accepted = result["insights"]["acceptance"]["last_100"]
            typer.echo(f"suggestions accepted (last 100): {accepted}; {stop}")
            _echo_slices(result.get("slices"))
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


def _echo_slices(audit: dict | None) -> None:
    if not audit:
        return
    typer.echo(
        f"slice audit of {audit['control']} at {audit['model_version']} ({audit['n_texts']} texts, out of fold):"
    )
    for name, row in [("(all)", audit["overall"]), *audit["slices"].items()]:
        fp = f"{row['fp_rate']:.3f}" if row["fp_rate"] is not None else "  -  "
        fn = f"{row['fn_rate']:.3f}" if row["fn_rate"] is not None else "  -  "
        typer.echo(f"  {name:<20} n {row['n']:>5}  flagged {row['flagged']:>5}  FP rate {fp}  FN rate {fn}")


review_app = typer.Typer(
    help="Moderation review queues (false positives/negatives, low confidence, label errors).", no_args_is_help=True
)
app.add_typer(review_app, name="review")


@review_app.command("list")
def review_list(
    project: Annotated[int, typer.Option(help="Label Studio project id.")], data_dir: DataDir = None
) -> None:
    """Each queue of PROJECT with its open items, throughput (resolved in the last 24 h) and Label Studio project,
    plus the served version's thresholds and PSI (JSON)."""
    from backend.review.status import review_summary

    services = _services(data_dir)
    _require_project(services, project)
    typer.echo(json.dumps(review_summary(services, project), indent=2))


@review_app.command("show")
def review_show(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    queue: Annotated[str, typer.Option(help="false_positive, false_negative, low_confidence or label_error.")],
    order: Annotated[str | None, typer.Option(help="confident or uncertain (default: the queue's own).")] = None,
    state: Annotated[str, typer.Option(help="open, resolved or dismissed.")] = "open",
    limit: Annotated[int, typer.Option(help="Items to show.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """The items of one queue in queue order: score, margin, model version, reason and text."""
    from backend.review.status import queue_items

    services = _services(data_dir)
    _require_project(services, project)
    try:
        items = queue_items(services, project, queue, order=order, state=state, limit=limit)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    for i in items:
        score = f"{i.score:.3f}" if i.score is not None else "  -  "
        margin = f"{i.margin:+.3f}" if i.margin is not None else "  -  "
        text = " ".join(i.text.split())[:80]
        typer.echo(f"#{i.id:<6} score {score} margin {margin} {i.model_version or '(external)':<22} {i.reason}")
        typer.echo(f"        {text}")
    typer.echo(f"{len(items)} item(s) in {queue} ({state})")


@review_app.command("export")
def review_export(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    out: Annotated[Path, typer.Option(help="Output file (JSON lines).")],
    queue: Annotated[list[str] | None, typer.Option(help="Queue to export (repeatable; default: all).")] = None,
    state: Annotated[list[str] | None, typer.Option(help="State to export (repeatable; default: all).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write every review item with its verdict, moderator and provenance (one JSON object per line)."""
    from backend.review.export import STATES, export_items
    from backend.review.queues import QUEUES

    services = _services(data_dir)
    _require_project(services, project)
    try:
        path, n = export_items(services, project, out, queues=queue or QUEUES, states=state or STATES)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"items": n, "path": str(path)}))


@review_app.command("sync")
def review_sync(
    project: Annotated[int, typer.Option(help="Label Studio project id.")], data_dir: DataDir = None
) -> None:
    """Run the review job now, in this process: low-confidence scan, scoring of reported items, and the mirror of
    the queues into Label Studio (verdicts read back, new items pushed)."""
    from backend.labelstudio.label_config import parse_label_config
    from backend.review.job import run_review_job

    services = _services(data_dir)
    _require_project(services, project)
    try:
        spec = parse_label_config(services.store.projects.get(project).label_config)  # type: ignore[union-attr]
        typer.echo(json.dumps(run_review_job(services, project, spec)))
    except (TagloopError, LookupError, ValueError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


@app.command("settings")
def show_settings(
    data_dir: DataDir = None,
    markdown: Annotated[bool, typer.Option(help="The reference table of every setting (docs/operations.md).")] = False,
) -> None:
    """Print the settings in force (secrets masked) with their environment variable names."""
    if markdown:
        from backend.config import settings_table

        typer.echo(settings_table())
        return
    for name, value in _settings(data_dir).describe().items():
        typer.echo(f"TAGLOOP_{name.upper():<28} {value}")


def _register_tools() -> None:
    """``tagloop simulate``, ``tagloop bench …`` and ``tagloop demo`` live in the ``tools`` package (not the server)."""
    from tools.cli import register

    register(app)


_register_tools()


def main() -> None:
    """Console-script entry point."""
    app()
