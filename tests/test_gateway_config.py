"""Gateway configuration: defaults from the local stack, secrets, errors naming key and file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commons.settings import ConfigError
from gateway.config import GatewaySettings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "stack.json").write_text(
        json.dumps(
            {
                "mqtt": {"host": "127.0.0.1", "port": 18830},
                "influx": {"url": "http://127.0.0.1:18086", "database": "commons"},
            }
        )
    )
    monkeypatch.setenv("COMMONS_HOME", str(home))
    monkeypatch.delenv("COMMONS_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("COMMONS_INFLUX_PASSWORD", raising=False)
    return home


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_defaults_come_from_the_local_stack(home: Path) -> None:
    settings = GatewaySettings.load(None)
    assert settings.mqtt.port == 18830
    assert settings.influx.url == "http://127.0.0.1:18086"
    assert settings.queue_path == home / "gateway" / "queue.sqlite"
    assert settings.mqtt.client_id == f"commons-gateway-{settings.gateway_id}"


def test_file_values_override_the_stack(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, '[gateway]\nid = "gw-x"\n[influx]\nbatch_size = 100\n')
    settings = GatewaySettings.load(path)
    assert settings.gateway_id == "gw-x"
    assert settings.influx.batch_size == 100
    assert settings.mqtt.port == 18830


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[mqtt]\nhostt = 'x'\n", "mqtt.hostt", "unknown key"),
        ("[mqtts]\nhost = 'x'\n", "mqtts", "unknown table"),
        ("[mqtt]\nport = '1883'\n", "mqtt.port", "expected int"),
        ("[mqtt]\nport = 70000\n", "mqtt.port", "not a TCP port"),
        ("[influx]\nbatch_size = 0\n", "influx.batch_size", "must be positive"),
        ("[influx]\nrecompute_late_hours = 1\n", "influx.recompute_late_hours", "expected bool"),
        ("[gateway]\nstatus_interval = true\n", "gateway.status_interval", "expected float"),
        ("[mqtt]\npassword_file = '/nonexistent/secret'\n", "mqtt.password_file", "cannot read"),
        ("mqtt = 3\n", "mqtt", "expected a table"),
        ("[mqtt\n", "-", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_the_file(
    home: Path, tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.load(path)
    assert caught.value.key == key
    assert caught.value.path == path
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


def test_secrets_from_environment_then_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    path = _write(tmp_path, f'[mqtt]\nusername = "gw"\npassword_file = "{secret}"\n')
    assert GatewaySettings.load(path).mqtt.password == "from-file"
    monkeypatch.setenv("COMMONS_MQTT_PASSWORD", "from-env")
    assert GatewaySettings.load(path).mqtt.password == "from-env"


def test_no_stack_and_no_address_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMONS_HOME", str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.load(None)
    assert "commons stack up" in str(caught.value)


def test_the_example_configuration_loads(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMONS_MQTT_PASSWORD", "x")
    monkeypatch.setenv("COMMONS_INFLUX_PASSWORD", "y")
    example = Path(__file__).parent.parent / "docs" / "gateway.example.toml"
    settings = GatewaySettings.load(example)
    assert settings.gateway_id == "gw-riverside"
    assert settings.influx.password == "y"
