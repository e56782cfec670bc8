"""``WriteBehind``: rows queued by many callers become one merged write; failures are dropped, not raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from backend.write_behind import IDLE_AFTER, WriteBehind


def test_write_behind_merges_writes_and_flushes() -> None:
    written: list[dict[Hashable, dict[Any, Any]]] = []
    gate = threading.Event()

    def write(batch: dict[Hashable, dict[Any, Any]]) -> None:
        gate.wait(5)
        written.append(batch)

    writer = WriteBehind(write)
    writer("body", {"h1": b"1"})  # the thread takes it and blocks on the gate
    time.sleep(0.05)
    for i in range(2, 6):
        writer("body", {f"h{i}": b"x"})  # accumulate while the first write is blocked
    writer.put({"other": {"h2": b"o"}, "body": {"h2": b"replaced"}})  # several keys at once; later ids win
    gate.set()
    assert writer.flush(5)
    assert written[0] == {"body": {"h1": b"1"}}
    merged = {f"h{i}": b"x" for i in range(2, 6)} | {"h2": b"replaced"}
    assert written[1:] == [{"body": merged, "other": {"h2": b"o"}}]  # one merged write
    writer.close()
    writer("body", {"late": b"y"})  # after close: written synchronously
    assert written[-1] == {"body": {"late": b"y"}}


def test_write_behind_drops_failed_writes_and_keeps_going() -> None:
    written: list[Hashable] = []

    def write(batch: dict[Hashable, dict[Any, Any]]) -> None:
        if "bad" in batch:
            raise OSError("disk full")
        written.extend(batch)

    writer = WriteBehind(write)
    writer("bad", {"h": b"1"})
    assert writer.flush(5)
    writer("good", {"h": b"1"})
    assert writer.flush(5) and written == ["good"]
    writer.close()


def test_rows_put_while_polling_or_after_going_idle_are_written_without_a_flush() -> None:
    """With an interval, ``put`` wakes the thread only once it went idle (no put for ``IDLE_AFTER`` intervals);
    before that the thread finds new rows by looking every interval. Either way they are written unprompted."""
    written: list[dict[Hashable, dict[Any, Any]]] = []
    done = threading.Event()

    def write(batch: dict[Hashable, dict[Any, Any]]) -> None:
        written.append(batch)
        done.set()

    interval = 0.01
    writer = WriteBehind(write, interval_s=interval)

    def put_and_wait(row: str) -> float:
        done.clear()
        start = time.monotonic()
        writer("k", {row: 1})
        assert done.wait(5), f"{row} was not written"
        return time.monotonic() - start

    put_and_wait("first")  # starts the thread
    polled = put_and_wait("while polling")
    assert writer._idle is False
    time.sleep(IDLE_AFTER * interval + 0.2)
    assert writer._idle is True  # nothing came: it waits to be woken
    woken = put_and_wait("after idle")
    assert [list(b["k"]) for b in written] == [["first"], ["while polling"], ["after idle"]]
    assert polled < 1 and woken < 1
    writer.close()
