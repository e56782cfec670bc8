"""The ``tagloop`` commands that are tooling, not the server: ``simulate``, ``bench …`` and ``demo``.

``backend.cli`` mounts them with ``register``; nothing in the server imports this package.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the tool commands to the ``tagloop`` app."""
    from tools.bench.cli import bench_app
    from tools.demo_cli import demo
    from tools.simulation.cli import simulate

    app.command()(simulate)
    app.add_typer(bench_app, name="bench")
    app.command()(demo)
