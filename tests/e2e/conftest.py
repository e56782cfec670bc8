"""Fixtures for end-to-end tests against a real Label Studio; every test here is marked ``e2e``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from label_studio_sdk import LabelStudio

from tools.harness import LabelStudioServer, TagloopServer, ensure_label_studio, ls_venv_path

HERE = Path(__file__).resolve().parent
LS_VENV = ls_venv_path(os.environ.get("TAGLOOP_LS_VENV", ""))
"""Label Studio's venv: ``$TAGLOOP_LS_VENV``, default ``.ls-venv`` in the repo (installed there when absent)."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``e2e`` marker (in case the ini file does not)."""
    config.addinivalue_line("markers", "e2e: starts a real Label Studio server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under this directory ``e2e``."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """One running Label Studio for the session (its venv comes from ``$TAGLOOP_LS_VENV``, default ``.ls-venv``)."""
    executable = ensure_label_studio(LS_VENV)  # raises, never skips: the README's test command installs it
    with LabelStudioServer(executable, tmp_path_factory.mktemp("label-studio")) as server:
        yield server


@pytest.fixture
def ls_client(label_studio: LabelStudioServer) -> LabelStudio:
    """SDK client for the session's Label Studio."""
    return label_studio.client()


@pytest.fixture
def moderation_tagloop(tmp_path: Path) -> Iterator[TagloopServer]:
    """A tagloop server for the moderation tests (fast tier only, torch serving)."""
    from tests.e2e.moderation import TAGLOOP_ENV

    env = {"TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"), **TAGLOOP_ENV}
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server
