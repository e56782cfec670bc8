"""ONNX export of the bundled MiniLM body: files, parity with torch (fp32, int8, int8-all), pooling, threads, errors.

Measured on this machine (ag_news, head fitted on 60 torch embeddings, 200 other rows):
fp32 min cosine 0.9999998, head agreement 1.0; int8 mean cosine 0.993, min 0.986, agreement 0.99, max |Δp| 0.07
(all weight MatMuls int8; with the feed-forward down-projections kept fp32, mean cosine 0.996).
The bounds below keep a margin under those numbers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from backend.errors import TagloopError
from backend.models.encoder import Encoder, bundled_model_path
from backend.models.heads import FittedHead, fit_head
from backend.models.onnx_encoder import (
    ExportError,
    HeadParity,
    OnnxEncoder,
    OnnxModelError,
    ParityReport,
    check_parity,
    export_onnx,
    fp32_nodes,
    length_chunks,
    pool,
    pooling_from_config,
    read_pooling_mode,
)
from tests.conftest import read_rows

LABELS = ("World", "Sports", "Business", "Sci/Tech")
N_TRAIN = 60


@pytest.fixture(scope="module")
def exported(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export (fp32 + int8) shared by the module."""
    return export_onnx(encoder, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def onnx_fp32(exported: Path) -> OnnxEncoder:
    return OnnxEncoder.load(exported, precision="fp32", threads=2)


@pytest.fixture(scope="module")
def onnx_int8(exported: Path) -> OnnxEncoder:
    return OnnxEncoder.load(exported, precision="int8", threads=2)


@pytest.fixture(scope="module")
def onnx_int8_all(exported: Path) -> OnnxEncoder:
    return OnnxEncoder.load(exported, precision="int8-all", threads=2)


@pytest.fixture(scope="module")
def head(encoder: Encoder) -> FittedHead:
    """Logistic head on torch embeddings of the first 60 ag_news rows."""
    rows = read_rows("ag_news", N_TRAIN)
    fitted = fit_head(LABELS, False, encoder.encode([r["text"] for r in rows]), [[r["label"]] for r in rows], seed=0)
    assert fitted is not None
    return fitted


def _texts(n: int, offset: int = N_TRAIN) -> list[str]:
    return [r["text"] for r in read_rows("ag_news", n, offset=offset)]


@pytest.mark.model
def test_export_writes_graphs_tokenizer_and_config(exported: Path, onnx_int8: OnnxEncoder) -> None:
    for name in ("model.onnx", "model.int8-all.onnx", "model.int8.onnx", "tokenizer.json", "onnx_config.json"):
        assert (exported / name).is_file(), name
    fp32_size = (exported / "model.onnx").stat().st_size
    assert (exported / "model.int8-all.onnx").stat().st_size < fp32_size * 0.3  # every weight MatMul int8
    # int8 weights, but the 6 feed-forward down-projections (1536 × 384 each) stay fp32 (``fp32_nodes``)
    assert fp32_size * 0.3 < (exported / "model.int8.onnx").stat().st_size < fp32_size * 0.4
    assert onnx_int8.pooling == "mean" and onnx_int8.dim == 384
    assert onnx_int8.input_names == ("input_ids", "attention_mask", "token_type_ids")
    import onnx

    kept = fp32_nodes(onnx.load(str(exported / "model.onnx")).graph)
    assert len(kept) == 6 and all("/output/dense/" in name and "attention" not in name for name in kept)


@pytest.mark.model
def test_fp32_matches_torch(encoder: Encoder, onnx_fp32: OnnxEncoder, head: FittedHead) -> None:
    report = check_parity(encoder, onnx_fp32, _texts(64), head.predict_proba)
    assert report.n_texts == 64
    assert report.min_cosine >= 0.9999, report
    assert report.heads["head"].agreement == 1.0 and report.heads["head"].max_abs_proba_diff < 1e-3, report


@pytest.mark.model
def test_int8_keeps_logistic_head_decisions(encoder: Encoder, onnx_int8: OnnxEncoder, head: FittedHead) -> None:
    report = check_parity(encoder, onnx_int8, _texts(200), {"topic": head.predict_proba})
    assert report.mean_cosine >= 0.98 and report.min_cosine >= 0.96, report
    assert report.heads["topic"].agreement >= 0.95, report
    assert report.passes(0.95), report


@pytest.mark.model
def test_int8_all_keeps_logistic_head_decisions(encoder: Encoder, onnx_int8_all: OnnxEncoder, head: FittedHead) -> None:
    """Every weight MatMul int8: the fastest graph, a little further from torch than ``int8`` (the parity check
    in ``serving`` decides per body which one serves)."""
    texts = _texts(200)
    report = check_parity(encoder, onnx_int8_all, texts, {"topic": head.predict_proba})
    assert report.mean_cosine >= 0.98 and report.min_cosine >= 0.95, report
    assert report.heads["topic"].agreement >= 0.95, report
    gold = [LABELS.index(r["label"]) for r in read_rows("ag_news", 200, offset=N_TRAIN)]
    accuracy = {
        name: float(np.mean(head.predict_proba(body.encode(texts)).argmax(1) == gold))
        for name, body in (("torch", encoder), ("int8-all", onnx_int8_all))
    }
    assert abs(accuracy["int8-all"] - accuracy["torch"]) <= 0.02, accuracy


@pytest.mark.model
def test_padding_does_not_change_fp32_embeddings(onnx_fp32: OnnxEncoder) -> None:
    alone = onnx_fp32.encode(["hello there"])
    tokens = onnx_fp32.tokenizer.encode_batch(["hello there", "a much longer sentence that forces padding " * 10])
    padded = onnx_fp32._run(tokens)  # one session run, the short text padded to the long one
    assert np.allclose(alone[0], padded[0], atol=1e-5)


def test_length_chunks_bound_padding_and_batch_size() -> None:
    lengths = [10, 50, 48, 12, 11, 100, 47, 9, 52, 10]
    chunks = length_chunks(lengths, max_batch=3, max_padding=0.1)
    assert sorted(int(i) for c in chunks for i in c) == list(range(len(lengths)))  # every text once
    for chunk in chunks:
        sizes = [lengths[i] for i in chunk]
        assert len(chunk) <= 3 and sizes == sorted(sizes, reverse=True)
        assert len(sizes) * max(sizes) <= sum(sizes) * 1.1
    assert [[lengths[i] for i in c] for c in chunks] == [[100], [52, 50, 48], [47], [12, 11, 10], [10, 9]]
    assert [len(c) for c in length_chunks([7] * 70, max_batch=32)] == [32, 32, 6]  # equal lengths: full batches
    assert length_chunks([], max_batch=8) == []


@pytest.mark.model
def test_encode_shape_order_and_unit_length(onnx_fp32: OnnxEncoder) -> None:
    texts = _texts(40)
    emb = onnx_fp32.encode(texts)
    assert emb.shape == (40, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(emb[7], onnx_fp32.encode(texts[:32])[7], atol=1e-5)  # row i is texts[i] after length sorting
    assert onnx_fp32.encode([]).shape == (0, 384)


@pytest.mark.model
def test_int8_embedding_depends_on_its_batch_but_stays_close(onnx_int8: OnnxEncoder) -> None:
    """Dynamic quantization scales activations per tensor, i.e. over the whole batch: neighbours move a row a little."""
    texts = _texts(32)
    batched = onnx_int8.encode(texts)
    single = np.concatenate([onnx_int8.encode([t]) for t in texts[:8]])
    cosines = (batched[:8] * single).sum(axis=1)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert cosines.min() >= 0.97, cosines
    assert np.array_equal(batched, onnx_int8.encode(texts))  # same batch → same numbers


@pytest.mark.model
def test_threads_bounded_and_concurrent_calls_agree(exported: Path) -> None:
    one = OnnxEncoder.load(exported, precision="fp32", threads=1, batch_size=4)
    assert one.threads == 1
    texts = _texts(8)
    serial = one.encode(texts)
    with ThreadPoolExecutor(max_workers=3) as pool_:
        results = list(pool_.map(lambda _: one.encode(texts), range(3)))
    assert all(np.allclose(r, serial, atol=1e-6) for r in results)


@pytest.mark.parametrize(
    ("config", "mode"),
    [
        ({"pooling_mode": "cls"}, "cls"),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
        ({"pooling_mode_max_tokens": True}, "max"),
    ],
)
def test_pooling_from_config(config: dict[str, object], mode: str) -> None:
    assert pooling_from_config(config) == mode


@pytest.mark.parametrize(
    "config",
    [{"pooling_mode": "weightedmean"}, {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True}, {}],
)
def test_unsupported_pooling_names_what_it_saw(config: dict[str, object]) -> None:
    with pytest.raises(ExportError, match="pooling mode .* expected one of mean, cls, max"):
        pooling_from_config(config)


def test_read_pooling_mode_of_bundled_model() -> None:
    assert read_pooling_mode(bundled_model_path()) == "mean"


def test_pool_hand_computed() -> None:
    hidden = np.array([[[3.0, 4.0], [0.0, 2.0], [100.0, 100.0]]], dtype=np.float32)  # (1, 3, 2); last token padded
    mask = np.array([[1, 1, 0]])
    assert np.allclose(pool(hidden, mask, "mean"), [[1 / np.sqrt(5), 2 / np.sqrt(5)]])  # mean (1.5, 3) → unit
    assert np.allclose(pool(hidden, mask, "cls"), [[0.6, 0.8]])
    assert np.allclose(pool(hidden, mask, "max"), [[0.6, 0.8]])  # max (3, 4), padding ignored


def test_parity_report_passes() -> None:
    report = ParityReport(n_texts=10, min_cosine=0.99, mean_cosine=0.995, heads={"a": HeadParity(0.9, 0.2)})
    assert report.min_agreement == 0.9
    assert not report.passes(0.99) and report.passes(0.9)
    assert not report.passes(0.9, min_mean_cosine=0.999)


@pytest.mark.model
def test_export_to_unwritable_path_raises(encoder: Encoder, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError, match="could not create the directory") as info:
        export_onnx(encoder, blocker / "onnx", quantize=False)
    assert isinstance(info.value, TagloopError) and str(blocker) in info.value.reason


def test_load_errors_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match=r"missing \['model.int8.onnx', 'tokenizer.json', 'onnx_config.json'\]"):
        OnnxEncoder.load(tmp_path)
    with pytest.raises(OnnxModelError, match="precision 'fp16' is not one of fp32, int8"):
        OnnxEncoder.load(tmp_path, precision="fp16")
    with pytest.raises(OnnxModelError, match="threads must be ≥ 1, got 0"):
        OnnxEncoder.load(tmp_path, threads=0)


@pytest.mark.model
def test_load_rejects_a_corrupt_graph(exported: Path, tmp_path: Path) -> None:
    for name in ("tokenizer.json", "onnx_config.json"):
        (tmp_path / name).write_bytes((exported / name).read_bytes())
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(OnnxModelError, match="ONNX Runtime cannot load"):
        OnnxEncoder.load(tmp_path, precision="fp32")
