"""Wait until a database or Redis URL accepts TCP connections: ``wait_for.py URL TIMEOUT_S`` (stdlib only).

Exit 0 once connected (or at once for SQLite), 1 after TIMEOUT_S seconds, 2 for an unusable URL. Messages name
the scheme, host and port, never the user's password.
"""

from __future__ import annotations

import socket
import sys
import time
from urllib.parse import urlsplit

DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}


def target(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``url``; None for SQLite (nothing to wait for)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == "sqlite":
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"expected a postgresql:// or redis:// URL with a host, got scheme {scheme!r}")
    return scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme]


def wait(url: str, timeout_s: float) -> int:
    """Poll until connected; the exit code."""
    try:
        where = target(url)
    except ValueError as exc:
        print(f"wait_for: {exc}", file=sys.stderr)
        return 2
    if where is None:
        return 0
    scheme, host, port = where
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                print(f"wait_for: {scheme}://{host}:{port} is reachable", file=sys.stderr)
                return 0
        except OSError as exc:
            error = exc.strerror or type(exc).__name__
        if time.monotonic() >= deadline:
            print(f"wait_for: {scheme}://{host}:{port} not reachable after {timeout_s:g} s: {error}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: wait_for.py URL TIMEOUT_S", file=sys.stderr)
        sys.exit(2)
    sys.exit(wait(sys.argv[1], float(sys.argv[2])))
