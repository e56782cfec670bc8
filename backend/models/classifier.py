"""``TextClassifier``: one body plus a head per ``<Choices>`` control, under one version name."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np

from backend.labelstudio.label_config import LabelSpec
from backend.models.encoder import Encoder
from backend.models.heads import Head, ZeroShotHead, label_prompt


@dataclass
class TextClassifier:
    """A servable model version. ``predict`` returns, per control, probabilities (n_texts, n_labels)."""

    version: str
    encoder: Encoder
    heads: dict[str, Head]

    def predict(self, texts_by_control: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """Per control name: (n, len(labels)) probabilities for that control's texts (pool positions)."""
        cache: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        for name, texts in texts_by_control.items():
            key = "\x00".join(texts)
            if key not in cache:
                cache[key] = self.encoder.encode(texts)
            out[name] = self.heads[name].predict_proba(cache[key])
        return out

    def save(self, directory: Path, *, share_body: bool = False) -> None:
        """Write ``heads.joblib``, ``meta.json`` and, unless ``share_body``, ``body/`` (sentence-transformers).

        With ``share_body`` the version refers to the body directory its encoder was loaded from (fast-tier
        versions refit heads on an existing body); otherwise the body is written and the encoder now names it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        if share_body:
            body_path = self.encoder.source
        else:
            self.encoder.save(directory / "body")
            body_path = str((directory / "body").resolve())
            self.encoder.source = body_path
        joblib.dump(self.heads, directory / "heads.joblib")
        meta = {"version": self.version, "body_path": body_path, "heads": {n: h.kind for n, h in self.heads.items()}}
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, *, load_encoder: Callable[[Path], Encoder]) -> TextClassifier:
        """Load what ``save`` wrote (only ever from tagloop's own artifact directory).

        ``load_encoder`` maps a body directory to a loaded ``Encoder`` (the registry shares loaded bodies).
        """
        meta = json.loads((directory / "meta.json").read_text())
        encoder = load_encoder(Path(meta.get("body_path") or directory / "body"))
        heads = joblib.load(directory / "heads.joblib")
        return cls(version=str(meta["version"]), encoder=encoder, heads=heads)


def zero_shot_version(project_id: int, spec: LabelSpec) -> str:
    """Name of the zero-shot version for this project and config."""
    return f"{project_id}-zeroshot-{spec.config_hash[:8]}"


def zero_shot_heads(encoder: Encoder, spec: LabelSpec, temperature: float) -> dict[str, Head]:
    """A zero-shot head per control, from the label names and their ``hint`` attributes."""
    heads: dict[str, Head] = {}
    for control in spec.controls:
        prompts = [label_prompt(label, hint) for label, hint in zip(control.labels, control.hints, strict=True)]
        heads[control.name] = ZeroShotHead(
            labels=control.labels,
            multi_label=control.multi_label,
            label_embeddings=encoder.encode(prompts),
            temperature=temperature,
        )
    return heads


def zero_shot_classifier(project_id: int, encoder: Encoder, spec: LabelSpec, temperature: float) -> TextClassifier:
    """The model served before any label exists."""
    return TextClassifier(zero_shot_version(project_id, spec), encoder, zero_shot_heads(encoder, spec, temperature))
