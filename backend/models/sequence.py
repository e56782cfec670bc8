"""``TransformerClassifier``: a fully fine-tuned ``AutoModelForSequenceClassification`` served as a version.

It serves like ``TextClassifier`` (``version``, ``encoder``, ``heads``, ``predict``, ``save``, ``load``): every
control, the fine-tuned one included, is predicted by its served head (the zero-shot prior blended with a logistic
head, calibrated) on ``encoder`` embeddings, the fine-tuned body with mean pooling, so serving (an ONNX export of
that body), ranking and the fast tier see the fine-tuned space through one inference path. ``proba`` gives the
model's own logits (softmax for a single choice, sigmoid for multiple choices): what ``tagloop export`` ships and
what distillation uses as the teacher.

Artifact directory::

    transformer/    save_pretrained of model and tokenizer: AutoModelForSequenceClassification and
                    pipeline("text-classification") load it as is (id2label = the control's labels)
    heads.joblib    logistic heads of the other controls
    meta.json       {"kind": "transformer", "version", "control", "multi_label", "body_path", ...}
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from backend.models.classifier import TextClassifier
from backend.models.encoder import Encoder, offline

KIND = "transformer"
MODEL_DIR = "transformer"


@dataclass
class TransformerClassifier(TextClassifier):
    """A servable fine-tuned transformer. ``predict`` returns, per control, (n_texts, n_labels) probabilities."""

    model: Any
    tokenizer: Any
    control: str
    multi_label: bool
    max_seq_length: int = 128
    batch_size: int = 32
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_labels) probabilities from the model's logits, texts truncated at ``max_seq_length``."""
        import torch

        n_labels = int(self.model.config.num_labels)
        if not texts:
            return np.zeros((0, n_labels), dtype=np.float32)
        out = []
        with self._lock, torch.inference_mode():
            self.model.eval()
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                logits = self.model(**batch).logits
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                out.append(probs.float().numpy())
        return np.concatenate(out).astype(np.float32)

    def save(self, directory: Path, *, share_body: bool = False) -> None:
        """Write ``transformer/``, ``heads.joblib`` and ``meta.json``; the encoder then names ``transformer/``.

        ``share_body`` is accepted for the ``TextClassifier`` interface; a fine-tuned model is always written.
        """
        directory.mkdir(parents=True, exist_ok=True)
        model_dir = directory / MODEL_DIR
        self.model.save_pretrained(str(model_dir))
        self.tokenizer.save_pretrained(str(model_dir))
        self.encoder.source = str(model_dir.resolve())
        joblib.dump(self.heads, directory / "heads.joblib")
        meta = {
            "kind": KIND,
            "version": self.version,
            "body_path": str(model_dir.resolve()),
            "control": self.control,
            "multi_label": self.multi_label,
            "labels": [self.model.config.id2label[i] for i in range(int(self.model.config.num_labels))],
            "max_seq_length": self.max_seq_length,
            "heads": {n: getattr(h, "kind", type(h).__name__) for n, h in self.heads.items()},
        }
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, *, load_encoder: Callable[[Path], Encoder]) -> TransformerClassifier:
        """Load what ``save`` wrote (only ever from tagloop's own artifact directory)."""
        offline()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        meta = json.loads((directory / "meta.json").read_text())
        model_dir = directory / MODEL_DIR
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
        model.eval()
        encoder = load_encoder(model_dir)
        return cls(
            version=str(meta["version"]),
            encoder=encoder,
            heads=joblib.load(directory / "heads.joblib"),
            model=model,
            tokenizer=AutoTokenizer.from_pretrained(str(model_dir)),
            control=str(meta["control"]),
            multi_label=bool(meta["multi_label"]),
            max_seq_length=int(meta.get("max_seq_length", 128)),
            batch_size=encoder.batch_size,
        )


def load_classifier(directory: Path, *, load_encoder: Callable[[Path], Encoder]) -> TextClassifier:
    """Load a version directory of either kind (``meta.json`` ``kind``; absent means a ``TextClassifier``)."""
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("kind") == KIND:
        return TransformerClassifier.load(directory, load_encoder=load_encoder)
    return TextClassifier.load(directory, load_encoder=load_encoder)


def mean_pooling_encoder(base: Path, body: Any, *, source: str, max_seq_length: int, batch_size: int) -> Encoder:
    """An ``Encoder`` over an in-memory fine-tuned body (``model.base_model``): mean pooling, unit length.

    The tokenizer and module layout come from ``base``; the weights are ``body`` itself (shared, not copied).
    """
    offline()
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models  # type: ignore[attr-defined]

    transformer = st_models.Transformer(str(base), max_seq_length=max_seq_length)
    transformer.model = body  # sentence-transformers 6: `auto_model` is a read-only view of `model`
    pooling = st_models.Pooling(int(body.config.hidden_size), pooling_mode="mean")
    st = SentenceTransformer(modules=[transformer, pooling, st_models.Normalize()], device="cpu")
    st.max_seq_length = max_seq_length
    return Encoder(st, source=source, batch_size=batch_size)
