"""The sentence-transformer body served by ONNX Runtime: export, load, and parity against the torch body.

``export_onnx`` writes only the transformer (token ids → last hidden state, shape (batch, seq, hidden)) as ONNX,
plus the fast tokenizer and ``onnx_config.json``. Pooling and L2 normalisation run in numpy inside
``OnnxEncoder.encode``. Files in an export directory::

    model.onnx            fp32 graph
    model.int8-all.onnx   per-channel dynamic int8 quantization of every weight MatMul (when ``quantize``)
    model.int8.onnx       the same with the feed-forward down-projections kept fp32 (closer to torch, slower)
    tokenizer.json …    the fast tokenizer (``save_pretrained``)
    onnx_config.json    input names, pooling mode, dim, max_seq_length, source

Errors::

    TagloopError
    └── OnnxError
        ├── ExportError       export, tokenizer save or quantization failed
        └── OnnxModelError    an export directory cannot be loaded, or a load argument is out of range
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import TagloopError
from backend.models.encoder import Encoder, offline

MODEL_FILES = {"fp32": "model.onnx", "int8-all": "model.int8-all.onnx", "int8": "model.int8.onnx"}
"""Precision → graph file name inside an export directory. ``int8-all``: every weight MatMul int8; ``int8``: the
feed-forward down-projections (``fp32_nodes``) kept fp32."""
QUANTIZED = {"int8-all": False, "int8": True}
"""int8 precision → whether ``fp32_nodes`` stay fp32."""
CONFIG_FILE = "onnx_config.json"
TOKENIZER_FILE = "tokenizer.json"
POOLING_MODES = ("mean", "cls", "max")
OPSET = 17
_INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")
MAX_PADDING = 0.1
"""Most padding per session run, as a share of its real tokens (``length_chunks``)."""

ProbaFn = Callable[[np.ndarray], np.ndarray]
"""A head: embeddings (n, dim) → probabilities (n, k)."""


class OnnxError(TagloopError):
    """Base of the ONNX serving errors."""

    code = "onnx_error"


class ExportError(OnnxError):
    """The body could not be exported, its tokenizer saved, or the graph quantized."""

    code = "onnx_export_failed"


class OnnxModelError(OnnxError):
    """An export directory is incomplete or unreadable, or a load argument is out of range."""

    code = "onnx_model_invalid"


# --------------------------------------------------------------------------------------------------- pooling config


def pooling_from_config(config: Mapping[str, Any]) -> str:
    """Pooling mode of a sentence-transformers Pooling config (``pooling_mode`` string or ``pooling_mode_*`` flags)."""
    mode = config.get("pooling_mode")
    if mode is None:
        flags = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}
        on = [m for m, key in flags.items() if config.get(key)]
        others = [k for k, v in config.items() if k.startswith("pooling_mode") and v and k not in flags.values()]
        mode = on[0] if len(on) == 1 and not others else "+".join(on + others) or "none"
    if mode not in POOLING_MODES:
        raise ExportError(f"pooling mode {mode!r} is not supported; expected one of {', '.join(POOLING_MODES)}")
    return str(mode)


def read_pooling_mode(directory: Path) -> str:
    """Pooling mode of a sentence-transformers directory, from ``modules.json`` and its Pooling ``config.json``."""
    try:
        modules = json.loads((directory / "modules.json").read_text())
        pooling = next(m for m in modules if m["type"].endswith(".Pooling"))
        config = json.loads((directory / pooling["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ExportError(f"cannot read the pooling config of {directory}: {exc!r}") from exc
    return pooling_from_config(config)


def _encoder_pooling(encoder: Encoder) -> str:
    """Pooling mode of the loaded body: its live Pooling module, else the files under ``encoder.source``."""
    for module in encoder.body:
        if type(module).__name__ == "Pooling" and hasattr(module, "get_config_dict"):
            return pooling_from_config(module.get_config_dict())
    return read_pooling_mode(Path(encoder.source))


# --------------------------------------------------------------------------------------------------------- export


def _transformer_module(encoder: Encoder) -> Any:
    """The sentence-transformers Transformer module (first module, with ``auto_model`` and ``tokenizer``)."""
    first = encoder.body[0]
    if not hasattr(first, "auto_model") or not hasattr(first, "tokenizer"):
        raise ExportError(f"first module of {encoder.source} is {type(first).__name__}, not a Transformer")
    return first


def _input_names(tokenizer: Any) -> tuple[str, ...]:
    """Graph inputs in a fixed order: ids, mask, and token types when the tokenizer produces them."""
    produced = set(tokenizer.model_input_names) | {"attention_mask"}
    return tuple(name for name in _INPUT_ORDER if name in produced)


def _wrap(model: Any, names: tuple[str, ...]) -> Any:
    """A torch module taking ``names`` positionally and returning last_hidden_state (batch, seq, hidden)."""
    import torch

    class _Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

    return _Body().eval()


@contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Trace the attention as explicit matmul/softmax ops (transformers' ``eager`` implementation), then restore the
    model's own (``sdpa`` by default, faster for torch training).

    ONNX Runtime fuses the eager pattern (227 nodes after its optimizations against 311 for the ``sdpa`` trace of
    MiniLM). Single ag_news texts on int8-all, p50 over two runs of ``tools/experiments/onnx_attention.py``: 0.01 to
    1.07 ms lower in each of the eight (run, condition) pairs, back to back and at 20 calls/s, alone and beside an
    idle-priority torch training (``docs/results/onnx_attention.txt``); the same embeddings (mean cosine to torch
    0.9932 both).
    """
    setter = getattr(model, "set_attn_implementation", None)
    previous = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if setter is None or previous is None or previous == "eager":
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(previous)


def _export_graph(module: Any, tokenizer: Any, names: tuple[str, ...], path: Path) -> None:
    """``torch.onnx.export`` with the legacy TorchScript exporter, dynamic batch and sequence axes."""
    import torch

    sample = tokenizer(["a short text", "a somewhat longer text, so that the batch is padded"], padding=True)
    args = tuple(torch.tensor(sample[name], dtype=torch.int64) for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, "last_hidden_state")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the deprecation notice and TracerWarnings (checked by parity tests)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def fp32_nodes(graph: Any) -> list[str]:
    """MatMul nodes kept in fp32 by ``_quantize``: the feed-forward down-projections (``…/output/dense``).

    Their inputs are GELU outputs with a long tail, which one per-tensor activation scale resolves badly. On
    MiniLM (ag_news, 400 texts) keeping these 6 of 36 weight MatMuls in fp32 raised the mean cosine to torch
    from 0.992 to 0.996 and a 500-label logistic head's argmax agreement from 0.98 to 1.0.
    """
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and "/output/dense" in node.name and "/attention/" not in node.name
    ]


def _quantize(source: Path, target: Path, *, keep_fp32: bool) -> None:
    """Per-channel dynamic int8 quantization of the weights (activations quantized at run time); with
    ``keep_fp32``, ``fp32_nodes`` are left out."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = fp32_nodes(onnx.load(str(source), load_external_data=False).graph) if keep_fp32 else []
    quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep)


def _write_config(
    directory: Path, encoder: Encoder, names: tuple[str, ...], pooling: str, pad_token: str, attention: str
) -> None:
    config = {
        "inputs": list(names),
        "pooling": pooling,
        "dim": encoder.dim,
        "pad_token": pad_token,
        "max_seq_length": int(encoder.body.max_seq_length),
        "source": encoder.source,
        "exporter": f"torch.onnx.export(dynamo=False, opset_version={OPSET})",
        "attention": attention,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))


@contextmanager
def _step(step: str, encoder: Encoder, directory: Path) -> Iterator[None]:
    """Turn any failure of torch, onnx, onnxruntime or the file system inside the block into an ``ExportError``."""
    try:
        yield
    except Exception as exc:  # re-raised as a typed error naming the step
        raise ExportError(f"ONNX export of {encoder.source} to {directory}: could not {step}: {exc!r}") from exc


def export_onnx(encoder: Encoder, directory: Path, *, quantize: bool = True, eager_attention: bool = True) -> Path:
    """Export the transformer of ``encoder`` to ``directory`` (created); returns ``directory``.

    Writes ``model.onnx`` (fp32), ``model.int8-all.onnx`` and ``model.int8.onnx`` when ``quantize``, the fast
    tokenizer and ``onnx_config.json``. ``eager_attention``: trace the attention as plain ops (``_eager_attention``);
    off, the model's own implementation is traced (the comparison in ``tools/experiments/onnx_attention.py``).
    The graph maps int64 (batch, seq) inputs to last_hidden_state (batch, seq, hidden); pooling is not in it.

    Raises:
        ExportError: naming the step that failed (directory, pooling config, graph export, tokenizer, quantization).
    """
    offline()
    pooling = _encoder_pooling(encoder)
    transformer = _transformer_module(encoder)
    tokenizer = transformer.tokenizer
    names = _input_names(tokenizer)
    with _step("create the directory", encoder, directory):
        directory.mkdir(parents=True, exist_ok=True)
    eager = _eager_attention(transformer.auto_model) if eager_attention else nullcontext()
    with _step("export the graph", encoder, directory), eager:
        attention = str(getattr(transformer.auto_model.config, "_attn_implementation", None))
        _export_graph(_wrap(transformer.auto_model, names), tokenizer, names, directory / MODEL_FILES["fp32"])
    with _step("save the tokenizer", encoder, directory):
        tokenizer.save_pretrained(str(directory))
        _write_config(directory, encoder, names, pooling, str(tokenizer.pad_token), attention)
    if quantize:
        for precision, keep_fp32 in QUANTIZED.items():
            with _step(f"quantize the graph to {precision}", encoder, directory):
                _quantize(directory / MODEL_FILES["fp32"], directory / MODEL_FILES[precision], keep_fp32=keep_fp32)
    return directory


# ----------------------------------------------------------------------------------------------------------- load


def _read_config(directory: Path, precision: str) -> dict[str, Any]:
    """``onnx_config.json`` of ``directory``, after checking that the graph and tokenizer are there."""
    if precision not in MODEL_FILES:
        raise OnnxModelError(f"precision {precision!r} is not one of {', '.join(sorted(MODEL_FILES))}")
    needed = [MODEL_FILES[precision], TOKENIZER_FILE, CONFIG_FILE]
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing:
        raise OnnxModelError(f"{directory} is not an ONNX export for precision {precision!r}: missing {missing}")
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        pooling_from_config({"pooling_mode": config["pooling"]})
        return dict(config)
    except (OSError, ValueError, KeyError, TagloopError) as exc:
        raise OnnxModelError(f"{directory / CONFIG_FILE} is unreadable: {exc!r}") from exc


def _session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime CPU session; ``threads`` bounds intra-op parallelism (None: ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions on bad graphs
        raise OnnxModelError(f"ONNX Runtime cannot load {path}: {exc!r}") from exc


def _tokenizer(directory: Path, config: Mapping[str, Any], max_seq_length: int) -> Any:
    """The saved fast tokenizer, truncating at ``max_seq_length``, not padding (``OnnxEncoder`` pads per chunk)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise OnnxModelError(f"cannot load the tokenizer {directory / TOKENIZER_FILE}: {exc!r}") from exc
    pad_token = str(config.get("pad_token", "[PAD]"))
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise OnnxModelError(
            f"pad token {pad_token!r} of {directory / CONFIG_FILE} is not in the tokenizer's vocabulary"
        )
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.no_padding()  # OnnxEncoder pads each length chunk to its own longest text
    return tokenizer


# ------------------------------------------------------------------------------------------------- length chunks


def length_chunks(lengths: Sequence[int], *, max_batch: int, max_padding: float = MAX_PADDING) -> list[np.ndarray]:
    """Split texts into session runs: positions sorted longest first, cut so padding stays bounded.

    A chunk is padded to its longest text; it grows while it has fewer than ``max_batch`` texts and its padded
    token count stays within ``1 + max_padding`` times its real token count. One padded batch of 32 ag_news
    texts is about half padding (mean 50 tokens, longest often 100+); chunked this way the int8 MiniLM body
    encoded 380 texts/s instead of 183 (``tools/experiments/onnx_speed.py``).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    chunks: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest, real, stop = lengths[order[start]], 0, start
        while stop < len(order) and stop - start < max_batch:
            if (stop - start + 1) * longest > (real + lengths[order[stop]]) * (1 + max_padding):
                break
            real += lengths[order[stop]]
            stop += 1
        chunks.append(np.asarray(order[start:stop], dtype=np.int64))
        start = stop
    return chunks


# -------------------------------------------------------------------------------------------------------- pooling


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Pool hidden states (batch, seq, hidden) with mask (batch, seq) → L2-normalised (batch, hidden) float32."""
    if mode == "cls":
        pooled = hidden[:, 0, :]
    elif mode == "max":
        pooled = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
    else:
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return (pooled / norms).astype(np.float32)


# -------------------------------------------------------------------------------------------------------- encoder


class OnnxEncoder:
    """The body as an ONNX Runtime session. Thread-safe: one batch loop at a time per encoder, like ``Encoder``."""

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        config: Mapping[str, Any],
        *,
        source: str,
        batch_size: int,
        max_seq_length: int = 128,
    ) -> None:
        self.session = session
        self.max_seq_length = max_seq_length
        self.tokenizer = tokenizer
        self.source = source
        self.batch_size = batch_size
        self.pooling = str(config["pooling"])
        self.input_names = tuple(str(name) for name in config["inputs"])
        self.pad_id = int(tokenizer.token_to_id(str(config.get("pad_token", "[PAD]"))) or 0)
        self._dim = int(config["dim"])
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        precision: str = "int8",
        max_seq_length: int = 128,
        batch_size: int = 32,
        threads: int | None = None,
        source: str | None = None,
    ) -> OnnxEncoder:
        """Load what ``export_onnx`` wrote. ``precision``: a ``MODEL_FILES`` key; ``threads``: intra-op threads (≥ 1).

        ``source`` names the body (embedding-cache key); default ``<directory>:<precision>``.

        Raises:
            OnnxModelError: a file is missing or unreadable, or an argument is out of range.
        """
        checked = {"max_seq_length": max_seq_length, "batch_size": batch_size, "threads": threads}
        for name, value in checked.items():
            if value is not None and value < 1:
                raise OnnxModelError(f"{name} must be ≥ 1, got {value}")
        config = _read_config(directory, precision)
        session = _session(directory / MODEL_FILES[precision], threads)
        tokenizer = _tokenizer(directory, config, max_seq_length)
        name = source or f"{directory}:{precision}"
        return cls(session, tokenizer, config, source=name, batch_size=batch_size, max_seq_length=max_seq_length)

    @property
    def dim(self) -> int:
        """Embedding width."""
        return self._dim

    @property
    def threads(self) -> int:
        """Intra-op threads of the session (0 means ONNX Runtime's default: one per physical core)."""
        return int(self.session.get_session_options().intra_op_num_threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings, shape (len(texts), dim), float32, unit length; row i is ``texts[i]``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for rows in length_chunks([len(e.ids) for e in encodings], max_batch=self.batch_size):
                out[rows] = self._run([encodings[i] for i in rows])
        return out

    def _run(self, encodings: Sequence[Any]) -> np.ndarray:
        """One session run over tokenized texts, padded to the longest: → (len(encodings), dim)."""
        width = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUT_ORDER}
        for i, e in enumerate(encodings):
            n = len(e.ids)
            arrays["input_ids"][i, :n] = e.ids
            arrays["attention_mask"][i, :n] = 1
            arrays["token_type_ids"][i, :n] = e.type_ids
        arrays["input_ids"][arrays["attention_mask"] == 0] = self.pad_id
        (hidden,) = self.session.run(["last_hidden_state"], {name: arrays[name] for name in self.input_names})
        return pool(hidden, arrays["attention_mask"], self.pooling)


# --------------------------------------------------------------------------------------------------------- parity


@dataclass(frozen=True)
class HeadParity:
    """How one head's output moves when the candidate body replaces the reference."""

    agreement: float
    """Share of texts whose argmax label is the same."""
    max_abs_proba_diff: float
    """Largest |p_reference - p_candidate| over all texts and labels."""


@dataclass(frozen=True)
class ParityReport:
    """Reference (torch) vs candidate (ONNX) embeddings of the same texts."""

    n_texts: int
    min_cosine: float
    mean_cosine: float
    heads: dict[str, HeadParity] = field(default_factory=dict)

    @property
    def min_agreement(self) -> float:
        """Lowest argmax agreement over the heads (1.0 without heads)."""
        return min((h.agreement for h in self.heads.values()), default=1.0)

    def passes(self, min_agreement: float = 0.99, *, min_mean_cosine: float = 0.98) -> bool:
        """True when every head agrees on ≥ ``min_agreement`` of texts and the mean cosine is ≥ ``min_mean_cosine``."""
        return self.min_agreement >= min_agreement and self.mean_cosine >= min_mean_cosine


def head_parity(head: ProbaFn, reference: np.ndarray, candidate: np.ndarray) -> HeadParity:
    """Compare ``head`` on reference and candidate embeddings, both (n, dim)."""
    p_ref, p_cand = np.asarray(head(reference)), np.asarray(head(candidate))
    agreement = float((p_ref.argmax(axis=1) == p_cand.argmax(axis=1)).mean()) if len(p_ref) else 1.0
    diff = float(np.abs(p_ref - p_cand).max()) if p_ref.size else 0.0
    return HeadParity(agreement=agreement, max_abs_proba_diff=diff)


def check_parity(
    reference: Encoder,
    candidate: OnnxEncoder,
    texts: Sequence[str],
    heads: ProbaFn | Mapping[str, ProbaFn] | None = None,
) -> ParityReport:
    """Encode ``texts`` with both bodies; cosine per text, and per head argmax agreement and max |Δp|.

    ``heads``: one callable (reported as "head") or a mapping name → callable, each (n, dim) → (n, k).
    """
    ref, cand = reference.encode(texts), candidate.encode(texts)
    cosines = (ref * cand).sum(axis=1) if len(texts) else np.ones(1)
    named = {"head": heads} if callable(heads) else dict(heads or {})
    return ParityReport(
        n_texts=len(texts),
        min_cosine=float(cosines.min()),
        mean_cosine=float(cosines.mean()),
        heads={name: head_parity(fn, ref, cand) for name, fn in named.items()},
    )
