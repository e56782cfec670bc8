"""Moderation review: queues of texts for moderators, thresholds, drift and slice audits.

Pure modules (importable without a database): ``moderation`` (harmful classes, flags), ``queues`` (routing and
ordering), ``thresholds`` (flag threshold chooser), ``drift`` (PSI), ``slices`` (per-term rates), ``crossval``
(out-of-fold probabilities), ``records``. Glue that uses ``Services``: ``routing`` (webhook, /predict, scans),
``training`` (after-training metrics), ``verdicts``, ``feedback``, ``labelstudio`` (review projects),
``job`` (the ``review`` job), ``status`` and ``audit``. Only the pure names are exported here, so the store
can import ``records`` without pulling in the glue.
"""

from backend.review.drift import DriftReport, drift_report, psi, psi_band
from backend.review.moderation import DEFAULT_THRESHOLD, Moderation, harmful_labels, moderation_control, moderation_for
from backend.review.queues import (
    DEFAULT_ORDER,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    LABEL_ERROR,
    LOW_CONFIDENCE,
    QUEUES,
    Route,
    label_error,
    near_threshold,
    order_items,
    route_disagreement,
)
from backend.review.slices import slice_rates
from backend.review.thresholds import ThresholdChoice, choose_threshold
from backend.store.records import ModeratorLabelRecord, NewItem, ReviewItemRecord, ReviewProjectRecord

__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_THRESHOLD",
    "FALSE_NEGATIVE",
    "FALSE_POSITIVE",
    "LABEL_ERROR",
    "LOW_CONFIDENCE",
    "QUEUES",
    "DriftReport",
    "Moderation",
    "ModeratorLabelRecord",
    "NewItem",
    "ReviewItemRecord",
    "ReviewProjectRecord",
    "Route",
    "ThresholdChoice",
    "choose_threshold",
    "drift_report",
    "harmful_labels",
    "label_error",
    "moderation_control",
    "moderation_for",
    "near_threshold",
    "order_items",
    "psi",
    "psi_band",
    "route_disagreement",
    "slice_rates",
]
