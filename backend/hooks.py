"""The events the core announces and the questions it asks, for optional features (plug-ins) to subscribe to.

The core (store, models, training, Label Studio protocol, jobs) never imports a plug-in: a plug-in's ``install``
appends its functions here and registers its job kinds (``backend.bootstrap`` installs the configured plug-ins).
Moderation review (``backend.review.plugin``) is one. Each hook is a list of plain functions, called in order:

- ``event_received(services, event)``: a webhook event before the core handles it; the first non-None answer
  is the webhook's answer (the review plug-in takes moderators' verdicts from its review projects this way);
- ``annotation_stored(services, project, spec, annotation)``: a new or changed annotation was stored (same unit
  of work); what it returns is added to the webhook's answer under the plug-in's name;
- ``prediction_served(services, project, spec, probas, version)``: /predict answered; what it returns is added to
  the bookkeeping written behind the response (e.g. the scores PSI compares);
- ``version_trained(services, project, spec, classifier)``: a new version's metrics are being recorded; what it
  returns is merged into them;
- ``training_labels(services, project_id, examples)``: the training examples, transformed (e.g. moderators'
  verdicts override annotators' labels);
- ``project_status(services, project_id)``: extra sections of the status document;
- ``upkeep(services, project)``: an idle worker's periodic scheduling (e.g. the review scan);
- ``metric_families(services)``: extra Prometheus families for ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from backend.labelstudio.label_config import LabelSpec
    from backend.labelstudio.payloads import WebhookEvent
    from backend.services import Services
    from backend.store.records import AnnotationRecord, Example, ProjectRecord

EventHook = Callable[["Services", "WebhookEvent"], "dict[str, Any] | None"]
AnnotationHook = Callable[["Services", "ProjectRecord", "LabelSpec", "AnnotationRecord"], "dict[str, Any] | None"]
PredictionHook = Callable[["Services", "ProjectRecord", "LabelSpec", "Mapping[str, np.ndarray]", str], "list[float]"]
VersionHook = Callable[["Services", "ProjectRecord", "LabelSpec", Any], "dict[str, Any]"]
LabelsHook = Callable[["Services", int, "list[Example]"], "list[Example]"]
StatusHook = Callable[["Services", int], "dict[str, Any]"]
UpkeepHook = Callable[["Services", "ProjectRecord"], object]
MetricsHook = Callable[["Services"], Iterable[Any]]


@dataclass
class Hooks:
    """The subscribers of each hook (see the module docstring), filled by plug-ins when the services are built."""

    event_received: list[EventHook] = field(default_factory=list)
    annotation_stored: list[tuple[str, AnnotationHook]] = field(default_factory=list)
    prediction_served: list[PredictionHook] = field(default_factory=list)
    version_trained: list[VersionHook] = field(default_factory=list)
    training_labels: list[LabelsHook] = field(default_factory=list)
    project_status: list[StatusHook] = field(default_factory=list)
    upkeep: list[UpkeepHook] = field(default_factory=list)
    metric_families: list[MetricsHook] = field(default_factory=list)
