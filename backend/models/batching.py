"""Coalesce concurrent encode calls into bounded batches run by one inference thread.

``Batcher`` sits in front of a body's ``encode``: every caller submits its texts and blocks; a single
dispatcher thread takes pending texts in arrival order, up to ``max_batch`` at a time, and runs them as one
call. Texts that arrive while a batch runs wait for the next one, so under concurrency batches fill on their
own. When the previous batch merged several callers, the dispatcher also lingers up to ``max_wait_s`` after
the oldest pending text arrived to fill a partial batch; a lone caller never waits (no added latency): a call
that finds nothing running or pending runs its texts in its own thread, without the hand-over to the dispatcher
(about a millisecond less per single-text request here). Either way at most one ``fn`` call runs at a time.

A caller's texts may be split over several batches (requests larger than ``max_batch``); rows come back in
the caller's order. When a merged batch fails, each caller in it is retried alone, so an error reaches only
the caller whose texts caused it.

``BatchedEncoder`` wraps a served body (``Encoder`` or ``OnnxEncoder``) with a ``Batcher``; it has what serving
uses of ``Encoder`` (``encode``, ``dim``, ``source``) plus ``truncated``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from backend.errors import TagloopError

log = logging.getLogger(__name__)
EncodeFn = Callable[[list[str]], np.ndarray]
"""texts (n) → rows (n, dim), row i for text i."""


class BatcherClosed(TagloopError):
    """A call reached a batcher after ``close``."""

    code = "batcher_closed"
    status_code = 503


class Body(Protocol):
    """What a served body offers: the torch ``Encoder`` and ``OnnxEncoder`` both do."""

    source: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class _Call:
    """One caller's texts, its result rows and the event it waits on."""

    texts: list[str]
    out: np.ndarray | None = None
    taken: int = 0
    """Texts already handed to a batch (positions in ``texts``)."""
    filled: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def fill(self, start: int, rows: np.ndarray) -> None:
        if self.out is None:
            self.out = np.empty((len(self.texts), *rows.shape[1:]), dtype=rows.dtype)
        self.out[start : start + len(rows)] = rows
        self.filled += len(rows)
        if self.filled == len(self.texts):
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.done.set()


@dataclass(frozen=True)
class BatchStats:
    """Counters since the batcher started."""

    batches: int
    texts: int
    calls: int
    largest_batch: int


class Batcher:
    """Run ``fn`` on merged texts of concurrent callers; at most one ``fn`` call at a time."""

    def __init__(self, fn: EncodeFn, *, max_batch: int, max_wait_s: float, name: str = "batcher") -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch} and {max_wait_s}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.name = name
        self._pending: deque[tuple[_Call, float]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._merged_last = False
        self._busy = False
        """A batch is running (inline in a caller, or in the dispatcher): at most one ``fn`` call at a time."""
        self._stats = {"batches": 0, "texts": 0, "calls": 0, "largest_batch": 0}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of ``fn`` for ``texts`` (row i for texts[i]); raises what ``fn`` raised on these texts."""
        call = _Call(list(texts))
        if not call.texts:
            return self.fn([])
        with self._cond:
            if self._closed:
                raise BatcherClosed(f"{self.name} is closed; no encode call is accepted after close()")
            self._stats["calls"] += 1
            inline = not self._busy and not self._pending and len(call.texts) <= self.max_batch
            if inline:  # nothing running or waiting: run in this thread (no hand-over to the dispatcher)
                self._busy = True
                self._count_batch(len(call.texts), merged=False)
            else:
                self._pending.append((call, time.monotonic()))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
                self._cond.notify_all()
        if inline:
            try:
                return self._checked(call.texts)
            finally:
                self._done_running()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.out if call.out is not None else self.fn([])

    @property
    def stats(self) -> BatchStats:
        """How many batches, texts and calls went through, and the largest batch."""
        with self._cond:
            return BatchStats(**self._stats)

    def close(self) -> None:
        """Stop the dispatcher after the batches already queued; later calls raise ``BatcherClosed``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    # ------------------------------------------------------------------------------------------ dispatcher

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                self._done_running()

    def _done_running(self) -> None:
        with self._cond:
            self._busy = False
            if self._pending:  # only the dispatcher waits on this, and only for pending texts; waking it anyway took
                self._cond.notify_all()  # 8 % of /predict's time at 20 calls/s here (py-spy, docs/benchmarks.md)

    def _count_batch(self, size: int, *, merged: bool) -> None:
        self._merged_last = merged
        self._stats["batches"] += 1
        self._stats["texts"] += size
        self._stats["largest_batch"] = max(self._stats["largest_batch"], size)

    def _next_batch(self) -> list[tuple[_Call, int, int]] | None:
        """Pending (call, start, stop) slices for one batch; None once closed and drained."""
        with self._cond:
            while not self._pending or self._busy:  # busy: a caller runs its texts inline
                if self._closed and not self._pending:
                    return None
                self._cond.wait()
            if self._merged_last:  # recent concurrency: give a partial batch a bounded chance to fill
                deadline = self._pending[0][1] + self.max_wait_s
                while self._pending_texts() < self.max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            return self._take()

    def _pending_texts(self) -> int:
        return sum(len(call.texts) - call.taken for call, _ in self._pending)

    def _take(self) -> list[tuple[_Call, int, int]]:
        room, batch = self.max_batch, []
        while self._pending and room:
            call, _ = self._pending[0]
            stop = min(len(call.texts), call.taken + room)
            batch.append((call, call.taken, stop))
            room -= stop - call.taken
            call.taken = stop
            if call.taken == len(call.texts):
                self._pending.popleft()
        self._busy = True
        self._count_batch(self.max_batch - room, merged=len(batch) > 1)
        return batch

    def _execute(self, batch: list[tuple[_Call, int, int]]) -> None:
        texts = [t for call, start, stop in batch for t in call.texts[start:stop]]
        try:
            rows = self._checked(texts)
        except Exception as exc:  # handed to the callers: alone when the batch was theirs, else retried alone
            if len(batch) == 1:
                batch[0][0].fail(exc)
                return
            for call, start, stop in batch:
                self._execute([(call, start, stop)])
            return
        offset = 0
        for call, start, stop in batch:
            call.fill(start, rows[offset : offset + stop - start])
            offset += stop - start

    def _checked(self, texts: list[str]) -> np.ndarray:
        rows = np.asarray(self.fn(texts))
        if len(rows) != len(texts):
            raise TagloopError(f"{self.name}: encode returned {len(rows)} rows for {len(texts)} texts")
        return rows


class BatchedEncoder:
    """A served body behind a ``Batcher``: ``encode``, ``dim``, ``source`` (the body's) and ``truncated``."""

    def __init__(self, body: Any, *, max_batch: int, max_wait_ms: float, max_seq_length: int) -> None:
        self.body = body
        self.source: str = str(body.source)
        self.max_seq_length = max_seq_length
        self.batcher = Batcher(
            body.encode, max_batch=max_batch, max_wait_s=max_wait_ms / 1000, name=f"batch:{body.source}"
        )

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.body.dim)

    @property
    def batch_size(self) -> int:
        """Most texts per inference call (``Encoder.batch_size``)."""
        return self.batcher.max_batch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (len(texts), dim) float32; row i is texts[i]. Concurrent calls share batches."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.batcher(texts), dtype=np.float32)

    def truncated(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) bool: the text has more tokens than ``max_seq_length`` (only that many are encoded)."""
        return truncated_mask(self.body, texts, self.max_seq_length)

    def save(self, directory: Any) -> None:
        """A served body is never written as a version's body (slow-tier versions save their torch body)."""
        raise TagloopError(f"{self.source} is a served body; save the torch body it was exported from instead")

    def close(self) -> None:
        """Stop the dispatcher thread."""
        self.batcher.close()


def truncated_mask(body: Any, texts: Sequence[str], max_seq_length: int) -> np.ndarray:
    """(len(texts),) bool: whether tokenizing each text yields more than ``max_seq_length`` tokens.

    Each word piece covers at least one character, so only texts of at least ``max_seq_length - 2``
    characters are tokenized. Uses the ONNX body's ``tokenizers`` tokenizer or the torch body's HF tokenizer.
    """
    out = np.zeros(len(texts), dtype=bool)
    long = [i for i, t in enumerate(texts) if len(t) >= max_seq_length - 2]
    if long:
        out[long] = _too_long(body, [texts[i] for i in long], max_seq_length)
    return out


def _too_long(body: Any, texts: list[str], max_seq_length: int) -> np.ndarray:
    tokenizer = getattr(body, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer, truncating
        return np.array([bool(e.overflowing) for e in tokenizer.encode_batch(texts)])
    hf = body.body.tokenizer  # sentence-transformers body: its HF fast tokenizer
    ids = hf(texts, truncation=False, add_special_tokens=True, verbose=False)["input_ids"]
    return np.array([len(i) > max_seq_length for i in ids])
