"""How a queued job reaches a worker at once (the database is polled every ``worker_poll_s`` anyway, so a lost
wake-up costs at most that): an event in the same process, a pipe to a supervised worker process, or a Redis list
that scaled-out ``tagloop worker`` processes block on. Entry points choose one and inject it into the services."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Wakeup(Protocol):
    """The sending side: tell workers that a job was queued."""

    def wake(self) -> None: ...

    def close(self) -> None: ...


class Waiter(Protocol):
    """The receiving side: block until woken or ``timeout`` seconds have passed."""

    def wait(self, timeout: float) -> None: ...


class NoWakeup:
    """For processes that only queue jobs for someone else's worker to find by polling (CLI commands)."""

    def wake(self) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class CallbackWakeup:
    """Wake by calling a function (a worker process nudging its own pool)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def wake(self) -> None:
        """Call it."""
        self._callback()

    def close(self) -> None:
        """Nothing."""


class EventWakeup:
    """Same process: a ``threading.Event`` (the in-process worker's threads wait on it)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wake(self) -> None:
        """Set the event."""
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Wait for the event, then clear it."""
        self._event.wait(timeout)
        self._event.clear()

    def close(self) -> None:
        """Wake any waiter one last time."""
        self._event.set()


PRESENCE_PREFIX = "tagloop-worker:"
"""A live ``tagloop worker`` keeps ``tagloop-worker:<host>:<pid>`` in Redis (``RedisWakeup.announce``); the container
health check (``docker/healthcheck.py worker``) looks for one of its host."""


def redis_key(database_url: str) -> str:
    """The Redis list of one store's wake-ups (stores sharing a Redis database never wake each other)."""
    return "tagloop-wake-" + hashlib.sha256(database_url.encode()).hexdigest()[:10]


class RedisWakeup:
    """Scaled-out mode: web processes push to a Redis list, each ``tagloop worker`` blocks on it (BLPOP)."""

    def __init__(self, redis_url: str, database_url: str) -> None:
        import redis

        self.redis_url = redis_url
        self.key = redis_key(database_url)
        self._redis: Any = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=30)

    def wake(self) -> None:
        """Push one wake-up (the list is trimmed: a thousand queued wake-ups are no better than a few)."""
        try:
            pipe = self._redis.pipeline()
            pipe.lpush(self.key, b"1")
            pipe.ltrim(self.key, 0, 15)
            pipe.execute()
        except Exception as exc:  # the job is safe in the database; workers poll it
            log.warning("could not wake workers through Redis at %s: %s", self.redis_url, exc)

    def wait(self, timeout: float) -> None:
        """Block until a wake-up arrives or ``timeout`` s passed (a Redis failure waits out the timeout)."""
        try:
            self._redis.blpop([self.key], timeout=max(1, round(timeout)))
        except Exception as exc:
            log.warning("waiting on Redis at %s failed (%s); polling the database", self.redis_url, exc)
            threading.Event().wait(timeout)

    @property
    def presence_key(self) -> str:
        """This process's presence key."""
        return f"{PRESENCE_PREFIX}{socket.gethostname()}:{os.getpid()}"

    def announce(self, ttl_s: float) -> None:
        """Say this worker is alive for the next ``ttl_s`` seconds (a failure is logged: the jobs do not need it)."""
        try:
            self._redis.set(self.presence_key, f"{time.time():.0f}", ex=max(1, round(ttl_s)))
        except Exception as exc:
            log.warning("could not announce this worker in Redis at %s: %s", self.redis_url, exc)

    def withdraw(self) -> None:
        """This worker is stopping: remove its presence key."""
        try:
            self._redis.delete(self.presence_key)
        except Exception as exc:
            log.warning("could not withdraw this worker from Redis at %s: %s", self.redis_url, exc)

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


class PipeWakeup:
    """A web process's wake-up of the worker process it supervises: one byte down the worker's stdin."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._lock = threading.Lock()

    def attach(self, fd: int | None) -> None:
        """Write to ``fd`` from now on (the supervisor calls this whenever it (re)starts the worker)."""
        with self._lock:
            self._fd = fd

    def wake(self) -> None:
        """Write one byte; a full pipe or a worker being restarted is fine (it polls on start)."""
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, b"1")
            except (BlockingIOError, BrokenPipeError, OSError) as exc:
                log.debug("wake-up of the worker process not delivered: %r", exc)

    def close(self) -> None:
        """Stop writing."""
        self.attach(None)


class PipeWaiter:
    """The worker process's side of ``PipeWakeup``: its stdin."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.closed = threading.Event()
        """Set when the supervisor's end closed (it is gone): the worker should stop."""

    def wait(self, timeout: float) -> None:
        """Wait for bytes on the pipe (drained) or ``timeout``."""
        import select

        if self.closed.is_set():
            self.closed.wait(timeout)
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            data = os.read(self.fd, 4096)
            if not data:
                self.closed.set()
