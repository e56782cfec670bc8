"""``WriteBehind``: writes of the serving path leave the request; one thread performs what accumulated.

Used for rows that save work or keep statistics (new cached embeddings, what /predict records), never for
acknowledged data: annotations are committed before the webhook answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

log = logging.getLogger(__name__)
IDLE_AFTER = 20
"""Write intervals without a ``put`` after which the thread stops looking every interval and waits to be woken.

While requests come, ``put`` does not wake the thread (it looks for new rows every ``interval_s``): waking it
cost the request that did it time on this 2-vCPU machine (the waker's futex call, then the woken thread taking
the GIL back), measured with py-spy on /predict at 20 calls/s."""


class WriteBehind:
    """Coalesce writes of many requests: callers hand ``{key: {id: value}}`` over and return at once; one thread
    merges what accumulated (per key, later ids replacing earlier ones) and performs it as one ``write(batch)``.

    What was handed over is written after at most one write cycle (``flush`` waits for it). A failed write is
    logged and dropped: use it only for records that save work or keep statistics, never for acknowledged data.
    """

    def __init__(
        self,
        write: Callable[[dict[Hashable, dict[Any, Any]]], None],
        *,
        name: str = "write-behind",
        interval_s: float = 0.0,
    ) -> None:
        """``interval_s``: least time between the starts of two writes (``flush`` and ``close`` skip the wait), so a
        stream of requests is written every ``interval_s`` in one transaction instead of once per request."""
        self.write = write
        self.name = name
        self.interval_s = interval_s
        self._last_write = float("-inf")
        self._hurry = 0
        self._pending: dict[Hashable, dict[Any, Any]] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._idle = False
        """The thread waits without a deadline (nothing came for ``IDLE_AFTER`` intervals): a ``put`` must wake it."""
        self._thread: threading.Thread | None = None

    def __call__(self, key: Hashable, values: Mapping[Any, Any]) -> None:
        """Queue ``values`` under ``key`` (``put({key: values})``)."""
        self.put({key: values})

    def put(self, items: Mapping[Hashable, Mapping[Any, Any]]) -> None:
        """Queue every key's values at once (one write cycle never sees part of them); written synchronously
        after ``close``."""
        with self._cond:
            if self._closed:
                self.write({key: dict(values) for key, values in items.items()})
                return
            for key, values in items.items():
                self._pending.setdefault(key, {}).update(values)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._idle or not self.interval_s:  # else the thread looks again within interval_s
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()
            try:
                while self._pending or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._hurry -= 1
        return True

    def close(self) -> None:
        """Write what is queued, stop the thread; later calls write synchronously."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                quiet_since = time.monotonic()
                while not self._pending and not self._closed:
                    if self.interval_s and time.monotonic() - quiet_since < IDLE_AFTER * self.interval_s:
                        self._cond.wait(self.interval_s)  # poll while requests come: they need not wake us
                        continue
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                while self._pending and not (self._closed or self._hurry):  # let a stream of requests accumulate
                    left = self._last_write + self.interval_s - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if not self._pending:
                    return
                batch, self._pending, self._busy = self._pending, {}, True
                self._last_write = time.monotonic()
            try:
                self.write(batch)
            except Exception as exc:  # logged and dropped (see the class docstring)
                rows = sum(len(values) for values in batch.values())
                log.warning("%s: writing %d queued rows failed: %r", self.name, rows, exc)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
