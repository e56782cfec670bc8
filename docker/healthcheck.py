"""Container health: ``healthcheck.py serve`` or ``healthcheck.py worker``; exit 0 when healthy, 1 otherwise.

- ``serve``: ``GET http://127.0.0.1:$TAGLOOP_PORT/health`` answers 200 with ``"status": "UP"``.
- ``worker``: a ``tagloop worker`` of this host (container) keeps its presence key ``tagloop-worker:<host>:<pid>``
  in ``$TAGLOOP_REDIS_URL`` (renewed every 5 s, gone 20 s after the process died, removed when it stops).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request


def serve_healthy() -> bool:
    """The web process answers /health."""
    url = f"http://127.0.0.1:{os.environ.get('TAGLOOP_PORT', '9090')}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return response.status == 200 and json.load(response).get("status") == "UP"
    except (OSError, ValueError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return False


def worker_healthy() -> bool:
    """A worker of this host has announced itself in Redis within its presence key's lifetime."""
    from redis import Redis
    from redis.exceptions import RedisError

    url = os.environ.get("TAGLOOP_REDIS_URL", "redis://127.0.0.1:6379/0")
    host = socket.gethostname()
    try:
        connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=4)
        present = [key.decode() for key in connection.scan_iter(match=f"tagloop-worker:{host}:*", count=100)]
    except RedisError as exc:
        print(f"healthcheck: Redis at {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    if present:
        return True
    print(f"healthcheck: no tagloop worker of host {host!r} is present in Redis at {url}", file=sys.stderr)
    return False


if __name__ == "__main__":
    checks = {"serve": serve_healthy, "worker": worker_healthy}
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if mode not in checks:
        print(f"healthcheck: got mode {mode!r}, expected one of {sorted(checks)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if checks[mode]() else 1)
