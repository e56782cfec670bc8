"""``tagloop simulate``: offline active learning on a labeled CSV, through the path tagloop serves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.console import settings_or_exit, stderr_console
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.progress import TaskID

DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]


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

    settings = settings_or_exit(data_dir)
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
    with Progress(console=stderr_console(), transient=True) as bar:
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
