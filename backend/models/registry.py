"""``ModelRegistry``: load each served model once per process and swap versions atomically.

Two kinds of body live here:
- torch bodies (``Encoder``, ``encoder_for``): what training and export need (SetFit fine-tunes them);
- served bodies (``served_encoder_for``): what predictions, ranking and fast-tier training use. Per
  ``serving.decide_serving`` that is an ONNX Runtime export of the torch body when it passes the parity
  check, else the torch body, behind a ``BatchedEncoder`` that coalesces concurrent calls.
A process that serves ONNX never loads torch unless it trains or exports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from backend.config import Settings
from backend.labelstudio.label_config import LabelSpec
from backend.models.batching import BatchedEncoder
from backend.models.classifier import TextClassifier, zero_shot_classifier, zero_shot_version
from backend.models.embedding_cache import EmbeddingCache
from backend.models.encoder import Encoder, bundled_model_path
from backend.models.onnx_encoder import OnnxModelError
from backend.models.sequence import load_classifier
from backend.models.serving import (
    PARITY_TEXTS,
    ServingDecision,
    ServingError,
    decide_out_of_process,
    decide_serving,
    export_dir,
    load_onnx,
    parity_texts,
    split_source,
)
from backend.store.records import ProjectRecord
from backend.store.sql_store import SqlStore
from backend.write_behind import WriteBehind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """Predictions of one request: per control, probabilities (n_texts, n_labels) and truncation (n_texts,)."""

    probas: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]


class ModelRegistry:
    """Per project, the classifier being served. Readers get a reference; publishing replaces it."""

    def __init__(self, settings: Settings, store: SqlStore, *, base: Encoder | None = None) -> None:
        self.settings = settings
        self.store = store
        self._cache_writer = WriteBehind(
            store.embeddings.put, name="cache-writer", interval_s=settings.write_behind_ms / 1000
        )
        self.embeddings = EmbeddingCache(store, write=self._cache_writer)
        """The serving path's cache: lookups in the request, writes behind it (one commit for many requests)."""
        self._lock = threading.RLock()
        self._base = base
        self._served: dict[int, TextClassifier] = {}
        self._bodies: dict[str, Encoder] = {}
        self._served_bodies: dict[str, BatchedEncoder] = {}
        self._decisions: dict[str, ServingDecision] = {}

    @property
    def base_path(self) -> Path:
        """Directory of the base body (the setting, or the bundled MiniLM)."""
        return Path(self.settings.base_model) if self.settings.base_model else bundled_model_path()

    # ------------------------------------------------------------------------------------------ torch bodies

    def base_encoder(self) -> Encoder:
        """The untrained torch body, loaded on first use (training, export and parity use it)."""
        with self._lock:
            if self._base is None:
                log.info("loading base model from %s", self.base_path)
                self._base = self._load_torch(self.base_path)
            return self._base

    def encoder_for(self, path: Path) -> Encoder:
        """The torch body at ``path`` (a served ``source`` is mapped to its torch body), loaded once."""
        body, _ = split_source(str(path))
        key = str(body.resolve())
        with self._lock:
            if key == str(self.base_path.resolve()):
                return self.base_encoder()
            if key not in self._bodies:
                log.info("loading body %s", key)
                self._bodies[key] = self._load_torch(body)
            return self._bodies[key]

    def _load_torch(self, path: Path) -> Encoder:
        return Encoder.load(
            path, max_seq_length=self.settings.max_seq_length, batch_size=self.settings.predict_batch_size
        )

    # ----------------------------------------------------------------------------------------- served bodies

    def served_base_encoder(self) -> Encoder:
        """The served base body (exported and parity-checked on first use; `tagloop serve` warms it up)."""
        return self.served_encoder_for(self.base_path)

    def served_encoder_for(self, path: Path) -> Encoder:
        """The served body for a torch body directory or a served ``source``; drop-in for ``Encoder`` in serving."""
        body, _ = split_source(str(path))
        key = str(body.resolve())
        with self._lock:
            if key not in self._served_bodies:
                self._served_bodies[key] = self._serve(body, self._decision(body))
            return cast(Encoder, self._served_bodies[key])  # BatchedEncoder has what serving uses of Encoder

    def serving_decision(self, path: Path) -> ServingDecision | None:
        """What serves the body at ``path`` in this process (None before it was first served)."""
        body, _ = split_source(str(path))
        return self._decisions.get(str(body.resolve()))

    def prepare_serving(self, project_id: int, classifier: Any) -> ServingDecision | None:
        """After a version was saved: export its new body, check parity with its heads, serve the result.

        Called by ``train_project`` right after ``classifier.save``. A classifier whose encoder is already a
        served body (fast tier) is left alone; one without a saved torch body is served by torch. A classifier
        that is not a ``TextClassifier`` (transformer logits) keeps its torch logits: only its encoder is swapped.
        """
        encoder = getattr(classifier, "encoder", None)
        if not isinstance(encoder, Encoder) or not Path(encoder.source).is_dir():
            return None
        body = Path(encoder.source).resolve()
        heads = (  # trained heads only: zero-shot heads are near ties on many texts (not a quality signal)
            {name: head.predict_proba for name, head in classifier.heads.items() if head.kind != "zeroshot"}
            if isinstance(classifier, TextClassifier)
            else None
        )
        texts = parity_texts(self.project_texts(project_id))
        decision = decide_serving(encoder, self._export_dir(body), self.settings, texts, heads)
        with self._lock:
            self._bodies[str(body)] = encoder
            self._decisions[str(body)] = decision
            served = self._served_bodies.get(str(body)) or self._serve(body, decision)
            self._served_bodies[str(body)] = served
        classifier.encoder = cast(Encoder, served)
        return decision

    def _export_dir(self, body: Path) -> Path:
        return export_dir(body, base=self.base_path, models_dir=self.settings.models_dir)

    def _decision(self, body: Path) -> ServingDecision:
        """The recorded decision for ``body`` if it was made for the current ``serve_precision``, else a new one."""
        key = str(body.resolve())
        decision = self._decisions.get(key) or ServingDecision.read(self._export_dir(body))
        if decision is None or decision.requested != self.settings.serve_precision:
            decision = self._decide(body)
        self._decisions[key] = decision
        return decision

    def _decide(self, body: Path) -> ServingDecision:
        """Decide with the torch body loaded here if it is, else in a child process (torch stays out of this one)."""
        key = str(body.resolve())
        texts = parity_texts(self.project_texts(None))
        loaded = self._base if key == str(self.base_path.resolve()) else self._bodies.get(key)
        if loaded is None and self.settings.serve_precision != "torch":
            try:
                return decide_out_of_process(body, self._export_dir(body), self.settings, texts)
            except ServingError as exc:
                log.warning("%s; deciding in this process", exc.reason)
        return decide_serving(self.encoder_for(body), self._export_dir(body), self.settings, texts)

    def _serve(self, body: Path, decision: ServingDecision) -> BatchedEncoder:
        """Wrap the body a decision names; an ONNX export that no longer loads falls back to torch."""
        inner: Any
        if decision.onnx:
            try:
                inner = load_onnx(decision, self._export_dir(body), self.settings)
            except OnnxModelError as exc:
                log.warning("%s: recorded %s export does not load (%s); serving torch", body, decision.served, exc)
                inner = self.encoder_for(body)
        else:
            inner = self.encoder_for(body)
        settings = self.settings
        return BatchedEncoder(
            inner,
            max_batch=settings.predict_batch_size,
            max_wait_ms=settings.batch_max_wait_ms,
            max_seq_length=settings.max_seq_length,
        )

    def project_texts(self, project_id: int | None, limit: int = PARITY_TEXTS) -> list[str]:
        """Up to ``limit`` task texts of the project (of every project for None): labeled first, then the pool."""
        projects = [project_id] if project_id is not None else [p.id for p in self.store.projects.all()]
        texts: list[str] = []
        for pid in projects:
            rows = [ex.data for ex in self.store.annotations.training_set(pid)]
            rows += [data for _, data in self.store.tasks.unlabeled(pid, limit=limit)]
            texts += [v for data in rows for v in data.values() if isinstance(v, str) and v.strip()]
            if len(texts) >= limit:
                break
        return texts[:limit]

    # --------------------------------------------------------------------------------------------- versions

    def served_version(self, project: ProjectRecord, spec: LabelSpec) -> str:
        """The version name ``get`` would serve, without loading anything."""
        if project.current_version and self._trained_matches(project, spec):
            return project.current_version
        return zero_shot_version(project.id, spec)

    def get(self, project: ProjectRecord, spec: LabelSpec) -> TextClassifier:
        """The classifier to serve for ``project`` (loaded once; zero-shot before any training)."""
        wanted = self.served_version(project, spec)
        current = self._served.get(project.id)
        if current is not None and current.version == wanted:
            return current
        with self._lock:
            current = self._served.get(project.id)
            if current is None or current.version != wanted:
                current = self._load(project.id, wanted, spec)
                self._served[project.id] = current
            return current

    def publish(self, project_id: int, classifier: TextClassifier) -> None:
        """Serve ``classifier`` from now on; requests already holding the old one finish on it.

        A classifier still on its torch body (``prepare_serving`` was not called) gets the served body first.
        """
        encoder = classifier.encoder
        if isinstance(encoder, Encoder) and Path(encoder.source).is_dir():
            with self._lock:
                self._bodies.setdefault(str(Path(encoder.source).resolve()), encoder)
            classifier.encoder = self.served_encoder_for(Path(encoder.source))
        with self._lock:
            self._served[project_id] = classifier

    def predict(
        self, model: TextClassifier, texts_by_control: Mapping[str, Sequence[str]], *, flag_truncated: bool = True
    ) -> Served:
        """The one inference path (``/predict``, pushes, stop sets, review): per control, probabilities (n, n_labels)
        for its texts (positions as given), embeddings through the one cache, heads of the version.

        Texts longer than ``max_seq_length`` tokens are encoded truncated; ``Served.truncated`` marks them (all
        False when ``flag_truncated`` is off: a push of thousands of texts does not tokenize them twice).
        """
        probas: dict[str, np.ndarray] = {}
        truncated: dict[str, np.ndarray] = {}
        done: dict[tuple[str, ...], np.ndarray] = {}
        for name, texts in texts_by_control.items():
            key = tuple(texts)
            if key not in done:
                done[key] = self.embeddings.encode(model.encoder, list(texts))
            probas[name] = model.heads[name].predict_proba(done[key])
            truncated[name] = (
                _truncated(model.encoder, texts, self.settings.max_seq_length)
                if flag_truncated
                else np.zeros(len(texts), dtype=bool)
            )
        return Served(probas, truncated)

    def close(self) -> None:
        """Stop the batchers' dispatcher threads and write the cache entries still queued."""
        with self._lock:
            for served in self._served_bodies.values():
                served.close()
        self._cache_writer.close()

    def _trained_matches(self, project: ProjectRecord, spec: LabelSpec) -> bool:
        return self.store.versions.config_hash(project.current_version or "") == spec.config_hash

    def load_version(self, project_id: int, version: str, spec: LabelSpec) -> TextClassifier:
        """A kept version, loaded (not served): reports and benches score earlier versions this way."""
        return self._load(project_id, version, spec)

    def _load(self, project_id: int, version: str, spec: LabelSpec) -> TextClassifier:
        if version == zero_shot_version(project_id, spec):
            served = self.served_base_encoder()
            return zero_shot_classifier(project_id, served, spec, self.settings.zero_shot_temperature)
        record = self.store.versions.get(version)
        if record is None or not record.artifact_path:
            raise LookupError(f"model version {version!r} has no artifact")
        log.info("loading %s from %s", version, record.artifact_path)
        return load_classifier(Path(record.artifact_path), load_encoder=self.served_encoder_for)


def _truncated(encoder: Any, texts: Sequence[str], max_seq_length: int) -> np.ndarray:
    """(len(texts),) bool from a served body; all False for a body that cannot tell (a plain ``Encoder``)."""
    check: Callable[[Sequence[str]], np.ndarray] | None = getattr(encoder, "truncated", None)
    return check(texts) if check is not None else np.zeros(len(texts), dtype=bool)
