"""Settings: config file < environment < flags; API keys validated with useful messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facedb.config import ConfigError, load_settings, parse_api_keys


def test_flags_beat_the_environment_which_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "facedb.json"
    keys = {"k1": {"role": "search", "galleries": ["a"]}}
    config.write_text(json.dumps({"port": 7000, "max_queue": 3, "workers": 2, "api_keys": keys}))
    monkeypatch.setenv("FACEDB_MAX_QUEUE", "5")
    monkeypatch.delenv("FACEDB_API_KEYS", raising=False)
    settings = load_settings(config, port=7001, workers=None)
    assert settings.port == 7001  # flag
    assert settings.max_queue == 5  # environment over file
    assert settings.workers == 2  # file (the flag was not given)
    assert settings.api_keys == keys
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_the_cores_are_shared_between_workers_and_onnxruntime_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FACEDB_ORT_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert load_settings(None, workers=2).ort_threads == 4
    assert load_settings(None, workers=0).worker_count == 8
    assert load_settings(None, workers=0).ort_threads == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"k": {"role": "root"}}', "role must be"),
        ('{"k": {"role": "admin", "galleries": "a"}}', "list of names"),
    ],
)
def test_bad_api_keys_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_api_keys(text)


def test_unknown_settings_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "facedb.json"
    config.write_text(json.dumps({"prot": 1}))
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config)
