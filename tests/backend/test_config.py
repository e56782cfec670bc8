"""Settings: one declaration (names, defaults, allowed values), read from the environment only by ``from_env``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.config import PREFIX, Settings
from backend.errors import SettingsError


def test_constructing_settings_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGLOOP_TRAIN_EVERY", "7")
    monkeypatch.setenv("TAGLOOP_MODEL_KIND", "bert")  # would fail if it were read
    assert Settings().train_every == 10
    assert Settings(train_every=3).train_every == 3


def test_from_env_reads_tagloop_variables_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGLOOP_TRAIN_EVERY", "7")
    monkeypatch.setenv("TAGLOOP_DATA_DIR", "/srv/tagloop")
    settings = Settings.from_env()
    assert (settings.train_every, settings.data_dir) == (7, Path("/srv/tagloop"))
    assert Settings.from_env(train_every=2, data_dir=None).train_every == 2  # None: not overridden
    assert Settings.from_env({}).train_every == 10  # an explicit mapping replaces os.environ


def test_variables_are_converted_to_the_field_types() -> None:
    env = {
        "TAGLOOP_FAST_TIER": "off",
        "TAGLOOP_DISTILL": "yes",
        "TAGLOOP_MULTI_LABEL_THRESHOLD": "0.3",
        "TAGLOOP_TRANSFORMER_LEARNING_RATE": "5e-4",
        "TAGLOOP_SERVE_PRECISION": "fp32",
        "OTHER_TRAIN_EVERY": "1",
    }
    settings = Settings.from_env(env)
    assert (settings.fast_tier, settings.distill, settings.multi_label_threshold) == (False, True, 0.3)
    assert (settings.transformer_learning_rate, settings.serve_precision, settings.train_every) == (5e-4, "fp32", 10)


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("TRAIN_EVERY", "often", "TAGLOOP_TRAIN_EVERY: got 'often', expected a int"),
        ("FAST_TIER", "maybe", "TAGLOOP_FAST_TIER: got 'maybe', expected a bool"),
        ("MULTI_LABEL_THRESHOLD", "2", "TAGLOOP_MULTI_LABEL_THRESHOLD: got '2', expected a number in (0, 1)"),
        ("WORKER", "celery", "TAGLOOP_WORKER: got 'celery', expected one of ['process', 'inprocess', 'redis']"),
    ],
)
def test_a_bad_variable_is_named(variable: str, raw: str, reason: str) -> None:
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({PREFIX + variable: raw})
    assert exc.value.reason == reason


BAD: list[tuple[dict[str, Any], str]] = [
    ({"model_kind": "bert"}, "model_kind: got 'bert', expected one of ['setfit']"),
    ({"slow_tier": "gpt"}, "slow_tier: got 'gpt', expected one of ['setfit', 'transformer']"),
    ({"serve_precision": "fp16"}, "serve_precision: got 'fp16', expected one of ['int8', 'fp32', 'torch']"),
    ({"log_format": "xml"}, "log_format: got 'xml', expected one of ['text', 'json']"),
    ({"training_priority": "high"}, "training_priority: got 'high', expected one of ['idle', 'low', 'normal']"),
    ({"device": "tpu"}, "device: got 'tpu', expected one of ['auto', 'cpu', 'cuda']"),
    ({"basic_auth_user": "u"}, "basic_auth_user and basic_auth_password: set both or neither"),
    ({"basic_auth_password": "p"}, "basic_auth_user and basic_auth_password: set both or neither"),
    ({"multi_label_threshold": 1.5}, "multi_label_threshold: got 1.5, expected a number in (0, 1)"),
    ({"review_max_fp_rate": 1.0}, "review_max_fp_rate: got 1.0, expected a number in [0, 1)"),
    ({"training_yield_share": -0.1}, "training_yield_share: got -0.1, expected a number in [0, 1)"),
    ({"parity_min_agreement": 0.0}, "parity_min_agreement: got 0.0, expected a number in (0, 1]"),
    ({"stop_kappa": 1.5}, "stop_kappa: got 1.5, expected a number in (0, 1]"),
    ({"promotion_tolerance": 2.0}, "promotion_tolerance: got 2.0, expected a number in [0, 1]"),
    ({"transformer_valid_fraction": 1.0}, "transformer_valid_fraction: got 1.0, expected a number in (0, 1)"),
    ({"review_target_precision": 0.0}, "review_target_precision: got 0.0, expected a number in (0, 1)"),
    ({"keep_versions": 0}, "keep_versions: got 0, expected an integer >= 1"),
    ({"psi_window": 0}, "psi_window: got 0, expected an integer >= 1"),
    ({"job_max_attempts": 0}, "job_max_attempts: got 0, expected an integer >= 1"),
    ({"train_every": -1}, "train_every: got -1, expected an integer >= 0"),
    ({"push_top_k": -1}, "push_top_k: got -1, expected an integer >= 0"),
    ({"inference_threads": -1}, "inference_threads: got -1, expected an integer >= 0"),
    ({"batch_max_wait_ms": -1.0}, "batch_max_wait_ms: got -1.0, expected a number >= 0"),
    ({"prior_strength": -1.0}, "prior_strength: got -1.0, expected a number >= 0"),
    ({"worker_poll_s": 0.0}, "worker_poll_s: got 0.0, expected a number > 0"),
    ({"zero_shot_temperature": 0.0}, "zero_shot_temperature: got 0.0, expected a number > 0"),
    ({"transformer_learning_rate": 0.0}, "transformer_learning_rate: got 0.0, expected a number > 0"),
    ({"psi_bands": "0.1"}, "psi_bands: got '0.1', expected two numbers like '0.1,0.25'"),
    ({"psi_bands": "0.3,0.1"}, "psi_bands: got '0.3,0.1', expected 0 < first < second"),
    ({"train_every": "x"}, "train_every: got 'x', expected a int"),
    ({"no_such_knob": 1}, "no_such_knob: got 1, but there is no such setting"),
]


@pytest.mark.parametrize(("values", "reason"), BAD, ids=[next(iter(v)) + "=" + repr(v[next(iter(v))]) for v, _ in BAD])
def test_every_check_names_the_value_and_what_is_allowed(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(SettingsError) as exc:
        Settings(**values)
    assert exc.value.reason == reason


def test_an_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="^multi_label_strategy: unknown strategy 'nope'; known: .*margin"):
        Settings(multi_label_strategy="nope")


def test_derived_values() -> None:
    settings = Settings(data_dir=Path("/d"), psi_bands="0.2,0.5", harmful_labels=" a, b ,,")
    assert settings.psi_thresholds == (0.2, 0.5)
    assert settings.harmful_label_set == {"a", "b"}
    assert settings.models_dir == Path("/d/models")
    assert settings.resolved_database_url == "sqlite:////d/tagloop.db"


def test_settings_are_immutable_and_replace_checks_the_change() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.train_every = 3  # type: ignore[misc]
    changed = settings.replace(train_every=3, fast_tier=False)
    assert (changed.train_every, changed.fast_tier, settings.train_every) == (3, False, 10)
    assert changed == Settings(train_every=3, fast_tier=False) and hash(changed) == hash(
        Settings(train_every=3, fast_tier=False)
    )
    with pytest.raises(SettingsError, match="keep_versions: got 0"):
        settings.replace(keep_versions=0)


def test_describe_masks_secrets_and_url_passwords() -> None:
    described = Settings(
        label_studio_token="tok",
        api_key="key",
        basic_auth_user="u",
        basic_auth_password="pw",
        database_url="postgresql://me:hunter2@db/tagloop",
    ).describe()
    assert (described["label_studio_token"], described["api_key"], described["basic_auth_password"]) == ("***",) * 3
    assert described["database_url"] == "postgresql://me:***@db/tagloop" and described["basic_auth_user"] == "u"
    assert set(described) == set(Settings.model_fields) and described["train_every"] == "10"
