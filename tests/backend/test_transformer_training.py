"""The transformer slow tier on a tiny random-weight BERT (the code path; accuracy is measured in bench/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.config import Settings
from backend.labelstudio.label_config import parse_label_config
from backend.models.encoder import Encoder, bundled_model_path
from backend.models.sequence import TransformerClassifier, load_classifier
from backend.store.records import Example
from backend.training.dataset import control_data
from backend.training.fitting import train_fast
from backend.training.transformer_training import class_weights, train_transformer, validation_split
from tests.conftest import config_xml, read_rows, split_labels


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and the bundled MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(str(path))
    AutoTokenizer.from_pretrained(str(bundled_model_path())).save_pretrained(str(path))
    return path


def _settings(tmp_path: Path, **kw: object) -> Settings:
    base = {
        "data_dir": tmp_path,
        "transformer_epochs": 3,
        "transformer_batch_size": 8,
        "transformer_learning_rate": 5e-4,
        "max_seq_length": 48,
        "min_labels_to_train": 4,
    }
    return Settings(**{**base, **kw})  # type: ignore[arg-type]


def _examples(rows: list[dict[str, str]], control: str, *, multi: bool = False) -> list[Example]:
    return [
        Example(
            task_id=i,
            data={"text": r["text"]},
            choices={control: split_labels(r["label"]) if multi else [r["label"]]},
        )
        for i, r in enumerate(rows)
    ]


def _load(directory: Path) -> TransformerClassifier:
    loaded = load_classifier(directory, load_encoder=lambda p: Encoder.load(p, max_seq_length=48, batch_size=16))
    assert isinstance(loaded, TransformerClassifier)
    return loaded


def test_class_weights_and_stratified_split() -> None:
    y = np.array([0] * 30 + [1] * 10 + [2] * 2)
    w = class_weights(y, 4)
    assert w[0] == pytest.approx(42 / (3 * 30)) and w[2] == pytest.approx(42 / (3 * 2)) and w[3] == 1.0
    train, valid = validation_split(y, 0.2, seed=0)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(42))
    assert set(y[valid]) == {0, 1}  # a label with two rows keeps both for training


def test_imbalanced_multiclass_weighted_loss_save_load_and_pipeline(tmp_path: Path, tiny_checkpoint: Path) -> None:
    spec = parse_label_config(config_xml("news_topics"))
    control = spec.controls[0].name
    rows = read_rows("ag_news", 400)
    by_label: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    labels = sorted(by_label)
    picked = by_label[labels[0]][:40] + by_label[labels[1]][:12] + by_label[labels[2]][:6] + by_label[labels[3]][:6]
    data = control_data(spec, _examples(picked, control), max_chars=2000)
    settings = _settings(tmp_path)
    seen: list[float] = []
    result = train_transformer(
        spec, data, tiny_checkpoint, settings, "1-transformer-1", progress=lambda f, m: seen.append(f)
    )
    metrics = result.metrics[control]
    weights = metrics["class_weights"]
    assert weights[labels[0]] < weights[labels[1]] < weights[labels[2]]  # rarer label, larger weight
    assert metrics["n_valid"] > 0 and 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 3
    assert "cv_accuracy" in metrics and seen and max(seen) <= 0.87
    texts = [r["text"] for r in rows[300:310]]
    probs = result.classifier.predict({control: texts})[control]
    assert probs.shape == (10, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)

    result.classifier.save(tmp_path / "v1")
    loaded = _load(tmp_path / "v1")
    np.testing.assert_allclose(loaded.predict({control: texts})[control], probs, atol=1e-5)
    assert loaded.encoder.source == str((tmp_path / "v1" / "transformer").resolve())

    from transformers import AutoModelForSequenceClassification, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "v1" / "transformer"))
    assert [model.config.id2label[i] for i in range(4)] == list(spec.controls[0].labels)
    out = pipeline("text-classification", model=str(tmp_path / "v1" / "transformer"), device="cpu")(texts[:3])
    logits = result.classifier.proba(texts[:3])  # the exported model is the fine-tuned one, without the blend
    assert [o["label"] for o in out] == [spec.controls[0].labels[i] for i in logits.argmax(1)]

    # the fast tier refits logistic heads on the fine-tuned body, as it does after a SetFit version
    fast = train_fast(spec, data, loaded.encoder, loaded.encoder.encode, settings, "1-fast-1")
    assert fast.classifier.predict({control: texts})[control].shape == (10, 4)


def test_binary_and_early_stopping(tmp_path: Path, tiny_checkpoint: Path) -> None:
    spec = parse_label_config(config_xml("binary_sentiment"))
    control = spec.controls[0].name
    rows = read_rows("sst2", 60)
    data = control_data(spec, _examples(rows, control), max_chars=2000)
    # a learning rate of ~0 cannot improve the validation score after the first epoch: patience 1 stops at epoch 2
    settings = _settings(tmp_path, transformer_epochs=6, transformer_patience=1, transformer_learning_rate=1e-12)
    result = train_transformer(spec, data, tiny_checkpoint, settings, "2-transformer-1")
    metrics = result.metrics[control]
    assert metrics["stopped_early"] and metrics["epochs_run"] == 2 and metrics["best_epoch"] == 1
    probs = result.classifier.predict({control: [r["text"] for r in rows[:5]]})[control]
    assert probs.shape == (5, 2)


def test_multi_label_bce(tmp_path: Path, tiny_checkpoint: Path) -> None:
    spec = parse_label_config(config_xml("toxicity_types"))
    control = spec.controls[0].name
    rows = read_rows("jigsaw_toxic", 80)
    data = control_data(spec, _examples(rows, control, multi=True), max_chars=2000)
    result = train_transformer(spec, data, tiny_checkpoint, _settings(tmp_path), "3-transformer-1")
    metrics = result.metrics[control]
    assert metrics["valid_metric"] == "valid_micro_f1" and all(
        1.0 <= w <= 10.0 for w in metrics["class_weights"].values()
    )
    classifier = result.classifier
    assert isinstance(classifier, TransformerClassifier) and classifier.multi_label
    probs = classifier.predict({control: [r["text"] for r in rows[:6]]})[control]
    assert probs.shape == (6, len(spec.controls[0].labels))
    assert not np.allclose(probs.sum(1), 1)  # independent sigmoids, not a softmax
    classifier.save(tmp_path / "v3")
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(str(tmp_path / "v3" / "transformer")).problem_type == "multi_label_classification"


@pytest.mark.model
def test_slow_tier_transformer_through_the_job_runner(
    settings: Settings, encoder: Encoder, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """TAGLOOP_SLOW_TIER=transformer: the webhook policy queues it, a version is published, served and exported."""

    from backend.app import create_app
    from backend.bootstrap import build
    from backend.export import export_model
    from tests.backend.test_api_labelstudio import annotation_event, setup_project

    news = config_xml("news_topics")
    tuned = settings.replace(
        slow_tier="transformer",
        transformer_model=str(tiny_checkpoint),
        transformer_epochs=2,
        transformer_learning_rate=5e-4,
        train_every=8,
        promotion_tolerance=1.0,
        serve_precision="torch",
    )
    services = build(tuned, base_encoder=encoder)
    try:
        client = create_app(services=services).test_client()
        setup_project(client, 31, news)
        rows = read_rows("ag_news", 8, offset=900)
        answers = [
            client.post(
                "/webhook", json=annotation_event(31, news, 100 + i, 100 + i, r["text"], "topic", [r["label"]])
            ).json
            for i, r in enumerate(rows)
        ]
        assert answers[-1]["training"] == {"transformer": "queued"}
        assert services.wait_idle(300)
        status = client.get("/api/projects/31").json
        assert status["model_version"] == "31-transformer-1", status["last_error"]
        assert status["current"]["metrics"]["topic"]["kind"] == "transformer"
        r = client.post("/predict", json={"tasks": [{"id": 1, "data": {"text": rows[0]["text"]}}], "project": 31})
        assert r.status_code == 200 and r.json["model_version"] == "31-transformer-1"
        paths = export_model(services, 31, tmp_path / "export", None)
        from transformers import AutoModelForSequenceClassification

        assert AutoModelForSequenceClassification.from_pretrained(str(paths["topic"])).config.num_labels == 4
    finally:
        services.close()


@pytest.mark.model
def test_distillation_into_the_served_small_body(tmp_path: Path, tiny_checkpoint: Path, encoder: Encoder) -> None:
    from backend.models.classifier import TextClassifier
    from backend.training.transformer_training import distill

    spec = parse_label_config(config_xml("news_topics"))
    control = spec.controls[0].name
    rows = read_rows("ag_news", 140, offset=1200)
    data = control_data(spec, _examples(rows[:40], control), max_chars=2000)
    settings = _settings(tmp_path, transformer_epochs=2)
    teacher = train_transformer(spec, data, tiny_checkpoint, settings, "4-transformer-1").classifier
    assert isinstance(teacher, TransformerClassifier)
    unlabeled = [r["text"] for r in rows[40:]]
    result = distill(teacher, encoder, encoder.encode, spec, data, unlabeled, settings, "4-transformer-1")
    report = result.metrics[control]["distillation"]
    assert report["teacher"] == "4-transformer-1" and report["n_pseudo"] == 80 and report["n_held"] == 20
    assert 0.0 <= report["agreement_with_teacher"] <= 1.0
    student = result.classifier
    assert type(student) is TextClassifier and student.encoder is encoder
    assert student.predict({control: unlabeled[:3]})[control].shape == (3, 4)
