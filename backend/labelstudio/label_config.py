"""Parse a Label Studio labeling config into the heads tagloop serves.

This is the only module that reads Label Studio XML. It parses with defusedxml (no external entities, no
DTDs) to check structure, then with label-studio-sdk's ``LabelInterface`` for the semantics.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from label_studio_sdk.label_interface.interface import LabelInterface

from backend.errors import UnsupportedLabelConfig

TEXT_OBJECTS = ("Text", "HyperText", "Paragraphs")
MAX_CONFIG_CHARS = 1_000_000


@dataclass(frozen=True)
class ControlSpec:
    """One ``<Choices>`` control bound to a text object: one classification head."""

    name: str
    """``from_name`` in results."""
    to_name: str
    object_tag: str
    value_key: str
    """Key of the task's ``data`` that holds the text (``text`` for ``value="$text"``)."""
    labels: tuple[str, ...]
    """Choice values in config order; column j of a head's probabilities is labels[j]."""
    hints: tuple[str, ...]
    """Per label: its ``hint`` attribute, or "" (used by the zero-shot model)."""
    multi_label: bool
    paragraph_text_key: str = "text"
    harmful: tuple[str, ...] = ()
    """Labels marked harmful in the config (``harmful="A,B"`` on ``<Choices>`` or ``harmful="true"`` on a
    ``<Choice>``), in label order: the classes that count as a flag for moderation review."""


@dataclass(frozen=True)
class LabelSpec:
    """The servable part of a labeling config."""

    controls: tuple[ControlSpec, ...]
    config_hash: str
    ignored: tuple[str, ...] = ()
    """Human-readable notes on tags in the config that tagloop does not serve."""

    def control(self, name: str) -> ControlSpec:
        """The control named ``name``; raises ``KeyError`` listing the known names."""
        for c in self.controls:
            if c.name == name:
                return c
        raise KeyError(f"no <Choices> named {name!r}; known: {[c.name for c in self.controls]}")


def config_hash(xml: str) -> str:
    """Stable short hash of a config's text (whitespace-insensitive)."""
    return hashlib.sha256(" ".join(xml.split()).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=128)
def parse_label_config(xml: str) -> LabelSpec:
    """Return the ``<Choices>`` heads of ``xml``; raise ``UnsupportedLabelConfig`` naming what was found."""
    if not isinstance(xml, str) or not xml.strip():
        raise UnsupportedLabelConfig("label_config is empty; expected a <View> with <Choices> on <Text>")
    if len(xml) > MAX_CONFIG_CHARS:
        raise UnsupportedLabelConfig(f"label_config has {len(xml)} characters, the limit is {MAX_CONFIG_CHARS}")
    _check_structure(xml)
    try:
        interface = LabelInterface(xml)
    except Exception as exc:  # the SDK raises several unrelated types for bad XML
        raise UnsupportedLabelConfig(f"label_config could not be parsed: {exc}") from None
    controls: list[ControlSpec] = []
    ignored: list[str] = []
    for control in interface.controls:
        if control.tag != "Choices":
            ignored.append(f"<{control.tag} name={control.name!r}> (only <Choices> is predicted)")
            continue
        spec = _control_spec(control, ignored)
        if spec is not None:
            controls.append(spec)
    if not controls:
        found = sorted({f"<{c.tag}>" for c in interface.controls} | {f"<{o.tag}>" for o in interface.objects})
        raise UnsupportedLabelConfig(
            f"no <Choices> bound to a text object; found {found or 'no tags'}; "
            f"supported: <Choices> on one of {['<' + t + '>' for t in TEXT_OBJECTS]}"
        )
    return LabelSpec(controls=tuple(controls), config_hash=config_hash(xml), ignored=tuple(ignored))


def _check_structure(xml: str) -> None:
    try:
        root = ElementTree.fromstring(xml, forbid_dtd=True)  # no DTD at all: LS configs never need one
    except DefusedXmlException as exc:
        raise UnsupportedLabelConfig(f"label_config uses forbidden XML features: {exc!r}") from None
    except ElementTree.ParseError as exc:
        raise UnsupportedLabelConfig(f"label_config is not well-formed XML: {exc}") from None
    if root.tag != "View":
        raise UnsupportedLabelConfig(f"label_config root is <{root.tag}>, expected <View>")
    names = Counter(el.get("name") for el in root.iter() if el.tag != "Choice" and el.get("name"))
    dupes = sorted(n for n, k in names.items() if n is not None and k > 1)
    if dupes:
        raise UnsupportedLabelConfig(f"label_config has duplicate tag names {dupes}; each name must be unique")
    for choices in root.iter("Choices"):
        values = Counter(el.get("value") for el in choices.iter("Choice"))
        repeated = sorted(str(v) for v, k in values.items() if k > 1)
        if repeated:
            raise UnsupportedLabelConfig(
                f"<Choices name={choices.get('name')!r}> has duplicate choice values {repeated}"
            )


def _control_spec(control: object, ignored: list[str]) -> ControlSpec | None:
    name = str(getattr(control, "name", ""))
    objects = list(getattr(control, "objects", []))
    if len(objects) != 1 or objects[0].tag not in TEXT_OBJECTS:
        tags = [f"<{o.tag}>" for o in objects]
        ignored.append(f"<Choices name={name!r}> bound to {tags} (supported: {list(TEXT_OBJECTS)})")
        return None
    obj = objects[0]
    value = str(obj.value or "")
    if not value.startswith("$") or len(value) < 2:
        ignored.append(f"<Choices name={name!r}>: object {obj.name!r} has value={value!r}, expected '$key'")
        return None
    labels = tuple(str(v) for v in getattr(control, "labels", []))
    attrs = getattr(control, "attr", {}) or {}
    multi = str(attrs.get("choice", "single")).lower() == "multiple"
    _check_labels(name, labels, multi)
    label_tags = getattr(control, "labels_attrs", {}) or {}
    hints = tuple(str(getattr(label_tags.get(v), "attr", {}).get("hint", "") or "") for v in labels)
    harmful = _harmful_labels(name, labels, str(attrs.get("harmful", "") or ""), label_tags)
    return ControlSpec(
        name=name,
        to_name=str(obj.name),
        object_tag=str(obj.tag),
        value_key=value[1:],
        labels=labels,
        hints=hints,
        multi_label=multi,
        paragraph_text_key=str((getattr(obj, "attr", {}) or {}).get("textKey", "text")),
        harmful=harmful,
    )


def _harmful_labels(name: str, labels: tuple[str, ...], listed: str, label_tags: dict) -> tuple[str, ...]:
    """Labels named by ``harmful="A,B"`` on the ``<Choices>`` plus those with ``harmful="true"`` on the ``<Choice>``."""
    named = {v.strip() for v in listed.split(",") if v.strip()}
    unknown = sorted(named - set(labels))
    if unknown:
        raise UnsupportedLabelConfig(
            f"<Choices name={name!r}> harmful={listed!r} names {unknown}, which are not its choices {list(labels)}"
        )
    marked = {v for v in labels if str(getattr(label_tags.get(v), "attr", {}).get("harmful", "")).lower() == "true"}
    return tuple(v for v in labels if v in named | marked)


def _check_labels(name: str, labels: tuple[str, ...], multi: bool) -> None:
    needed = 1 if multi else 2
    if len(labels) < needed:
        kind = "multiple" if multi else "single"
        raise UnsupportedLabelConfig(
            f"<Choices name={name!r}> has {len(labels)} choice(s); choice={kind!r} needs at least {needed}"
        )
