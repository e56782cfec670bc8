"""Training priority: a thread (or a whole process) lowers itself; threads it starts inherit the priority."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from backend.config import Settings, SettingsError
from backend.jobs.priority import current_priority, lower_priority


def in_thread(fn: object) -> object:
    """Run ``fn`` in a new thread (priorities are per thread: the test's own thread stays normal)."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    thread.start()
    thread.join(30)
    return out[0]


@pytest.mark.parametrize(("priority", "policy", "nice"), [("idle", os.SCHED_IDLE, 19), ("low", os.SCHED_OTHER, 19)])
def test_lower_priority_applies_to_the_thread_and_its_children(priority: str, policy: int, nice: int) -> None:
    def run() -> tuple[str, str, int, int, str]:
        applied = lower_priority(priority)
        tid = threading.get_native_id()
        child = in_thread(current_priority)  # a thread started afterwards inherits it
        return applied, current_priority(), os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid), child  # type: ignore[return-value]

    applied, seen, got_policy, got_nice, child = in_thread(run)  # type: ignore[misc]
    assert (applied, seen, got_policy, got_nice, child) == (priority, priority, policy, nice, priority)
    assert current_priority() == "normal"  # the calling thread of the test is untouched


def test_normal_changes_nothing_and_unknown_values_are_refused() -> None:
    assert in_thread(lambda: (lower_priority("normal"), current_priority())) == ("normal", "normal")
    with pytest.raises(ValueError, match=r"got 'nice', expected one of \['idle', 'low', 'normal'\]"):
        lower_priority("nice")
    with pytest.raises(SettingsError, match="training_priority: got 'high'"):
        Settings(training_priority="high")


def test_whole_process_lowers_threads_started_before() -> None:
    """`tagloop worker` lowers every thread, including those numpy's BLAS started at import."""
    code = (
        "import os, threading, time\n"
        "stop = threading.Event()\n"
        "early = threading.Thread(target=stop.wait); early.start(); time.sleep(0.1)\n"
        "from backend.jobs.priority import lower_priority\n"
        "lower_priority('idle', whole_process=True)\n"
        "policies = {os.sched_getscheduler(int(t)) for t in os.listdir('/proc/self/task')}\n"
        "stop.set(); print(sorted(policies))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == str([os.SCHED_IDLE])
