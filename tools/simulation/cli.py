"""``tagloop simulate``: offline active learning on a labeled CSV, through the path tagloop serves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from backend.console import settings_or_exit, stderr_console
from backend.errors import TagloopError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from backend.config import Settings
    from tools.simulation import ProgressCallback, SimulationConfig

DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $TAGLOOP_DATA_DIR or ./var).")]


def simulate(
    data: Annotated[Path, typer.Option(help="Labeled pool CSV (text,label; multi-label joined by '|').")],
    eval_csv: Annotated[Path, typer.Option("--eval", help="Labeled evaluation CSV.")],
    out: Annotated[Path, typer.Option(help="Output directory: results.json and learning-curve PNGs.")],
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="Strategy name (repeatable); default: TAGLOOP_STRATEGY. random always runs."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Label Studio labeling config (XML): label names and hints of its first <Choices>, as a project "
            "serves them. Default: the CSV's labels, no hints.",
        ),
    ] = None,
    prior: Annotated[
        list[str] | None,
        typer.Option(
            help="zeroshot: the served model (zero-shot prior blended with the fitted head, calibrated); none: the "
            "fitted head alone. Repeatable; default zeroshot. results.json's top-level entries are the first's."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Repetitions with different seed sets.")] = 5,
    seed_size: Annotated[
        int, typer.Option(help="Random labels before the first query (0: the strategy picks from zero-shot).")
    ] = 20,
    batch: Annotated[int, typer.Option(help="Labels queried per step.")] = 10,
    budget: Annotated[int, typer.Option(help="Total labels, seed set included.")] = 500,
    model: Annotated[
        str,
        typer.Option(help="frozen: heads on the served body's embeddings (fast); setfit: fine-tune it every step."),
    ] = "frozen",
    setfit_steps: Annotated[int, typer.Option(help="SetFit training steps per step with --model setfit.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """Replay active learning offline on a labeled CSV (labels act as the annotator) and compare strategies."""
    from tools.simulation import SimulationConfig, load_dataset, resolve_control

    settings = settings_or_exit(data_dir)
    try:  # data and labeling config are checked before the body is loaded
        control, _ = resolve_control(load_dataset(data), load_dataset(eval_csv), config)
        sim = SimulationConfig(
            pool_path=data,
            eval_path=eval_csv,
            out_dir=out,
            strategies=tuple(strategy or ()),
            default_strategy=settings.multi_label_strategy if control.multi_label else settings.strategy,
            priors=tuple(prior or ("zeroshot",)),
            label_config=config,
            seeds=seeds,
            seed_size=seed_size,
            batch=batch,
            budget=budget,
            model=model,
            setfit_steps=setfit_steps,
            **served_settings(settings),
        )
    except TagloopError as exc:
        _fail(exc)
    results = _run(settings, sim)
    typer.echo(f"zero-shot {results['metric']}: {results['zero_shot'][results['metric']]:.4f}")
    for prior_name, block in results["priors"].items():
        for name, row in sorted(block["strategies"].items(), key=lambda kv: -kv[1]["auc"]):
            shown, zero_shot = row["suggestions_right"]["mean"][-1], row["zero_shot_right"]["mean"][-1]
            typer.echo(
                f"{prior_name:<9} {name:<28} AUC {row['auc']:.4f} ± {row['auc_std']:.4f}   "
                f"vs random {row['auc_minus_random']:+.4f}   "
                f"suggestions right {shown:.1f} of {sim.budget} (zero-shot {zero_shot:.1f})"
            )
    typer.echo(f"wrote {out / 'results.json'}")


def served_settings(settings: Settings) -> dict[str, Any]:
    """The served model's settings, as ``SimulationConfig`` fields (the body to fine-tune for ``--model setfit``)."""
    from backend.models.encoder import bundled_model_path

    return {
        "prior_strength": settings.prior_strength,
        "zero_shot_temperature": settings.zero_shot_temperature,
        "min_labels_to_train": settings.min_labels_to_train,
        "max_pool": settings.strategy_max_pool,
        "max_seq_length": settings.max_seq_length,
        "seed": settings.seed,
        "setfit_base": Path(settings.base_model) if settings.base_model else bundled_model_path(),
    }


def _fail(exc: TagloopError) -> NoReturn:
    typer.secho(f"error: {exc.reason}", fg="red", err=True)
    raise typer.Exit(2) from None


def _run(settings: Settings, sim: SimulationConfig) -> dict[str, Any]:
    """Build services on the data dir, take the served base body and run; exit 2 on a simulation error."""
    from rich.progress import Progress

    from backend.bootstrap import build
    from tools.simulation import ServedBody, run_simulation

    console = stderr_console()
    services = build(settings, role="cli")
    try:
        with console.status("loading the served body (the first use in a data dir exports it, about a minute)"):
            body = ServedBody.of(services)
        with Progress(console=console, transient=True) as bar:
            return run_simulation(sim, body, progress=_progress(bar))
    except TagloopError as exc:
        _fail(exc)
    finally:
        services.close()


def _progress(bar: Progress) -> ProgressCallback:
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return progress
