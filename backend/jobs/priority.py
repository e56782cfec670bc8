"""CPU priority of training: background work that yields the cores to serving the moment a request needs them.

On two cores a SetFit or transformer training occupies both; at normal priority every /predict then waits for
its share of the CPU. ``lower_priority`` demotes the calling thread, and with it every thread it starts later
(torch's OpenMP pool, the tokenizer's threads), so the training inherits it:

- ``idle``: Linux ``SCHED_IDLE`` (runs only on CPU time nothing else wants; a waking request preempts it at
  once) and nice 19 where ``SCHED_IDLE`` is refused;
- ``low``: nice 19 (a smaller share, still some CPU under load);
- ``normal``: unchanged.

Unprivileged processes may lower their own priority (never raise it back), so this needs no capability.
"""

from __future__ import annotations

import logging
import os
import threading

from backend.config import PRIORITIES

log = logging.getLogger(__name__)
NICE_LOW = 19


def lower_priority(priority: str, *, whole_process: bool = False) -> str:
    """Apply ``priority`` to the calling thread (with ``whole_process``: to every thread of the process, e.g. the
    BLAS pool numpy started at import); returns what was applied to the calling thread.

    Raises:
        ValueError: ``priority`` is not one of ``PRIORITIES``.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"training priority: got {priority!r}, expected one of {list(PRIORITIES)}")
    if priority == "normal":
        return "normal"
    if whole_process:
        for tid in _process_threads():
            if tid != threading.get_native_id():
                _lower(tid, priority)
    return _lower(threading.get_native_id(), priority)


def _process_threads() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # no procfs: the calling thread only
        return []


def _lower(tid: int, priority: str) -> str:
    """Linux: nice and the scheduling policy are per thread."""
    applied = "normal"
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(NICE_LOW, os.getpriority(os.PRIO_PROCESS, tid)))
        applied = "low"
        if priority == "idle":
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            applied = "idle"
    except (OSError, AttributeError) as exc:  # not Linux, or a sandbox refusing it: training still runs
        log.warning("could not lower the training priority to %s (applied: %s): %r", priority, applied, exc)
    return applied


def current_priority() -> str:
    """The calling thread's priority as ``lower_priority`` names it."""
    tid = threading.get_native_id()
    try:
        if os.sched_getscheduler(tid) == os.SCHED_IDLE:
            return "idle"
        return "low" if os.getpriority(os.PRIO_PROCESS, tid) >= NICE_LOW else "normal"
    except (OSError, AttributeError):
        return "normal"
