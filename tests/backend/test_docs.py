"""Docs that match the code: the README stays a front door, and the settings table is the code's own."""

from __future__ import annotations

import re

from backend.config import settings_table
from tests.conftest import REPO

README = REPO / "README.md"


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; keep it under 200 (details go to docs/)"


def test_every_relative_link_of_the_readme_and_docs_exists() -> None:
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_settings_table_in_the_docs_is_the_codes() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    assert settings_table() in text, "docs/operations.md: paste `tagloop settings --markdown` again"
