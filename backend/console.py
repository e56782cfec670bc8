"""What every ``tagloop`` command shares: settings read at the entry point (exit 2 with the reason on a bad value)
and a console on standard error for progress."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from backend.config import Settings
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.console import Console


def settings_or_exit(data_dir: Path | None = None) -> Settings:
    """``Settings.from_env`` with ``data_dir`` on top; a bad value prints its reason and exits with code 2."""
    try:
        return Settings.from_env(data_dir=data_dir)
    except TagloopError as exc:
        typer.secho(f"error: {exc.reason}", fg="red", err=True)
        raise typer.Exit(2) from None


def stderr_console() -> Console:
    """A rich console on standard error (progress bars never mix with a command's JSON on standard output)."""
    from rich.console import Console

    return Console(stderr=True)
