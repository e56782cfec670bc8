"""Training yields to serving while requests are being served on this machine.

``training_priority=idle`` gives serving the CPU the moment a request needs it, but not the caches: a SetFit
step streams hundreds of MB through the shared L3 cache, and each /predict then finds the served body's
weights evicted. On this 2-core machine that alone raised single-text p50 from 8 to 11-17 ms while training
ran. So the web process marks that it served (``ServingActivity.mark`` on /predict and /webhook: the mtime of a
file in the data dir, touched at most every ``MARK_EVERY_S``), and the training, before every transformer layer's
forward and backward pass (``pause_points``: about 12 times per SetFit step of MiniLM; a whole step takes a second
or more here, too long a stretch to hold requests off), pauses while a request was served within the last
``training_yield_ms`` (``YieldToServing``). The pause is bounded by ``training_yield_share``: at the default 0.95
a pause never exceeds 19 times the work since the previous one, so under sustained traffic the training still runs
5 % of the time. The bound binds only when requests come faster than about one per ``training_yield_ms``: at an
annotator's pace (a /predict and a submit every second or so) the training runs most of the time. Why 0.95: any
stretch of training during a burst of submits lengthens the acks it overlaps, even at idle priority; at 50 labels/s
the ack p99 was 22-28 ms at 0.75 and 0.9, 19-20 ms at 0.95 (``docs/results/predict-ag_news.txt``, run 21).

A worker on another machine (scaled-out mode, its own data dir) never sees the file and never pauses.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
ACTIVITY_FILE = "serving-activity"
MARK_EVERY_S = 0.01
"""Least time between two touches of the activity file (so a request costs a clock read, not a syscall)."""


class ServingActivity:
    """The web process's "I just served a request" mark, readable by training in any local process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._marked = float("-inf")

    def mark(self) -> None:
        """Note that a request is being served (touches the file at most every ``MARK_EVERY_S``)."""
        now = time.monotonic()
        if now - self._marked < MARK_EVERY_S:
            return
        self._marked = now
        try:
            os.utime(self.path)
        except FileNotFoundError:
            self.path.touch()
        except OSError as exc:  # a read-only data dir: serving goes on, training just does not pause
            log.debug("cannot mark serving activity in %s: %r", self.path, exc)

    def idle_for(self) -> float:
        """Seconds since a request was last marked (infinite when none ever was)."""
        try:
            return max(0.0, time.time() - self.path.stat().st_mtime)
        except OSError:
            return float("inf")


class YieldToServing:
    """Called between training steps: pause while serving is active, within a share of the training time."""

    def __init__(
        self,
        activity: ServingActivity,
        *,
        quiet_s: float,
        max_share: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quiet_s < 0 or not 0 <= max_share < 1:
            raise ValueError(f"quiet_s must be >= 0 and max_share in [0, 1), got {quiet_s} and {max_share}")
        self.activity = activity
        self.quiet_s = quiet_s
        self.max_share = max_share
        self.sleep = sleep
        self.clock = clock
        self.paused_s = 0.0
        """Seconds paused so far."""
        self._since = clock()

    def __call__(self) -> float:
        """Pause until serving has been quiet for ``quiet_s`` or the budget of this step is spent; the seconds
        paused. The budget is the time since the previous call times ``max_share / (1 - max_share)``."""
        if self.quiet_s <= 0 or self.max_share <= 0:
            return 0.0
        start = self.clock()
        budget = (start - self._since) * self.max_share / (1 - self.max_share)
        while (idle := self.activity.idle_for()) < self.quiet_s:
            left = budget - (self.clock() - start)
            if left <= 0:
                break
            self.sleep(min(left, self.quiet_s - idle, self.quiet_s / 4))
        paused = self.clock() - start
        self.paused_s += paused
        self._since = self.clock()
        return paused


Pause = Callable[[], float]
"""A ``YieldToServing`` (or any callable called between units of training work)."""


@contextmanager
def pause_points(model: Any, pause: Pause | None) -> Iterator[int]:
    """Call ``pause`` before the forward and the backward pass of each layer of ``model``'s layer stack (its
    largest ``torch.nn.ModuleList``: BERT, DistilBERT and RoBERTa layers alike); yields how many layers are
    hooked (0 without ``pause`` or without a layer stack). The hooks are removed on exit."""
    if pause is None:
        yield 0
        return
    import torch

    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    layers: Any = max(stacks, key=len) if stacks else []

    def hook(*_: Any) -> None:  # a hook's non-None return value would replace the layer's inputs or gradients
        pause()

    handles = []
    for layer in layers:
        handles.append(layer.register_forward_pre_hook(hook))
        handles.append(layer.register_full_backward_pre_hook(hook))
    try:
        yield len(layers)
    finally:
        for handle in handles:
            handle.remove()
