"""Fixtures of the browser tests: Chromium (installed if absent, else the tests skip), screenshots kept under
``test-artifacts/browser/<test name>/``."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.browser.chromium import Chromium, DriverError, browser_toolchain_problem
from tools.harness import REPO

ARTIFACTS = REPO / "test-artifacts" / "browser"
FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker."""
    config.addinivalue_line("markers", "browser: drives Chromium through Label Studio's web UI")


@pytest.fixture(scope="session")
def browser_toolchain() -> None:
    """Chromium and playwright-core, installed here if absent; the browser tests skip only if that fails."""
    problem = browser_toolchain_problem()
    if problem is not None:
        pytest.skip(f"Chromium cannot run here: {problem}")


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/browser/<test name>/``, emptied first (kept after the test, pass or fail)."""
    path: Path = ARTIFACTS / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body failed (for the failure screenshots)."""
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture
def chromium(
    browser_toolchain: None, artifacts: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Chromium]:
    """A headless Chromium with an empty profile; its driver's log goes to the artifacts, and a screenshot of each
    open page too if the test fails."""
    with Chromium(tmp_path / "chromium-profile", artifacts / "driver.log") as browser:
        yield browser
        if request.node.stash.get(FAILED, False):
            for page in browser.call("pages"):
                with contextlib.suppress(DriverError):
                    browser.call("screenshot", page=page, path=str(artifacts / f"failure-{page}.png"))
