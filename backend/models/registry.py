"""``ModelRegistry``: load each served model once per process and swap versions atomically."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from backend.config import Settings
from backend.labelstudio.label_config import LabelSpec
from backend.models.classifier import TextClassifier, zero_shot_classifier, zero_shot_version
from backend.models.encoder import Encoder, bundled_model_path
from backend.store.records import ProjectRecord
from backend.store.sql_store import SqlStore

log = logging.getLogger(__name__)


class ModelRegistry:
    """Per project, the classifier being served. Readers get a reference; publishing replaces it."""

    def __init__(self, settings: Settings, store: SqlStore, *, base: Encoder | None = None) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.RLock()
        self._base = base
        self._served: dict[int, TextClassifier] = {}
        self._bodies: dict[str, Encoder] = {}

    @property
    def base_path(self) -> Path:
        """Directory of the base body (the setting, or the bundled MiniLM)."""
        return Path(self.settings.base_model) if self.settings.base_model else bundled_model_path()

    def base_encoder(self) -> Encoder:
        """The untrained body, loaded on first use and shared by every zero-shot model."""
        with self._lock:
            if self._base is None:
                log.info("loading base model from %s", self.base_path)
                self._base = Encoder.load(
                    self.base_path,
                    max_seq_length=self.settings.max_seq_length,
                    batch_size=self.settings.predict_batch_size,
                )
            return self._base

    def encoder_for(self, path: Path) -> Encoder:
        """The body at ``path``, loaded once per process (the base body included)."""
        key = str(path.resolve())
        with self._lock:
            if key == str(self.base_path.resolve()):
                return self.base_encoder()
            if key not in self._bodies:
                log.info("loading body %s", key)
                self._bodies[key] = Encoder.load(
                    path, max_seq_length=self.settings.max_seq_length, batch_size=self.settings.predict_batch_size
                )
            return self._bodies[key]

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
        """Serve ``classifier`` from now on; requests already holding the old one finish on it."""
        with self._lock:
            self._bodies.setdefault(str(Path(classifier.encoder.source).resolve()), classifier.encoder)
            self._served[project_id] = classifier

    def _trained_matches(self, project: ProjectRecord, spec: LabelSpec) -> bool:
        version = self.store.get_version(project.current_version or "")
        return version is not None and version.config_hash == spec.config_hash

    def _load(self, project_id: int, version: str, spec: LabelSpec) -> TextClassifier:
        if version == zero_shot_version(project_id, spec):
            return zero_shot_classifier(project_id, self.base_encoder(), spec, self.settings.zero_shot_temperature)
        record = self.store.get_version(version)
        if record is None or not record.artifact_path:
            raise LookupError(f"model version {version!r} has no artifact")
        log.info("loading %s from %s", version, record.artifact_path)
        return TextClassifier.load(Path(record.artifact_path), load_encoder=self.encoder_for)
