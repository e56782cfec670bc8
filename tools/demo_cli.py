"""``tagloop demo``: Label Studio and tagloop on loopback with a project of real data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.console import settings_or_exit

DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]


def demo(
    config: Annotated[str, typer.Option(help="annotation_configs/ name (or an XML path).")] = "news_topics",
    data: Annotated[str, typer.Option(help="../shared/data set name (or a CSV path with a text column).")] = "ag_news",
    n: Annotated[int, typer.Option(help="Tasks imported (drawn at random from the data).")] = 300,
    ls_port: Annotated[int | None, typer.Option(help="Label Studio port (default: a free one).")] = None,
    port: Annotated[int | None, typer.Option(help="tagloop port (default: a free one).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Query strategy (default: TAGLOOP_STRATEGY's).")] = None,
    ls_database: Annotated[
        str,
        typer.Option(
            help="Label Studio's database: sqlite (in the work dir) or postgresql (database tagloop_demo_ls on "
            "the local PostgreSQL server, 127.0.0.1:5432, user postgres; created if absent)."
        ),
    ] = "sqlite",
    ls_venv: Annotated[Path | None, typer.Option(help="Label Studio's venv (default: $TAGLOOP_LS_VENV).")] = None,
    check: Annotated[bool, typer.Option(help="Verify a task carries tagloop's prediction, print, stop.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Label Studio + tagloop on 127.0.0.1 with a project of real data and uncertainty sampling; prints the URL,
    user and password (installs Label Studio into its own venv first if needed). Ctrl-C stops both."""
    from rich.console import Console

    from tools.demo import DemoConfig, DemoError, run_demo
    from tools.harness import ls_venv_path

    settings = settings_or_exit(data_dir)
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
            ls_database=ls_database,  # type: ignore[arg-type]  # checked by DemoConfig
            seed=settings.seed,
        )
    except DemoError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    code = run_demo(demo_config, check=check, console=Console(soft_wrap=True))
    if code:
        raise typer.Exit(code)
