"""``SimulationConfig``: what ``run_simulation`` replays, checked when it is built (values only, no environment)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from strategies import StrategyError, get_strategy
from tools.simulation.data import SimulationConfigError

MODELS = ("frozen", "setfit")
PRIORS = ("zeroshot", "none")
"""``zeroshot``: the served model (zero-shot prior blended with the fitted head, calibrated; ``served_head``).
``none``: a logistic head alone (labels it has not seen get 0; uniform / 0.5 before two classes exist)."""
BASELINE = "random"


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SimulationConfigError(f"{name}: got {value!r}, expected an integer >= {minimum}")


def _check_number(name: str, value: object, minimum: float, *, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimulationConfigError(f"{name}: got {value!r}, expected a number")
    if value <= minimum if strict else value < minimum:
        raise SimulationConfigError(f"{name}: got {value!r}, expected a number {'>' if strict else '>='} {minimum}")


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """What to simulate. ``strategies`` empty → ``default_strategy``; ``random`` always runs too, under every prior.

    Curves have x = 0 (nothing labeled: the zero-shot prior), seed_size, seed_size + batch, …, budget (the last
    step may be smaller than ``batch``); ``budget`` counts the seed set. With ``seed_size`` 0 the strategy picks the
    first batch from the zero-shot probabilities.

    ``label_config``: a Label Studio labeling config (XML file) whose first ``<Choices>`` gives the label names and
    hints, as a project would serve them; None: a control made from the CSV's labels, without hints.

    The last five fields are the served model's settings (``backend.config.Settings`` fields of the same names; the
    CLI fills them from ``TAGLOOP_*``): ``seed`` is the one training uses (out-of-fold splits), not a simulation seed.
    """

    pool_path: Path
    eval_path: Path
    out_dir: Path
    strategies: tuple[str, ...] = ()
    default_strategy: str = "margin"
    priors: tuple[str, ...] = ("zeroshot",)
    label_config: Path | None = None
    seeds: int = 5
    seed_size: int = 20
    batch: int = 10
    budget: int = 500
    model: str = "frozen"
    """``frozen``: heads on the served body's fixed embeddings (fast tier). ``setfit``: at every step a copy of the
    body at ``setfit_base`` is fine-tuned with SetFit on the labeled rows, and pool, eval and label prompts are
    re-embedded by it (slow)."""
    setfit_base: Path | None = None
    setfit_steps: int = 20
    prior_strength: float = 20.0
    zero_shot_temperature: float = 0.05
    min_labels_to_train: int = 4
    """Fewer labels than this: the zero-shot prior is still what is served (no version trained yet)."""
    max_pool: int = 200
    """Each query ranks a uniform random sample of this many unlabeled rows, as the served queue does
    (``TAGLOOP_STRATEGY_MAX_POOL``); 0: the whole pool."""
    max_seq_length: int = 128
    seed: int = 42

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategies", tuple(self.strategies))
        object.__setattr__(self, "priors", tuple(dict.fromkeys(self.priors)))
        _check_int("seeds", self.seeds, 1)
        _check_int("seed_size", self.seed_size, 0)
        _check_int("batch", self.batch, 1)
        _check_int("budget", self.budget, 1)
        _check_int("setfit_steps", self.setfit_steps, 1)
        _check_int("min_labels_to_train", self.min_labels_to_train, 1)
        _check_int("max_pool", self.max_pool, 0)
        _check_int("max_seq_length", self.max_seq_length, 1)
        _check_number("prior_strength", self.prior_strength, 0.0)
        _check_number("zero_shot_temperature", self.zero_shot_temperature, 0.0, strict=True)
        if not self.priors or any(p not in PRIORS for p in self.priors):
            raise SimulationConfigError(f"prior: got {list(self.priors)}, expected one or more of {list(PRIORS)}")
        if self.model not in MODELS:
            raise SimulationConfigError(f"model: got {self.model!r}, expected one of {list(MODELS)}")
        if self.model == "setfit" and self.setfit_base is None:
            raise SimulationConfigError("setfit_base: got None, expected the body directory to fine-tune")
        if self.budget < self.seed_size:
            raise SimulationConfigError(
                f"budget: got {self.budget}, expected >= seed_size ({self.seed_size}); the budget counts the seed set"
            )
        for name in self.strategy_names:
            try:
                get_strategy(name)
            except StrategyError as exc:
                raise SimulationConfigError(f"strategy: {exc}") from None

    @property
    def strategy_names(self) -> tuple[str, ...]:
        """The strategies to run, in order, without repeats, ending with ``random`` unless asked earlier."""
        asked = self.strategies or (self.default_strategy,)
        return tuple(dict.fromkeys((*asked, BASELINE)))

    @property
    def label_counts(self) -> list[int]:
        """Labels at each evaluation: 0, seed_size, seed_size + batch, …, budget (no repeats)."""
        return list(dict.fromkeys([0, *range(self.seed_size, self.budget, self.batch), self.budget]))

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (paths as strings)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}
        out["strategies"] = list(self.strategy_names)
        out["priors"] = list(self.priors)
        return out
