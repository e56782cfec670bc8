"""Stored examples → per-control texts and targets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from backend.labelstudio.label_config import ControlSpec, LabelSpec
from backend.labelstudio.texts import control_text
from backend.store.records import Example


@dataclass(frozen=True)
class ControlData:
    """The training rows of one control: texts and, aligned, the chosen labels."""

    control: ControlSpec
    texts: list[str]
    targets: list[list[str]]

    def label_counts(self) -> dict[str, int]:
        """How often each label occurs (multi-label: per label; the empty set counts as '')."""
        counts: Counter[str] = Counter()
        for t in self.targets:
            counts.update(t or [""])
        return dict(counts)


def control_data(spec: LabelSpec, examples: list[Example], *, max_chars: int) -> dict[str, ControlData]:
    """Per control: rows whose annotation gives that control a label (multi-label: absent means none)."""
    out: dict[str, ControlData] = {}
    for control in spec.controls:
        texts: list[str] = []
        targets: list[list[str]] = []
        for ex in examples:
            labels = [c for c in ex.choices.get(control.name, []) if c in control.labels]
            if not control.multi_label and len(labels) != 1:
                continue
            if control.value_key not in ex.data:
                continue
            texts.append(control_text(control, ex.data, task_ref=f"task {ex.task_id}", max_chars=max_chars))
            targets.append(labels)
        out[control.name] = ControlData(control, texts, targets)
    return out
