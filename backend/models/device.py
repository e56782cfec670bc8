"""Which device training runs on: ``TAGLOOP_DEVICE`` = ``auto`` (a visible CUDA device, else the CPU), ``cpu`` or
``cuda``. The same code path either way: bodies and models are moved to the device, results come back as numpy.
Serving stays on the CPU (ONNX Runtime), where it answers in milliseconds."""

from __future__ import annotations

import functools

from backend.errors import SettingsError

DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=4)
def resolve_device(setting: str) -> str:
    """``cpu`` or ``cuda`` for a ``device`` setting; ``SettingsError`` for ``cuda`` when none is visible."""
    if setting not in DEVICES:
        raise SettingsError(f"device: got {setting!r}, expected one of {list(DEVICES)}")
    if setting == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if setting == "cuda" and not available:
        raise SettingsError("device: got 'cuda', but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return "cuda" if available else "cpu"
