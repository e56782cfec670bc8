"""Models: a sentence-transformer body shared by per-control heads, how they are trained and served."""

from backend.models.classifier import TextClassifier
from backend.models.registry import ModelRegistry

__all__ = ["ModelRegistry", "TextClassifier"]
