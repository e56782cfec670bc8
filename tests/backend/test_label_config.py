"""Label config parsing: every shipped config, multi-control configs and the ones tagloop refuses."""

from __future__ import annotations

import pytest

from backend.errors import UnsupportedLabelConfig
from backend.labelstudio.label_config import parse_label_config
from tests.conftest import CONFIGS, config_xml

SHIPPED = {
    "news_topics": [("topic", False, 4)],
    "support_ticket_triage": [("queue", False, 6)],
    "binary_sentiment": [("sentiment", False, 2)],
    "ticket_tags": [("tags", True, 10)],
    "content_moderation": [("moderation", False, 3)],
    "toxicity_types": [("toxicity", True, 6)],
    "sentiment_and_topic": [("sentiment", False, 3), ("topic", True, 4)],
}


def test_every_shipped_config_is_covered() -> None:
    assert {p.stem for p in CONFIGS.glob("*.xml")} == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_parses(name: str) -> None:
    spec = parse_label_config(config_xml(name))
    assert [(c.name, c.multi_label, len(c.labels)) for c in spec.controls] == SHIPPED[name]
    for c in spec.controls:
        assert c.to_name == "text" and c.value_key == "text" and c.object_tag == "Text"
        assert len(c.hints) == len(c.labels)


def test_toxicity_labels_match_jigsaw() -> None:
    spec = parse_label_config(config_xml("toxicity_types"))
    assert spec.controls[0].labels == ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


def test_hypertext_and_paragraphs_and_ignored_tags() -> None:
    xml = """<View>
      <HyperText name="page" value="$html"/>
      <Choices name="kind" toName="page"><Choice value="a" hint="first"/><Choice value="b"/></Choices>
      <Paragraphs name="chat" value="$dialogue" textKey="utterance"/>
      <Choices name="mood" toName="chat" choice="multiple"><Choice value="calm"/></Choices>
      <Image name="img" value="$image"/>
      <Choices name="photo" toName="img"><Choice value="x"/><Choice value="y"/></Choices>
      <TextArea name="note" toName="page"/>
    </View>"""
    spec = parse_label_config(xml)
    kind, mood = spec.controls
    assert (kind.object_tag, kind.value_key, kind.hints) == ("HyperText", "html", ("first", ""))
    assert (mood.object_tag, mood.value_key, mood.paragraph_text_key, mood.multi_label) == (
        "Paragraphs",
        "dialogue",
        "utterance",
        True,
    )
    assert any("photo" in note for note in spec.ignored)
    assert any("TextArea" in note for note in spec.ignored)
    assert spec.control("kind") is kind
    with pytest.raises(KeyError, match="known"):
        spec.control("nope")


BAD = {
    "empty": ("", "empty"),
    "not xml": ("<View><Text", "not well-formed"),
    "no choices": ('<View><Text name="t" value="$text"/></View>', "no <Choices> bound to a text object"),
    "image only": (
        '<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="a"/>'
        '<Choice value="b"/></Choices></View>',
        "<Image>",
    ),
    "duplicate names": (
        '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/>'
        '</Choices><Choices name="c" toName="t"><Choice value="x"/><Choice value="y"/></Choices></View>',
        "duplicate tag names \\['c'\\]",
    ),
    "duplicate choices": (
        '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="a"/>'
        "</Choices></View>",
        "duplicate choice values \\['a'\\]",
    ),
    "one single choice": (
        '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/></Choices></View>',
        "needs at least 2",
    ),
    "external entity": (
        '<!DOCTYPE v [<!ENTITY e SYSTEM "file:///etc/passwd">]><View><Text name="t" value="&e;"/></View>',
        "forbidden XML",
    ),
    "wrong root": ('<Foo><Text name="t" value="$text"/></Foo>', "expected <View>"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_unservable_configs_are_refused_with_reason(case: str) -> None:
    xml, reason = BAD[case]
    with pytest.raises(UnsupportedLabelConfig, match=reason):
        parse_label_config(xml)
