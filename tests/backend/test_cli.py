"""The ``tagloop`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.config import Settings
from backend.errors import SettingsError
from tests.conftest import config_xml, read_rows

runner = CliRunner()


def test_help_lists_every_command() -> None:
    out = runner.invoke(app, ["--help"]).output
    for command in ("serve", "train", "settings"):
        assert command in out
    assert "TAGLOOP_" in out


def test_settings_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGLOOP_LABEL_STUDIO_TOKEN", "secret-token")
    monkeypatch.setenv("TAGLOOP_TRAIN_EVERY", "7")
    out = runner.invoke(app, ["settings", "--data-dir", str(tmp_path)]).output
    assert "secret-token" not in out and "TAGLOOP_LABEL_STUDIO_TOKEN" in out and "***" in out
    assert "TAGLOOP_TRAIN_EVERY" in out and " 7" in out


def test_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGLOOP_TRAIN_EVERY", "often")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 2 and "TAGLOOP_TRAIN_EVERY: got 'often', expected a int" in result.output


def test_settings_validation_names_value_and_range() -> None:
    with pytest.raises(SettingsError, match="multi_label_threshold: got 1.5, expected a number in \\(0, 1\\)"):
        Settings(multi_label_threshold=1.5)
    with pytest.raises(SettingsError, match="model_kind: got 'bert'"):
        Settings(model_kind="bert")
    assert Settings.from_env({"TAGLOOP_SETFIT_MAX_STEPS": "3"}).setfit_max_steps == 3


@pytest.mark.model
def test_train_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encoder: Any) -> None:
    from backend.app import create_app
    from backend.bootstrap import build

    settings = Settings(data_dir=tmp_path, setfit_max_steps=2, setfit_num_iterations=2, train_every=0)
    services = build(settings, base_encoder=encoder)
    client = create_app(services=services).test_client()
    xml = config_xml("binary_sentiment")
    client.post("/setup", json={"project": "4.1", "schema": xml})
    for i, row in enumerate(read_rows("sst2", 8)):
        client.post(
            "/webhook",
            json={
                "action": "ANNOTATION_CREATED",
                "project": {"id": 4, "label_config": xml},
                "task": {"id": i + 1, "data": {"text": row["text"]}},
                "annotation": {
                    "id": i + 1,
                    "task": i + 1,
                    "result": [
                        {
                            "from_name": "sentiment",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [row["label"]]},
                        }
                    ],
                },
            },
        )
    services.close()
    for key, value in (("SETFIT_MAX_STEPS", "2"), ("SETFIT_NUM_ITERATIONS", "2")):
        monkeypatch.setenv(f"TAGLOOP_{key}", value)
    unknown = runner.invoke(app, ["train", "--project", "99", "--data-dir", str(tmp_path)])
    assert unknown.exit_code == 2 and "project 99 is unknown; known projects: [4]" in unknown.output
    result = runner.invoke(app, ["train", "--project", "4", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["model_version"] == "4-setfit-1" and summary["n_train"] == 8
