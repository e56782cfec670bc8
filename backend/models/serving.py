"""Which body serves: an ONNX Runtime export of the torch body when it keeps the heads' decisions, else torch.

For a body directory (the bundled base, or a slow-tier version's ``body/``), ``decide_serving`` exports the
body to ONNX (fp32 graph + two int8 per-channel dynamic quantizations, ``onnx_encoder.export_onnx``), encodes a
sample of texts with torch and with each candidate graph, and serves the first candidate whose argmax
agreement with torch is at least ``parity_min_agreement`` for every head. Candidates: ``int8-all`` (every
weight MatMul int8: the fastest), ``int8`` (feed-forward down-projections fp32) then ``fp32`` for
``serve_precision=int8``; ``fp32`` for ``serve_precision=fp32``; none for ``torch``. When the export
fails or no candidate passes, torch serves, and the reason is logged and recorded.

The decision is written as ``serving.json`` into the export directory, so later loads (another process, a
restart) reuse it without torch::

    <data_dir>/models/base-onnx/<body key>/    the base body's export (zero-shot and fast-tier versions)
    <artifact>/onnx/                           a slow-tier version's export, next to its ``body/``

A served ONNX body has ``source`` ``<body dir>#onnx-<precision>`` (``served_source``), distinct from the
torch body's ``<body dir>``, so the embedding cache keeps their vectors apart; fast-tier versions record it
as their ``body_path`` and ``split_source`` maps it back to the torch body directory.

A process that has not loaded the torch body (the web process serving the base body) decides in a child
process (``decide_out_of_process``, ``python -m backend.models.serving``), so torch never enters it.

Errors::

    TagloopError
    └── ServingError      a decision in a child process failed (the caller then decides in its own process)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Settings
from backend.errors import TagloopError
from backend.models.embedding_cache import body_key
from backend.models.encoder import Encoder
from backend.models.heads import ZeroShotHead
from backend.models.onnx_encoder import MODEL_FILES, OnnxEncoder, ParityReport, check_parity, export_onnx

log = logging.getLogger(__name__)
SERVING_FILE = "serving.json"
SOURCE_MARK = "#onnx-"
PARITY_TEXTS = 200
"""Texts the parity check encodes (from the project's tasks, topped up with ``GENERIC_TEXTS``)."""
ANCHORS = 16
"""Anchor texts of the neighbour head that checks a body no trained head uses yet (the base body)."""
MIN_MEAN_COSINE = 0.98
"""Mean cosine between torch and candidate embeddings a candidate needs (``ParityReport.passes``' bound)."""
CANDIDATES = {"int8": ("int8-all", "int8", "fp32"), "fp32": ("fp32",), "torch": ()}
"""serve_precision → ONNX precisions tried in order (the first that passes parity serves)."""
GENERIC_TEXTS = (
    "The central bank raised interest rates by a quarter point on Wednesday.",
    "Our team won the championship after a dramatic overtime goal.",
    "The new phone has a faster chip, a brighter screen and a better camera.",
    "Researchers found water ice in craters near the moon's south pole.",
    "I loved this movie, the acting was superb and the story kept me hooked.",
    "Terrible service, the food was cold and the waiter was rude.",
    "How do I reset my password if I no longer have access to my email?",
    "My card was charged twice for the same purchase, please refund one.",
    "Heavy rain is expected across the region with a risk of flooding.",
    "The senate passed the bill after a long debate over spending cuts.",
    "Shares of the chip maker fell sharply after weak quarterly guidance.",
    "Scientists sequenced the genome of a rare deep-sea fish.",
    "Can you book a table for four people at seven tonight?",
    "The software update fixed the battery drain but broke bluetooth.",
    "The striker signed a three-year contract with the Spanish club.",
    "Protesters gathered outside the parliament to demand new elections.",
    "This recipe needs two eggs, a cup of flour and a pinch of salt.",
    "The flight was delayed for five hours without any explanation.",
    "A new vaccine trial showed strong results in older adults.",
    "You are an idiot and nobody wants you here.",
    "Thanks so much for your help, that solved my problem!",
    "The museum reopened its ancient Egypt wing after renovation.",
    "Oil prices climbed as supply concerns grew in the Middle East.",
    "What is the weather going to be like in Paris this weekend?",
)
"""Varied short texts for the parity check when the store holds too few tasks."""


class ServingError(TagloopError):
    """A served body could not be prepared or loaded."""

    code = "serving_failed"


@dataclass(frozen=True)
class ServingDecision:
    """What serves a body and why (the content of ``serving.json``)."""

    body: str
    """The torch body directory."""
    requested: str
    """``serve_precision`` when decided: int8, fp32 or torch."""
    served: str
    """What serves: int8-all, int8, fp32 or torch."""
    source: str
    """``source`` of the served body (embedding-cache key)."""
    reason: str
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per tried precision: n_texts, cosines, per-head agreement and max |Δp|, min_agreement, passed."""
    export_seconds: float = 0.0
    min_agreement: float = 0.99
    decided_at: float = 0.0

    @property
    def onnx(self) -> bool:
        """True when an ONNX graph serves."""
        return self.served in MODEL_FILES

    def write(self, directory: Path) -> None:
        """Write ``serving.json`` into ``directory`` (atomically)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{SERVING_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(directory / SERVING_FILE)

    @classmethod
    def read(cls, directory: Path) -> ServingDecision | None:
        """The decision recorded in ``directory``, or None when there is none (or it is unreadable)."""
        try:
            raw = json.loads((directory / SERVING_FILE).read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            if (directory / SERVING_FILE).exists():
                log.warning("ignoring unreadable %s: %r", directory / SERVING_FILE, exc)
            return None


def served_source(body: Path | str, precision: str) -> str:
    """``source`` of the ONNX body exported from ``body`` at ``precision`` (e.g. ``/m/body#onnx-int8``)."""
    return f"{body}{SOURCE_MARK}{precision}"


def split_source(source: str) -> tuple[Path, str]:
    """A body ``source`` → (torch body directory, precision); precision is "torch" for a torch source."""
    body, mark, precision = source.partition(SOURCE_MARK)
    return Path(body), (precision if mark else "torch")


def export_dir(body: Path, *, base: Path, models_dir: Path) -> Path:
    """Where the ONNX export of ``body`` lives: ``base-onnx/<key>`` for the base body, else beside the body."""
    resolved = body.resolve()
    if resolved == base.resolve():
        return models_dir / "base-onnx" / body_key(str(resolved))
    return resolved.parent / "onnx"


def inference_threads(settings: Settings) -> int:
    """Intra-op threads of an inference session: the setting, or one per CPU this process may run on for 0 (its
    affinity: pinned to one core, two threads would take turns on it, 32 ms a text instead of 6)."""
    from backend.placement import available_cpus

    return settings.inference_threads or len(available_cpus()) or 1


def anchor_head(reference: Encoder, texts: Sequence[str], k: int = ANCHORS) -> Callable[[np.ndarray], np.ndarray]:
    """A zero-shot-style head (cosine softmax, temperature 0.05) over ``k`` of the texts' torch embeddings.

    Zero-shot heads have this form, so its agreement stands in for heads that do not exist yet.
    """
    step = max(1, len(texts) // k)
    anchors = reference.encode(list(texts[::step][:k]))
    labels = tuple(str(i) for i in range(len(anchors)))
    return ZeroShotHead(labels=labels, multi_label=False, label_embeddings=anchors).predict_proba


def parity_texts(candidates: Sequence[str], n: int = PARITY_TEXTS) -> list[str]:
    """Up to ``n`` distinct non-empty texts from ``candidates``, topped up with ``GENERIC_TEXTS`` below 32."""
    texts = list(dict.fromkeys(t for t in candidates if t and t.strip()))[:n]
    if len(texts) < 32:
        texts += [t for t in GENERIC_TEXTS if t not in texts]
    return texts


def decide_serving(
    reference: Encoder,
    directory: Path,
    settings: Settings,
    texts: Sequence[str],
    heads: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> ServingDecision:
    """Export ``reference`` into ``directory`` (unless already there), check parity, record and return the decision.

    ``heads``: name → (n, dim) → (n, k) probabilities, each required to keep ``parity_min_agreement`` of its
    argmax decisions; every candidate also needs a mean cosine ≥ ``MIN_MEAN_COSINE``. An ``anchor_head`` over
    ``texts`` is reported too but not required: arbitrary partitions of the embedding space put many texts near
    a boundary (int8 flipped 2-7 % of them on 200 held-out texts of four data sets, trained heads 0-2 %).
    Never raises for a failed export or parity: the decision then says torch, with the reason.
    """
    body = str(Path(reference.source).resolve())

    def decided(served: str, reason: str, parity: dict[str, dict[str, Any]], seconds: float) -> ServingDecision:
        source = served_source(body, served) if served in MODEL_FILES else reference.source
        decision = ServingDecision(
            body=body,
            requested=settings.serve_precision,
            served=served,
            source=source,
            reason=reason,
            parity=parity,
            export_seconds=round(seconds, 2),
            min_agreement=settings.parity_min_agreement,
            decided_at=round(time.time(), 3),
        )
        return _record(decision, directory)

    if settings.serve_precision == "torch":
        return decided("torch", "serve_precision=torch", {}, 0.0)
    started = time.perf_counter()
    try:
        _ensure_export(reference, directory)
    except TagloopError as exc:
        return decided("torch", f"ONNX export failed, serving torch: {exc.reason}", {}, 0.0)
    exported = time.perf_counter() - started
    required = sorted(heads or {})
    checked = {**(heads or {}), "anchors": anchor_head(reference, texts)}
    tried: dict[str, dict[str, Any]] = {}
    for precision in CANDIDATES[settings.serve_precision]:
        report = _parity(reference, directory, precision, texts, checked, settings)
        passed = report is not None and _passes(report, required, settings.parity_min_agreement)
        tried[precision] = _report_json(report, passed, required)
        if passed:
            return decided(precision, _pass_reason(precision, required, len(texts), settings), tried, exported)
    reason = "parity failed for " + "; ".join(f"{p}: {_why(r)}" for p, r in tried.items()) + "; serving torch"
    return decided("torch", reason, tried, exported)


CHILD_SETTINGS = (
    "serve_precision",
    "parity_min_agreement",
    "max_seq_length",
    "predict_batch_size",
    "inference_threads",
)
"""Settings a ``decide_out_of_process`` child needs."""


def decide_out_of_process(body: Path, directory: Path, settings: Settings, texts: Sequence[str]) -> ServingDecision:
    """``decide_serving`` for the body at ``body`` (anchor heads) in a child process, so this one never loads torch.

    The web process serves ONNX without importing torch; a child loads the torch body, exports and checks.

    Raises:
        ServingError: the child failed or wrote no decision (its stderr tail is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="tagloop-serving-") as tmp:
        request = Path(tmp) / "request.json"
        overrides = {name: getattr(settings, name) for name in CHILD_SETTINGS}
        request.write_text(
            json.dumps({"body": str(body), "out": str(directory), "settings": overrides, "texts": list(texts)})
        )
        cmd = [sys.executable, "-m", "backend.models.serving", str(request)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    decision = ServingDecision.read(directory)
    if done.returncode != 0 or decision is None or decision.requested != settings.serve_precision:
        tail = done.stderr.strip().splitlines()[-3:]
        raise ServingError(f"serving decision for {body} in a child process failed (exit {done.returncode}): {tail}")
    return decision


def load_onnx(decision: ServingDecision, directory: Path, settings: Settings) -> OnnxEncoder:
    """The ONNX body a decision names, with ``source`` ``served_source(body, precision)``.

    Raises:
        OnnxModelError: the export directory is incomplete or unreadable.
    """
    return OnnxEncoder.load(
        directory,
        precision=decision.served,
        max_seq_length=settings.max_seq_length,
        batch_size=settings.predict_batch_size,
        threads=inference_threads(settings),
        source=decision.source,
    )


def _ensure_export(reference: Encoder, directory: Path) -> None:
    """Export into a private directory and move it into place, so concurrent processes never see half a graph."""
    if all((directory / name).is_file() for name in MODEL_FILES.values()):
        return
    staging = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    export_onnx(reference, staging)
    directory.mkdir(parents=True, exist_ok=True)
    graphs = set(MODEL_FILES.values())
    for path in sorted(staging.iterdir(), key=lambda p: p.name in graphs):  # graphs last: they mark completion
        path.replace(directory / path.name)
    shutil.rmtree(staging, ignore_errors=True)


def _parity(
    reference: Encoder,
    directory: Path,
    precision: str,
    texts: Sequence[str],
    heads: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    settings: Settings,
) -> ParityReport | None:
    try:
        candidate = OnnxEncoder.load(
            directory,
            precision=precision,
            max_seq_length=int(reference.body.max_seq_length),
            batch_size=settings.predict_batch_size,
            threads=inference_threads(settings),
        )
        return check_parity(reference, candidate, texts, heads)
    except TagloopError as exc:
        log.warning("%s: %s parity check could not run: %s", directory, precision, exc.reason)
        return None


def _passes(report: ParityReport, required: Sequence[str], min_agreement: float) -> bool:
    """Mean cosine ≥ ``MIN_MEAN_COSINE`` and every required head's argmax agreement ≥ ``min_agreement``."""
    agreement = min((report.heads[name].agreement for name in required), default=1.0)
    return report.mean_cosine >= MIN_MEAN_COSINE and agreement >= min_agreement


def _pass_reason(precision: str, required: Sequence[str], n_texts: int, settings: Settings) -> str:
    if required:
        return (
            f"{precision}: heads {list(required)} agree with torch on ≥ {settings.parity_min_agreement:.2%} "
            f"of {n_texts} texts"
        )
    return f"{precision}: no trained head yet; mean cosine to torch ≥ {MIN_MEAN_COSINE} on {n_texts} texts"


def _report_json(report: ParityReport | None, passed: bool, required: Sequence[str]) -> dict[str, Any]:
    if report is None:
        return {"passed": False, "error": "the graph could not be loaded"}
    return {
        "passed": passed,
        "required_heads": list(required),
        "n_texts": report.n_texts,
        "min_agreement": round(min((report.heads[n].agreement for n in required), default=1.0), 4),
        "mean_cosine": round(report.mean_cosine, 5),
        "min_cosine": round(report.min_cosine, 5),
        "heads": {
            name: {"agreement": round(h.agreement, 4), "max_abs_proba_diff": round(h.max_abs_proba_diff, 4)}
            for name, h in report.heads.items()
        },
    }


def _why(row: Mapping[str, Any]) -> str:
    if "error" in row:
        return str(row["error"])
    return f"agreement {row['min_agreement']}, mean cosine {row['mean_cosine']}"


def _record(decision: ServingDecision, directory: Path) -> ServingDecision:
    try:
        decision.write(directory)
    except OSError as exc:  # the decision still holds for this process
        log.warning("could not write %s: %r", directory / SERVING_FILE, exc)
    fell_back = decision.served == "torch" or decision.served == "fp32" != decision.requested
    level = logging.WARNING if fell_back and decision.requested != "torch" else logging.INFO
    log.log(level, "serving %s as %s: %s", decision.body, decision.served, decision.reason)
    return decision


def _child(request_path: str) -> None:
    """Entry point of ``decide_out_of_process``: load the torch body, decide, write ``serving.json``."""
    request = json.loads(Path(request_path).read_text())
    settings = Settings(**request["settings"])
    reference = Encoder.load(
        Path(request["body"]), max_seq_length=settings.max_seq_length, batch_size=settings.predict_batch_size
    )
    decide_serving(reference, Path(request["out"]), settings, request["texts"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _child(sys.argv[1])
