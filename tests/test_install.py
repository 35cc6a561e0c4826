"""The Raspberry Pi install script, run into a scratch root (no services are started)."""

from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.config import GatewaySettings

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "install-gateway.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="useradd into a root needs root")


def _scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\n")
    for name, text in (("shadow", "root:*:19000:0:99999:7:::\n"), ("gshadow", "root:*::\n")):
        (etc / name).write_text(text)
        (etc / name).chmod(0o600)
    (etc / "gshadow").write_text("root:*::\ndialout:*::\n")
    return root


def _install(root: Path) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--no-apt", "--no-venv"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_creates_user_folders_config_and_services(tmp_path: Path) -> None:
    root = _scratch_root(tmp_path)
    _install(root)
    user = next(
        line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.startswith("commons:")
    )
    assert user[5] == "/var/lib/sensor-commons"
    assert user[6] == "/usr/sbin/nologin"
    assert "dialout:x:20:commons" in (root / "etc/group").read_text()
    uid, gid = int(user[2]), int(user[3])

    for folder, mode, owner in (
        ("etc/sensor-commons", 0o750, 0),
        ("etc/sensor-commons/secrets", 0o750, 0),
        ("var/lib/sensor-commons", 0o750, uid),
        ("var/log/sensor-commons", 0o750, uid),
    ):
        path = root / folder
        assert _mode(path) == mode, folder
        assert path.stat().st_uid == owner, folder
        assert path.stat().st_gid == gid, folder
    for config in ("gateway.toml", "broker.toml"):
        path = root / "etc/sensor-commons" / config
        assert _mode(path) == 0o640
        assert path.stat().st_gid == gid

    for unit in ("sensor-commons-broker.service", "sensor-commons-gateway.service"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(root / "etc/systemd/system" / unit)
        service = parser["Service"]
        assert service["User"] == "commons"
        assert service["ExecStart"].startswith("/opt/sensor-commons/bin/commons ")
        assert "/var/lib/sensor-commons" in service["ReadWritePaths"]
        assert parser["Install"]["WantedBy"] == "multi-user.target"
    assert (root / "etc/logrotate.d/sensor-commons").exists()


def test_a_second_install_keeps_edited_configuration(tmp_path: Path) -> None:
    root = _scratch_root(tmp_path)
    _install(root)
    config = root / "etc/sensor-commons/gateway.toml"
    config.write_text(config.read_text() + "\n# edited by a volunteer\n")
    out = _install(root)
    assert "kept /etc/sensor-commons/gateway.toml" in out
    assert config.read_text().endswith("# edited by a volunteer\n")
    users = (root / "etc/passwd").read_text().splitlines()
    assert sum(line.startswith("commons:") for line in users) == 1


def test_the_installed_gateway_configuration_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "var-lib"
    home.mkdir()
    (home / "stack.json").write_text(
        json.dumps(
            {
                "mqtt": {"host": "127.0.0.1", "port": 1883},
                "influx": {"url": "http://127.0.0.1:8086", "database": "commons"},
            }
        )
    )
    monkeypatch.setenv("COMMONS_HOME", str(home))
    monkeypatch.setenv("COMMONS_INFLUX_PASSWORD", "secret")
    settings = GatewaySettings.load(REPO / "deploy" / "gateway.toml")
    assert settings.queue_path == Path("/var/lib/sensor-commons/gateway/queue.sqlite")
    assert settings.influx.url == "https://influx.example.org"
    assert settings.mqtt.port == 1883
