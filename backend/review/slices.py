"""Slice audit: per-term FP/FN rates of the flag decision, to see whether one group's texts are flagged more
often (pure; no I/O). A text is in a term's slice when it contains the term as a whole word (case-insensitive).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import RequestError


def read_terms(path: Path) -> list[str]:
    """One term per line; blank lines and lines starting with ``#`` are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"slice terms file {path}: {exc}") from None
    terms = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not terms:
        raise RequestError(f"slice terms file {path} has no terms (one per line)")
    return list(dict.fromkeys(terms))


def term_mask(texts: Sequence[str], term: str) -> np.ndarray:
    """(n,) bool: the text contains ``term`` as a whole word."""
    pattern = re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE)
    return np.array([bool(pattern.search(t)) for t in texts], dtype=bool)


def rates(harmful: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Counts and rates of one slice: ``harmful`` (human) and ``flagged`` (model) are (n,) bool."""
    n, n_harm = len(harmful), int(harmful.sum())
    n_safe = n - n_harm
    fp, fn = int((flagged & ~harmful).sum()), int((~flagged & harmful).sum())
    return {
        "n": n,
        "n_harmful": n_harm,
        "n_safe": n_safe,
        "flagged": int(flagged.sum()),
        "false_positives": fp,
        "false_negatives": fn,
        "flag_rate": round(float(flagged.mean()), 4) if n else None,
        "fp_rate": round(fp / n_safe, 4) if n_safe else None,
        "fn_rate": round(fn / n_harm, 4) if n_harm else None,
    }


def slice_rates(texts: Sequence[str], harmful: np.ndarray, flagged: np.ndarray, terms: Sequence[str]) -> dict[str, Any]:
    """Overall and per-term rates; each slice also gets ``fp_rate_ratio`` (its FP rate over the overall one)."""
    harmful, flagged = np.asarray(harmful, dtype=bool), np.asarray(flagged, dtype=bool)
    if not len(texts) == len(harmful) == len(flagged):
        raise ValueError(f"texts ({len(texts)}), harmful ({len(harmful)}), flagged ({len(flagged)}) must align")
    overall = rates(harmful, flagged)
    slices: dict[str, Any] = {}
    for term in terms:
        mask = term_mask(texts, term)
        row = rates(harmful[mask], flagged[mask])
        base, own = overall["fp_rate"], row["fp_rate"]
        row["fp_rate_ratio"] = round(own / base, 3) if own is not None and base else None
        slices[term] = row
    return {"overall": overall, "slices": slices}
