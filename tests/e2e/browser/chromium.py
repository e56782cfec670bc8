"""Python side of ``driver.mjs``: Debian's Chromium driven by npm ``playwright-core`` in a node subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = HERE / "driver.mjs"
PLAYWRIGHT = HERE / "node_modules" / "playwright-core" / "package.json"


def browser_toolchain_problem() -> str | None:
    """Install what the browser tests need if it is absent: Debian's
    ``chromium`` with apt-get, ``playwright-core`` with npm. Returns why Chromium cannot run, or None."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return f"{CHROMIUM} is absent and apt-get cannot install it here (needs root and apt-get)"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
            if done.returncode != 0:
                return f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip()[-500:]}"
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed to run playwright-core (apt-get install nodejs npm)"
    if not PLAYWRIGHT.exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci in {HERE} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return None


class DriverError(RuntimeError):
    """The driver answered a command with an error, or did not answer in time."""


class Chromium:
    """One headless Chromium with a fresh profile; ``call`` sends a ``driver.mjs`` command and returns its result."""

    def __init__(self, profile_dir: Path, log_path: Path, *, width: int = 1400, height: int = 900) -> None:
        with log_path.open("a") as log:
            self._proc = subprocess.Popen(
                ["node", str(DRIVER)],
                cwd=HERE,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # node and every Chromium process it starts share one process group
            )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next_id = 0
        self._seen_responses = 0
        self.version = self.call(
            "launch", executablePath=str(CHROMIUM), userDataDir=str(profile_dir), width=width, height=height
        )["version"]

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._answers.put(line)

    def call(self, cmd: str, timeout: float = 120.0, **args: Any) -> Any:
        """Run one command; ``DriverError`` with the driver's message if it fails."""
        assert self._proc.stdin is not None
        self._next_id += 1
        self._proc.stdin.write(json.dumps({"id": self._next_id, "cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        try:
            answer = json.loads(self._answers.get(timeout=timeout))
        except queue.Empty:
            raise DriverError(f"{cmd}: no answer within {timeout:.0f} s") from None
        if not answer["ok"]:
            raise DriverError(f"{cmd} {args}: {answer['error']}")
        return answer["result"]

    def new_responses(self) -> list[dict[str, Any]]:
        """Label Studio task API responses recorded since the last call (``{url, method, status, body}``)."""
        got = self.call("responses", since=self._seen_responses)
        self._seen_responses = got["next"]
        return list(got["items"])

    def close(self) -> None:
        """Close the browser and end the node process group."""
        if self._proc.poll() is None:
            with contextlib.suppress(DriverError, BrokenPipeError, OSError):
                self.call("close", timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)  # Chromium helpers, if any outlived the browser
        self._proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
