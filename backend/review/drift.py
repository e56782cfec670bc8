"""Population stability index (PSI) of served scores against a version's reference window (pure numpy).

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins, with ``e`` the reference and ``a`` the current share of
scores per bin. Bins are the reference's deciles (equal-mass bins; ties merge bins), shares are floored at
``EPS`` so an empty bin does not make PSI infinite. Bands (settings ``psi_bands``, default 0.1 / 0.25):
below the first is ``stable``, between is ``moderate``, above the second is ``major`` drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10
EPS = 1e-4
MIN_SAMPLES = 50
"""Fewer reference or current scores than this: no PSI is reported."""


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = BINS) -> float:
    """PSI of ``current`` (n,) scores against ``reference`` (m,) scores."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(f"psi needs scores on both sides; got {len(reference)} reference, {len(current)} current")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1) / len(reference)
    a = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1) / len(current)
    e, a = np.maximum(e, EPS), np.maximum(a, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float, thresholds: tuple[float, float]) -> str:
    """``stable`` / ``moderate`` / ``major`` for a PSI value."""
    low, high = thresholds
    return "stable" if value < low else "moderate" if value <= high else "major"


@dataclass(frozen=True)
class DriftReport:
    """PSI of a version's newest served scores against its reference window."""

    model_version: str
    n_reference: int
    n_current: int
    psi: float | None
    band: str | None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view."""
        out = dict(self.__dict__)
        out["psi"] = round(self.psi, 4) if self.psi is not None else None
        return out


def drift_report(
    model_version: str, reference: np.ndarray, current: np.ndarray, thresholds: tuple[float, float]
) -> DriftReport:
    """PSI and band, or a note saying which side has too few scores."""
    n_ref, n_cur = len(reference), len(current)
    if n_ref < MIN_SAMPLES or n_cur < MIN_SAMPLES:
        note = f"{n_ref} reference and {n_cur} served scores; PSI needs at least {MIN_SAMPLES} of each"
        return DriftReport(model_version, n_ref, n_cur, None, None, note)
    value = psi(reference, current)
    return DriftReport(model_version, n_ref, n_cur, value, psi_band(value, thresholds))
