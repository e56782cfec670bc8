"""CPU placement: serving and training on disjoint cores when there are more than two.

On two cores there is nothing to split: the worker process trains at idle priority and pauses while requests are
served (``training.priority``, ``training.yielding``). With more cores, ``serve_cpus`` / ``train_cpus`` (CPU lists
such as ``0-1`` or ``0,2``; empty: automatic) pin the web process and the worker process to disjoint sets, so a
training step never shares a core (or its caches) with a request: automatic gives serving the first half of the
cores (at least one) and training the rest. Applied with ``sched_setaffinity`` to every thread of the process.
"""

from __future__ import annotations

import logging
import os

from backend.config import Settings
from backend.errors import SettingsError

log = logging.getLogger(__name__)


def parse_cpus(spec: str) -> frozenset[int]:
    """``"0-2,5"`` → {0, 1, 2, 5}; ``SettingsError`` naming the bad part."""
    cpus: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise SettingsError(f"CPU list: got {part!r} in {spec!r}, expected numbers like '0-3,6'") from None
        if first < 0 or last < first:
            raise SettingsError(f"CPU list: got {part!r} in {spec!r}, expected a range 'low-high' with low <= high")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpus(cpus: frozenset[int]) -> str:
    """{0, 1, 2, 5} → ``"0,1,2,5"`` (what ``parse_cpus`` reads)."""
    return ",".join(str(c) for c in sorted(cpus))


def available_cpus() -> frozenset[int]:
    """The CPUs this process may run on."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return frozenset(range(os.cpu_count() or 1))


def plan(settings: Settings, cpus: frozenset[int] | None = None) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(serving CPUs, training CPUs): the settings', or automatic; (None, None) leaves placement to the kernel."""
    cpus = available_cpus() if cpus is None else cpus
    serve = parse_cpus(settings.serve_cpus) if settings.serve_cpus else None
    train = parse_cpus(settings.train_cpus) if settings.train_cpus else None
    if serve is None and train is None:
        if len(cpus) <= 2:
            return None, None
        ordered = sorted(cpus)
        half = max(1, len(ordered) // 2)
        return frozenset(ordered[:half]), frozenset(ordered[half:])
    for name, chosen in (("serve_cpus", serve), ("train_cpus", train)):
        if chosen is not None and not chosen <= cpus:
            raise SettingsError(
                f"{name}: got CPUs {sorted(chosen - cpus)} this process may not use; it has {sorted(cpus)}"
            )
    return serve, train


def pin(cpus: frozenset[int] | None, what: str) -> None:
    """Run every thread of this process (and those it starts later) on ``cpus`` (None: leave as is)."""
    if not cpus:
        return
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except (OSError, AttributeError) as exc:
            log.warning("could not pin %s thread %s to CPUs %s: %r", what, tid, sorted(cpus), exc)
            return
    log.info("%s pinned to CPUs %s", what, sorted(cpus))
