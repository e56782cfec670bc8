"""Active-learning simulations on labeled CSVs through the path tagloop serves:
``run_simulation(SimulationConfig(...), ServedBody.of(services))``.

Pool and eval texts are embedded once by the served body (through tagloop's embedding cache); then every
(prior, strategy, seed) is replayed, with the model tagloop would serve after each batch of labels: the zero-shot
prior blended with a logistic head and calibrated (``zeroshot``), or the logistic head alone (``none``).
"""

from tools.simulation.config import MODELS, PRIORS, SimulationConfig
from tools.simulation.data import (
    DatasetError,
    LabeledDataset,
    SimulationConfigError,
    SimulationError,
    load_dataset,
)
from tools.simulation.embeddings import ProgressCallback, ServedBody, embed_in_chunks
from tools.simulation.metrics import trapezoid_auc
from tools.simulation.plots import plot_learning_curves
from tools.simulation.problem import resolve_control
from tools.simulation.results import run_simulation

__all__ = [
    "MODELS",
    "PRIORS",
    "DatasetError",
    "LabeledDataset",
    "ProgressCallback",
    "ServedBody",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationError",
    "embed_in_chunks",
    "load_dataset",
    "plot_learning_curves",
    "resolve_control",
    "run_simulation",
    "trapezoid_auc",
]
