"""Every config key can be set from the environment or a systemd credential, and a bad
value is blamed on the variable or file it came from."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import tomli_w
from pydantic import BaseModel, SecretStr

from broadcaster import overrides
from broadcaster.config import ConfigError, Settings, load_settings
from tests.conftest import REPO

SAMPLE = REPO / "config.toml"
TEXT_CANDIDATES = [
    "Europe/London",
    "127.0.0.1:9999",
    "12h",
    "2m",
    "06:15",
    "22:00-05:00",
    "other",
    "sqlite:///other.db",
    "http://example.org:81",
    "s3cret",
]


def raw_sample() -> dict[str, Any]:
    return tomllib.loads(SAMPLE.read_text(encoding="utf-8"))


def value_at(settings: Settings, path: tuple[str, ...]) -> Any:
    node: Any = settings
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if isinstance(node, SecretStr):
        return node.get_secret_value()
    return node.model_dump() if isinstance(node, BaseModel) else node


def put(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = raw
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return raw


def candidates(key: overrides.Key, current: Any) -> list[tuple[Any, str]]:
    """Values to try for a key, each as TOML value and as the variable's text."""
    (kind,) = [t for t in overrides.options_of(key.annotation)][:1]
    if kind is bool:
        return [(not current, str(not current).lower())]
    if kind in (int, float):
        base = current if isinstance(current, (int, float)) else 1
        numbers = [kind(base) + 1, kind(base) - 1, kind(base) * 2, kind(1), kind(-20)]
        return [(n, str(n)) for n in numbers]
    if get_origin(kind) is Literal:
        return [(v, v) for v in get_args(kind) if v != current]
    if get_origin(kind) is list:
        options = [["0912345678"], ["+8490"], [], ["1", "2", "3", "4", "5.1", "5.2", "5.3"]]
        return [(v, json.dumps(v)) for v in options if v != current]
    if get_origin(kind) is dict:
        options = [{"0912345678": "viettel"}, {"sms": "10m"}]
        return [(v, json.dumps(v)) for v in options]
    return [(v, v) for v in TEXT_CANDIDATES if v != str(current)]


def leaf_keys() -> list[overrides.Key]:
    return [
        k
        for k in overrides.keys(Settings, raw_sample(), {})
        if not any(overrides.model_of(t) for t in overrides.options_of(k.annotation))
        and not (
            get_origin(k.annotation) is list
            and any(overrides.model_of(t) for t in get_args(k.annotation))
        )
        and not (get_origin(k.annotation) is dict and overrides.model_of(get_args(k.annotation)[1]))
    ]


@pytest.mark.parametrize("key", leaf_keys(), ids=lambda k: k.variable)
def test_every_key_is_overridden_by_its_variable_as_it_would_be_by_the_file(
    key: overrides.Key, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    baseline = value_at(load_settings(config, {}), key.path)
    for value, text in candidates(key, baseline):
        edited = tmp_path / "edited.toml"
        edited.write_text(tomli_w.dumps(put(raw_sample(), key.path, value)), encoding="utf-8")
        try:
            from_file = value_at(load_settings(edited, {}), key.path)
        except ConfigError:
            continue  # not an allowed value for this key; try the next
        if from_file == baseline:
            continue
        from_env = value_at(load_settings(config, {key.variable: text}), key.path)
        assert from_env == from_file
        return
    pytest.fail(f"no candidate value could change {key.dotted}; add one to the test")


def test_structured_sections_take_json(tmp_path: Path) -> None:
    raw = raw_sample()
    communes = raw["areas"]["communes"][:2]
    settings = load_settings(
        SAMPLE,
        {
            "BROADCASTER_AREAS_COMMUNES": json.dumps(communes),
            "BROADCASTER_SMS": json.dumps({"max_parts": 2}),
        },
    )
    assert [c.code for c in settings.areas.communes] == [c["code"] for c in communes]
    assert settings.sms.max_parts == 2


def test_the_variables_operators_already_use_keep_working() -> None:
    settings = load_settings(
        SAMPLE,
        {
            "BROADCASTER_STORAGE_URL": "postgresql+psycopg://u:p@db/broadcaster",
            "BROADCASTER_HTTP_BIND": "0.0.0.0:8081",
            "BROADCASTER_CARRIERS_VIETTEL_PASSWORD": "pw1",
            "BROADCASTER_AUDIO_TOKEN_SECRET": "tok",
            "BROADCASTER_SMS_MAX_PARTS": "3",
        },
    )
    assert settings.storage_url == "postgresql+psycopg://u:p@db/broadcaster"
    assert settings.http.bind == "0.0.0.0:8081"
    assert settings.carriers["viettel"].password.get_secret_value() == "pw1"
    assert settings.audio.token_secret is not None
    assert settings.audio.token_secret.get_secret_value() == "tok"
    assert settings.sms.max_parts == 3


def test_a_carrier_can_come_from_the_environment_alone() -> None:
    fields = {
        "HOST": "10.0.0.9",
        "PORT": "2775",
        "SYSTEM_ID": "dh",
        "PASSWORD": "pw",
        "SOURCE_ADDR": "DINHHOA",
        "RATE": "50",
        "WINDOW": "10",
        "PREFIXES": '["+8486"]',
    }
    env = {f"BROADCASTER_CARRIERS_NEW_CARRIER_{k}": v for k, v in fields.items()}
    carrier = load_settings(SAMPLE, env).carriers["new_carrier"]
    assert (carrier.host, carrier.port, carrier.system_id) == ("10.0.0.9", 2775, "dh")


def test_a_bad_value_names_the_variable_not_the_file() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            SAMPLE,
            {"BROADCASTER_SMS_MAX_PARTS": "lots", "BROADCASTER_CARRIERS_VIETTEL_PORT": "99999"},
        )
    problems = error.value.problems
    assert any(
        p.startswith("environment variable BROADCASTER_SMS_MAX_PARTS: sms.max_parts:")
        for p in problems
    ), problems
    assert any(
        p.startswith(
            "environment variable BROADCASTER_CARRIERS_VIETTEL_PORT: carriers.viettel.port:"
        )
        for p in problems
    ), problems
    assert not any(p.startswith(str(SAMPLE)) for p in problems)


def test_bad_json_names_the_variable() -> None:
    with pytest.raises(
        ConfigError,
        match="environment variable BROADCASTER_SMS_TEST_NUMBERS: sms.test_numbers takes JSON",
    ):
        load_settings(SAMPLE, {"BROADCASTER_SMS_TEST_NUMBERS": "0912345678"})


def test_secrets_come_from_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "carriers.viettel.password").write_text("fromcred\n")
    (tmp_path / "audio.token_secret").write_text("tokensecret")
    (tmp_path / "unrelated").write_text("ignored")
    settings = load_settings(SAMPLE, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert settings.carriers["viettel"].password.get_secret_value() == "fromcred"
    assert settings.audio.token_secret is not None
    assert settings.audio.token_secret.get_secret_value() == "tokensecret"


def test_the_environment_wins_over_a_credential_and_a_bad_credential_is_named(
    tmp_path: Path,
) -> None:
    (tmp_path / "carriers.viettel.password").write_text("fromcred")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "BROADCASTER_CARRIERS_VIETTEL_PASSWORD": "env"}
    assert load_settings(SAMPLE, env).carriers["viettel"].password.get_secret_value() == "env"
    (tmp_path / "carriers.viettel.password").write_text("much-too-long-for-smpp")
    with pytest.raises(
        ConfigError,
        match=f"credential {tmp_path}/carriers.viettel.password: carriers.viettel.password:",
    ):
        load_settings(SAMPLE, {"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_an_empty_credential_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "audio.token_secret").write_text("\n")
    with pytest.raises(
        ConfigError, match=f"credential {tmp_path}/audio.token_secret: the file is empty"
    ):
        load_settings(SAMPLE, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
