"""The ``tagloop`` command line. Settings come from ``TAGLOOP_*`` variables; options override them."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Annotated

import typer

from backend.config import Settings
from backend.errors import TagloopError

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
    typer.echo(
        f"tagloop serving on http://{host}:{port} (data: {settings.data_dir.resolve()}, "
        f"database: {settings.resolved_database_url.split('@')[-1]})"
    )
    waitress_serve(flask_app, host=host, port=port, threads=threads, ident="tagloop")


@app.command()
def train(
    project: Annotated[int, typer.Option(help="Label Studio project id.")],
    tier: Annotated[
        str, typer.Option(help="fast: refit heads on cached embeddings; setfit: fine-tune the body.")
    ] = "setfit",
    data_dir: DataDir = None,
) -> None:
    """Train a new model version of PROJECT now, from the labels tagloop has stored, and make it current."""
    from rich.console import Console

    from backend.services import build_services
    from backend.training.jobs import train_project

    settings = _settings(data_dir)
    services = build_services(settings)
    if services.store.get_project(project) is None:
        known = [p.id for p in services.store.list_projects()]
        typer.secho(f"error: project {project} is unknown; known projects: {known}", fg="red", err=True)
        raise typer.Exit(2)
    with Console(stderr=True).status(f"training project {project} ({services.store.count_usable(project)} labels)..."):
        try:
            version = train_project(services, project, tier)
        except (TagloopError, LookupError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
    record = services.store.get_version(version)
    typer.echo(
        json.dumps(
            {
                "model_version": version,
                "n_train": record.n_train if record else None,
                "metrics": record.metrics if record else None,
            }
        )
    )


@app.command("settings")
def show_settings(data_dir: DataDir = None) -> None:
    """Print the settings in force (secrets masked) with their environment variable names."""
    for name, value in _settings(data_dir).describe().items():
        typer.echo(f"TAGLOOP_{name.upper():<28} {value}")


def main() -> None:
    """Console-script entry point."""
    app()
