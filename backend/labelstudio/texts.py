"""The plain text a ``<Choices>`` control classifies, from a task's ``data``: a ``<Text>`` value, the paragraphs of
``<Paragraphs>``, the visible text of ``<HyperText>``; truncated to ``max_chars``."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from backend.errors import UnprocessableRequest
from backend.labelstudio.label_config import ControlSpec


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment (``<HyperText>``), whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", " ", html.unescape(" ".join(parser.parts))).strip()


def control_text(control: ControlSpec, data: dict[str, Any], *, task_ref: str, max_chars: int) -> str:
    """The plain text a control classifies, from a task's ``data``; truncated to ``max_chars``."""
    if control.value_key not in data or data[control.value_key] is None:
        raise UnprocessableRequest(
            f"{task_ref}: data has no {control.value_key!r} field (needed by <{control.object_tag} "
            f"name={control.to_name!r}>); data keys: {sorted(data)[:20]}"
        )
    value = data[control.value_key]
    if control.object_tag == "Paragraphs":
        if not isinstance(value, list):
            raise UnprocessableRequest(f"{task_ref}: {control.value_key!r} must be a list of paragraphs")
        text = "\n".join(str(p.get(control.paragraph_text_key, "")) if isinstance(p, dict) else str(p) for p in value)
    elif isinstance(value, (dict, list)):
        raise UnprocessableRequest(f"{task_ref}: {control.value_key!r} is a {type(value).__name__}, expected text")
    else:
        text = str(value)
        if control.object_tag == "HyperText":
            text = html_to_text(text[: max_chars * 4])
    return text[:max_chars]
