"""``Batcher``: concurrent calls coalesce, rows go back to their caller, errors reach only their caller, and a
lone call is not held back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from backend.models.batching import BatchedEncoder, Batcher, BatcherClosed, truncated_mask


class SlowRows:
    """fn(texts) → one row per text, [len(text), hash-ish], after ``delay`` seconds; records each batch."""

    def __init__(self, delay: float = 0.05, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.batches.append(list(texts))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"cannot encode {self.fail_on!r}")
        return np.array([[len(t), sum(map(ord, t))] for t in texts], dtype=np.float32)


def expected(texts: list[str]) -> np.ndarray:
    return np.array([[len(t), sum(map(ord, t))] for t in texts], dtype=np.float32)


def run_concurrently(batcher: Batcher, calls: list[list[str]]) -> list[object]:
    """Start every call at once (a barrier); results or raised exceptions, in call order."""
    barrier = threading.Barrier(len(calls))

    def one(texts: list[str]) -> object:
        barrier.wait()
        try:
            return batcher(texts)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def test_concurrent_callers_share_batches_and_get_their_own_rows() -> None:
    fn = SlowRows()
    batcher = Batcher(fn, max_batch=32, max_wait_s=0.02)
    calls = [[f"call {i} text {j}" for j in range(i % 3 + 1)] for i in range(12)]
    results = run_concurrently(batcher, calls)
    for texts, rows in zip(calls, results, strict=True):
        assert isinstance(rows, np.ndarray) and np.array_equal(rows, expected(texts))
    stats = batcher.stats
    assert stats.calls == 12 and stats.texts == sum(map(len, calls))
    assert stats.batches < 12 and stats.largest_batch > 3, fn.batches  # coalesced
    assert max(len(b) for b in fn.batches) <= 32
    batcher.close()


def test_batches_never_exceed_max_batch_and_large_calls_are_split_in_order() -> None:
    fn = SlowRows(delay=0.01)
    batcher = Batcher(fn, max_batch=4, max_wait_s=0.0)
    big = [f"t{i}" for i in range(11)]
    results = run_concurrently(batcher, [big, ["x", "y"], ["z"]])
    assert np.array_equal(results[0], expected(big))  # type: ignore[arg-type]
    assert np.array_equal(results[1], expected(["x", "y"]))  # type: ignore[arg-type]
    assert all(len(b) <= 4 for b in fn.batches) and sum(map(len, fn.batches)) == 14
    batcher.close()


def test_error_reaches_only_the_caller_whose_text_failed() -> None:
    fn = SlowRows(fail_on="poison")
    batcher = Batcher(fn, max_batch=32, max_wait_s=0.02)
    calls = [["ok a"], ["ok b", "poison"], ["ok c"], ["ok d", "ok e"], ["ok f"]]
    results = run_concurrently(batcher, calls)
    assert isinstance(results[1], ValueError) and "poison" in str(results[1])
    for i in (0, 2, 3, 4):
        assert np.array_equal(results[i], expected(calls[i])), results[i]  # type: ignore[arg-type]
    assert batcher(["fine"]).shape == (1, 2)  # the batcher keeps working
    batcher.close()


def test_a_lone_call_is_not_held_for_the_wait() -> None:
    fn = SlowRows(delay=0.0)
    batcher = Batcher(fn, max_batch=32, max_wait_s=0.5)
    started = time.perf_counter()
    for _ in range(5):
        batcher(["alone"])
    assert time.perf_counter() - started < 0.25  # five sequential calls, none waited 0.5 s
    batcher.close()


def test_wait_for_a_partial_batch_is_bounded_under_concurrency() -> None:
    """After a merged batch the dispatcher lingers for more texts, but never past max_wait after the oldest."""
    fn = SlowRows(delay=0.03)
    batcher = Batcher(fn, max_batch=64, max_wait_s=0.1)
    run_concurrently(batcher, [["a"], ["b"], ["c"], ["d"]])  # merges: the next partial batch may linger
    started = time.perf_counter()
    assert np.array_equal(batcher(["late"]), expected(["late"]))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.1 + 0.03 + 0.1, elapsed  # max_wait + fn time + scheduling slack
    batcher.close()


def test_closed_batcher_refuses_calls() -> None:
    batcher = Batcher(SlowRows(delay=0.0), max_batch=2, max_wait_s=0.0)
    assert batcher(["x"]).shape == (1, 2)
    batcher.close()
    with pytest.raises(BatcherClosed, match="closed"):
        batcher(["y"])


def test_batcher_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        Batcher(SlowRows(), max_batch=0, max_wait_s=0.0)


def test_a_wrong_row_count_is_an_error_for_the_caller() -> None:
    batcher = Batcher(lambda texts: np.zeros((1, 2)), max_batch=8, max_wait_s=0.0)
    with pytest.raises(Exception, match="returned 1 rows for 2 texts"):
        batcher(["a", "b"])
    batcher.close()


class FakeBody:
    source = "/bodies/fake"
    dim = 2

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return expected(list(texts))


def test_batched_encoder_is_a_drop_in_body() -> None:
    body = FakeBody()
    served = BatchedEncoder(body, max_batch=8, max_wait_ms=1.0, max_seq_length=128)
    assert served.source == "/bodies/fake" and served.dim == 2 and served.batch_size == 8
    assert served.encode([]).shape == (0, 2) and body.calls == 0
    assert np.array_equal(served.encode(["ab", "c"]), expected(["ab", "c"]))
    served.close()


def test_truncated_mask_skips_short_texts_without_tokenizing() -> None:
    class NoTokenizer:
        tokenizer = None

        @property
        def body(self) -> object:
            raise AssertionError("short texts must not be tokenized")

    assert not truncated_mask(NoTokenizer(), ["short", "also short"], 128).any()
