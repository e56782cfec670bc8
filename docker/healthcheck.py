"""Container health: ``healthcheck.py serve`` or ``healthcheck.py worker``; exit 0 when healthy, 1 otherwise.

- ``serve``: ``GET http://127.0.0.1:$TAGLOOP_PORT/health`` answers 200 with ``"status": "UP"``.
- ``worker``: an RQ worker of this host (container) is registered in ``$TAGLOOP_REDIS_URL``.
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
    """A worker registered from this host is alive in Redis."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Worker

    try:
        connection = Redis.from_url(os.environ.get("TAGLOOP_REDIS_URL", "redis://127.0.0.1:6379/0"))
        workers = Worker.all(connection=connection)
    except RedisError as exc:
        print(f"healthcheck: Redis: {type(exc).__name__}", file=sys.stderr)
        return False
    host = socket.gethostname()
    if any(w.hostname == host for w in workers):
        return True
    print(f"healthcheck: no RQ worker of host {host!r} among {len(workers)} registered", file=sys.stderr)
    return False


if __name__ == "__main__":
    checks = {"serve": serve_healthy, "worker": worker_healthy}
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if mode not in checks:
        print(f"healthcheck: got mode {mode!r}, expected one of {sorted(checks)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if checks[mode]() else 1)
