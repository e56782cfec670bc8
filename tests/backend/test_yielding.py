"""Training yields to serving: the activity mark, the bounded pause, and the layer hooks of a real model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from backend.jobs.yielding import ServingActivity, YieldToServing, pause_points


class Clock:
    """A fake monotonic clock; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def active_activity(tmp_path: Path) -> ServingActivity:
    activity = ServingActivity(tmp_path / "serving-activity")
    activity.mark()
    return activity


def test_activity_mark_creates_and_touches_the_file(tmp_path: Path) -> None:
    activity = ServingActivity(tmp_path / "serving-activity")
    assert activity.idle_for() == float("inf")  # never marked
    activity.mark()
    assert activity.path.is_file() and activity.idle_for() < 1.0
    os.utime(activity.path, (time.time() - 30, time.time() - 30))
    activity.mark()  # within MARK_EVERY_S of the last mark: no syscall, the file keeps its old time
    assert activity.idle_for() >= 29
    time.sleep(0.02)
    activity.mark()
    assert activity.idle_for() < 1.0


def test_pause_is_bounded_by_the_share_of_work_while_serving_stays_active(tmp_path: Path) -> None:
    clock = Clock()
    activity = active_activity(tmp_path)  # its mtime stays "now": serving looks busy throughout
    pause = YieldToServing(activity, quiet_s=3600, max_share=0.75, sleep=clock.sleep, clock=clock)
    clock.now += 0.1  # 100 ms of training work since the yielder was made
    paused = pause()
    assert paused == pytest.approx(0.3)  # at most 3× the work at share 0.75
    assert pause.paused_s == pytest.approx(0.3)
    assert pause() == 0.0  # no work since: no budget


def test_no_pause_when_serving_is_quiet_or_yielding_is_off(tmp_path: Path) -> None:
    clock = Clock()
    quiet = ServingActivity(tmp_path / "never-marked")
    assert YieldToServing(quiet, quiet_s=0.2, max_share=0.75, sleep=clock.sleep, clock=clock)() == 0.0
    busy = active_activity(tmp_path)
    clock.now += 1.0
    assert YieldToServing(busy, quiet_s=0.0, max_share=0.75, sleep=clock.sleep, clock=clock)() == 0.0
    assert clock.slept == []
    with pytest.raises(ValueError, match="max_share in"):
        YieldToServing(busy, quiet_s=0.2, max_share=1.0)


def test_pause_stops_once_serving_has_been_quiet(tmp_path: Path) -> None:
    activity = active_activity(tmp_path)
    pause = YieldToServing(activity, quiet_s=0.05, max_share=0.9)
    time.sleep(0.2)  # "work": a budget of up to 1.8 s, but serving goes quiet after 50 ms
    started = time.monotonic()
    paused = pause()
    assert paused < 0.5 and time.monotonic() - started < 0.5


def test_pause_points_call_before_each_layer_and_leave_the_outputs_alone() -> None:
    """A tiny random-weight BERT (the layer stack is ``encoder.layer``): 2 layers, forward and backward."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = BertModel(config).eval()  # no dropout: the same outputs twice (gradients still flow)
    ids = torch.randint(0, 50, (2, 7))
    expected = model(input_ids=ids).last_hidden_state.detach().numpy()
    calls: list[float] = []
    with pause_points(model, lambda: calls.append(1.0) or 0.0) as hooked:
        out = model(input_ids=ids).last_hidden_state
        out.sum().backward()
    assert hooked == 2 and len(calls) == 4  # forward and backward of each layer
    assert np.allclose(out.detach().numpy(), expected, atol=1e-6)
    model(input_ids=ids).last_hidden_state.sum().backward()
    assert len(calls) == 4  # hooks removed on exit
    with pause_points(model, None) as none:
        assert none == 0
