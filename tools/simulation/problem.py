"""The simulated project: its ``<Choices>`` control, and the pool and eval set embedded by the served body.

Index spaces: **dataset index** = row of the pool CSV (0-based); columns of every probability and indicator
matrix are the control's labels (column j = ``control.labels[j]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from backend.errors import UnsupportedLabelConfig
from backend.labelstudio.label_config import ControlSpec, LabelSpec, parse_label_config
from backend.models.heads import Head
from tools.simulation.data import LabeledDataset, SimulationConfigError

Metric = Literal["accuracy", "micro_f1"]
SYNTHETIC = "label"
"""Name of the control made from a CSV's labels when no labeling config is given."""


def config_control(path: Path) -> tuple[ControlSpec, str]:
    """The first ``<Choices>`` of the labeling config at ``path`` and the config's hash.

    Raises:
        SimulationConfigError: the file cannot be read, or tagloop would not serve it (the parser's reason).
    """
    try:
        xml = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationConfigError(f"config: {path} cannot be read ({exc})") from None
    try:
        spec = parse_label_config(xml)
    except UnsupportedLabelConfig as exc:
        raise SimulationConfigError(f"config: {path}: {exc.reason}") from None
    return spec.controls[0], spec.config_hash


def synthetic_control(datasets: tuple[LabeledDataset, ...]) -> ControlSpec:
    """A control over the CSVs' labels (order of first appearance, pool first), no hints; multiple choice when any
    row has several labels or none."""
    labels = tuple(dict.fromkeys(label for d in datasets for label in d.labels))
    multi = any(d.multi_label for d in datasets)
    return ControlSpec(SYNTHETIC, "text", "Text", "text", labels, ("",) * len(labels), multi)


def check_fits(control: ControlSpec, datasets: tuple[LabeledDataset, ...], config: Path) -> None:
    """Every label of the CSVs must be a choice of ``control``, and multi-label data needs ``choice="multiple"``.

    Raises:
        SimulationConfigError: naming the unknown labels (per file) and the allowed ones.
    """
    for d in datasets:
        unknown = [label for label in d.labels if label not in control.labels]
        if unknown:
            raise SimulationConfigError(
                f"{d.path}: label(s) {unknown} are not choices of <Choices name={control.name!r}> in {config}; "
                f"allowed: {list(control.labels)}"
            )
        if d.multi_label and not control.multi_label:
            raise SimulationConfigError(
                f"{d.path} is multi-label (a cell joins labels with '|' or is empty), but <Choices "
                f'name={control.name!r}> in {config} is a single choice; expected choice="multiple"'
            )


def resolve_control(
    pool: LabeledDataset, evaluation: LabeledDataset, label_config: Path | None
) -> tuple[ControlSpec, LabelSpec]:
    """The control the simulation serves (from ``label_config`` or synthetic) and a one-control spec of it."""
    if label_config is None:
        control = synthetic_control((pool, evaluation))
        return control, LabelSpec(controls=(control,), config_hash="synthetic")
    control, digest = config_control(label_config)
    check_fits(control, (pool, evaluation), label_config)
    return control, LabelSpec(controls=(control,), config_hash=digest)


def indicator(targets: tuple[tuple[str, ...], ...], labels: tuple[str, ...]) -> np.ndarray:
    """Label lists → (n, n_labels) bool matrix, column j = labels[j]."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(targets), len(labels)), dtype=bool)
    for i, row in enumerate(targets):
        out[i, [index[label] for label in row]] = True
    return out


@dataclass(frozen=True)
class Problem:
    """The pool and eval set embedded by one body, with the zero-shot ``prior`` of the control on that body.

    ``pool_emb`` (n_pool, dim) by dataset index; ``eval_emb`` (n_eval, dim); ``eval_truth`` (n_eval, n_labels) bool.
    """

    control: ControlSpec
    prior: Head
    pool_emb: np.ndarray
    pool_targets: tuple[tuple[str, ...], ...]
    eval_emb: np.ndarray
    eval_truth: np.ndarray
    pool_texts: tuple[str, ...] = ()
    eval_texts: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The control's labels (column order)."""
        return self.control.labels

    @property
    def multi_label(self) -> bool:
        """Whether the control is a multiple choice."""
        return self.control.multi_label

    @property
    def metric(self) -> Metric:
        """``micro_f1`` for multi-label data, else ``accuracy``."""
        return "micro_f1" if self.multi_label else "accuracy"
