"""Node accounts: MQTT credentials on the broker plus the registry entry, made and revoked together.

``commons node add|remove|list``, the demo and the tests all go through :class:`NodeAdmin`, so a
node that can publish is always a registered node and the other way round. ``add`` also writes
the node's provisioning file, ``$COMMONS_HOME/nodes/<id>.json`` (mode 0600), in the firmware's
``config.json`` format::

    {"node_id": "esp32-a1b2c3",
     "wifi": {"ssid": "...", "password": "..."},        only when given to ``add``
     "broker": {"host": "192.168.1.2", "port": 1883, "user": "esp32-a1b2c3",
                "password": "...", "tls": false}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons import access
from commons.dynsec import Credentials, Dynsec
from commons.home import StackInfo
from commons.tlsgen import ca_fingerprint, write_private
from ingest.registry import (
    DEFAULT_GRID_M,
    Location,
    Node,
    Registry,
    RegistryError,
    check_area,
    check_hardware,
    check_node_id,
)

NODES_DIR = "nodes"


class NodeExistsError(Exception):
    """The node has credentials already."""

    def __init__(self, node_id: str) -> None:
        super().__init__(
            f"node {node_id!r} already exists (has MQTT credentials); "
            f"'commons node remove {node_id}' first to issue new ones"
        )
        self.node_id = node_id


class UnknownNodeError(Exception):
    """Neither the registry nor the broker knows the node."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"unknown node {node_id!r}: not registered and no MQTT credentials")
        self.node_id = node_id


@dataclass(frozen=True)
class Wifi:
    ssid: str
    password: str


@dataclass(frozen=True)
class Hardware:
    """What a node measures ("air", "noise") and its PM sensor, as the operator gives them."""

    kinds: tuple[str, ...]
    pm_sensor: str | None = None


@dataclass(frozen=True)
class NodeAccount:
    """What a new node needs to connect: its credentials and where the broker is."""

    node_id: str
    area: str | None
    credentials: Credentials
    host: str
    port: int
    tls_port: int | None
    ca_file: Path | None
    config_file: Path

    @property
    def topic_prefix(self) -> str:
        return access.node_topic_prefix(self.node_id)

    def to_json(self) -> dict[str, Any]:
        mqtt: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.credentials.username,
            "password": self.credentials.password,
            "topic_prefix": self.topic_prefix,
        }
        if self.tls_port is not None and self.ca_file is not None:
            mqtt["tls"] = {
                "port": self.tls_port,
                "ca_file": str(self.ca_file),
                "ca_sha256": ca_fingerprint(self.ca_file),
            }
        return {
            "node_id": self.node_id,
            "area": self.area,
            "mqtt": mqtt,
            "config_file": str(self.config_file),
        }

    def device_config(self, wifi: Wifi | None) -> dict[str, Any]:
        """The firmware's ``config.json`` (see ``firmware/config.py``)."""
        config: dict[str, Any] = {"node_id": self.node_id}
        if wifi is not None:
            config["wifi"] = {"ssid": wifi.ssid, "password": wifi.password}
        config["broker"] = {
            "host": self.host,
            "port": self.port,
            "user": self.credentials.username,
            "password": self.credentials.password,
            "tls": False,  # the firmware has no TLS yet; the CA is in the add output
        }
        return config


@dataclass(frozen=True)
class NodeEntry:
    node_id: str
    area: str | None
    registered: bool
    credentials: bool | None  # None: the broker could not be asked
    location: Location | None = None  # exact: the operator's eyes only
    public: Location | None = None
    kinds: tuple[str, ...] = ()
    pm_sensor: str | None = None


class NodeAdmin:
    """Adds, removes and lists nodes on the local stack's broker and registry."""

    def __init__(self, stack: StackInfo, registry_path: Path | None = None) -> None:
        self.stack = stack
        self.registry_path = registry_path or stack.home / "registry.sqlite"
        self.nodes_dir = stack.home / NODES_DIR

    def _dynsec(self) -> Dynsec:
        admin = self.stack.mqtt.admin
        if admin is None:
            raise access.AccessNotConfiguredError(self.stack.home)
        return Dynsec(
            self.stack.mqtt.host,
            self.stack.mqtt.port,
            Credentials(admin.username, admin.password()),
        )

    def add(
        self,
        node_id: str,
        area: str | None = None,
        host: str | None = None,
        wifi: Wifi | None = None,
        location: Location | None = None,
        grid_m: float = DEFAULT_GRID_M,
        hardware: Hardware | None = None,
    ) -> NodeAccount:
        """Credentials on the broker, the registry entry, the provisioning file.

        A node registered earlier without credentials keeps its entry (its area and location
        are updated when given).
        """
        check_node_id(node_id)
        if area is not None:
            check_area(area)
        with self._dynsec() as dynsec:
            try:
                credentials = access.add_node(dynsec, node_id)
            except access.ClientExistsError:
                raise NodeExistsError(node_id) from None
            try:
                area = self._register(node_id, area, location, grid_m, hardware)
            except BaseException:
                access.remove_client(dynsec, node_id)
                raise
        account = self._account(node_id, area, credentials, host)
        self._write_config(account, wifi)
        return account

    def ensure(
        self,
        node_id: str,
        area: str | None = None,
        location: Location | None = None,
        grid_m: float = DEFAULT_GRID_M,
        hardware: Hardware | None = None,
    ) -> Credentials:
        """The node's credentials: new ones, or those in its provisioning file if it exists.

        A node with credentials but no file gets a new password (for the demo's nodes,
        which come back on every run).
        """
        try:
            return self.add(
                node_id, area, location=location, grid_m=grid_m, hardware=hardware
            ).credentials
        except NodeExistsError:
            pass
        self._register(node_id, area, location, grid_m, hardware)
        config_file = self.nodes_dir / f"{node_id}.json"
        try:
            broker = json.loads(config_file.read_text())["broker"]
            return Credentials(str(broker["user"]), str(broker["password"]))
        except (OSError, ValueError, KeyError):
            pass
        credentials = Credentials.generate(node_id)
        with self._dynsec() as dynsec:
            dynsec.set_password(credentials)
        account = self._account(node_id, area, credentials, None)
        self._write_config(account, None)
        return credentials

    def _account(
        self, node_id: str, area: str | None, credentials: Credentials, host: str | None
    ) -> NodeAccount:
        return NodeAccount(
            node_id=node_id,
            area=area,
            credentials=credentials,
            host=host or self.stack.mqtt.host,
            port=self.stack.mqtt.port,
            tls_port=self.stack.mqtt.tls_port,
            ca_file=self.stack.mqtt.ca_file,
            config_file=self.nodes_dir / f"{node_id}.json",
        )

    def _write_config(self, account: NodeAccount, wifi: Wifi | None) -> None:
        self.nodes_dir.mkdir(mode=0o700, exist_ok=True)
        text = json.dumps(account.device_config(wifi), indent=2) + "\n"
        write_private(account.config_file, text.encode())

    def _register(
        self,
        node_id: str,
        area: str | None,
        location: Location | None = None,
        grid_m: float = DEFAULT_GRID_M,
        hardware: Hardware | None = None,
    ) -> str | None:
        """Add the node to the registry, or keep its entry; return its area."""
        if hardware is not None:
            check_hardware(hardware.kinds, hardware.pm_sensor)
        with Registry(self.registry_path) as registry:
            try:
                added = registry.add(node_id, area, location, grid_m).area
                if hardware is not None:
                    registry.set_hardware(node_id, hardware.kinds, hardware.pm_sensor)
                return added
            except RegistryError:
                known = {node.id: node.area for node in registry.nodes()}
                if node_id not in known:
                    raise
                if hardware is not None:
                    registry.set_hardware(node_id, hardware.kinds, hardware.pm_sensor)
                if location is not None:
                    registry.set_location(node_id, location, grid_m)
                if area is None:
                    return known[node_id]
                registry.set_area(node_id, area)
                return area

    def locate(
        self, node_id: str, location: Location | None, grid_m: float = DEFAULT_GRID_M
    ) -> Node:
        """Move a node (or forget where it is); its public location follows."""
        with Registry(self.registry_path) as registry:
            return registry.set_location(node_id, location, grid_m)

    def describe(
        self,
        node_id: str,
        area: str | None = None,
        kinds: tuple[str, ...] | None = None,
        pm_sensor: str | None = None,
        interval: float | None = None,
    ) -> Node:
        """Change what the registry says of a node; what is not given stays as it was."""
        with Registry(self.registry_path) as registry:
            node = registry.node(node_id)
            if area is not None:
                registry.set_area(node_id, area)
            if kinds is not None or pm_sensor is not None:
                registry.set_hardware(
                    node_id,
                    node.kinds if kinds is None else kinds,
                    node.pm_sensor if pm_sensor is None else pm_sensor,
                )
            if interval is not None:
                registry.set_interval(node_id, interval)
            return registry.node(node_id)

    def remove(self, node_id: str) -> None:
        """Revoke the credentials (the node's connection is dropped now) and unregister it."""
        with self._dynsec() as dynsec:
            had_credentials = access.remove_client(dynsec, node_id)
        registry = Registry(self.registry_path)
        try:
            registry.remove(node_id)
            registered = True
        except RegistryError:
            registered = False
        finally:
            registry.close()
        (self.nodes_dir / f"{node_id}.json").unlink(missing_ok=True)
        if not (had_credentials or registered):
            raise UnknownNodeError(node_id)

    def list(self, ask_broker: bool = True) -> list[NodeEntry]:
        with Registry(self.registry_path) as registry:
            known = {node.id: node for node in registry.nodes()}
        with_credentials: set[str] | None = None
        if ask_broker:
            with self._dynsec() as dynsec:
                with_credentials = access.node_clients(dynsec)
        names = sorted(set(known) | (with_credentials or set()))
        return [
            NodeEntry(
                node_id=name,
                area=known[name].area if name in known else None,
                registered=name in known,
                credentials=None if with_credentials is None else name in with_credentials,
                location=known[name].location if name in known else None,
                public=known[name].public if name in known else None,
                kinds=known[name].kinds if name in known else (),
                pm_sensor=known[name].pm_sensor if name in known else None,
            )
            for name in names
        ]
