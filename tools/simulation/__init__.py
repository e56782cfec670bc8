"""Active-learning simulations on labeled CSVs: ``run_simulation(SimulationConfig(...), encoder)``.

Frozen-embedding fast tier: pool and eval texts are embedded once (cached on disk), then every strategy
is replayed per seed with a logistic head refitted on the labeled embeddings at each step.
"""

from tools.simulation.data import DatasetError, LabeledDataset, SimulationError, load_dataset
from tools.simulation.embeddings import EmbeddingCache, ProgressCallback, TextEncoder, embed_texts
from tools.simulation.loop import SimulationConfig, SimulationConfigError, run_simulation, trapezoid_auc
from tools.simulation.plots import plot_learning_curves

__all__ = [
    "DatasetError",
    "EmbeddingCache",
    "LabeledDataset",
    "ProgressCallback",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationError",
    "TextEncoder",
    "embed_texts",
    "load_dataset",
    "plot_learning_curves",
    "run_simulation",
    "trapezoid_auc",
]
