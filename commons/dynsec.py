"""Mosquitto's dynamic-security plugin: its first configuration file and its control API.

The broker keeps clients, roles and ACLs in a JSON file that the plugin itself rewrites on
every change. The project writes that file only once, before the broker first starts, holding
nothing but the admin client (as ``mosquitto_ctrl dynsec init`` would); everything after that
goes through the control API: JSON commands published to ``$CONTROL/dynamic-security/v1``,
answered on ``…/response``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN_ROLE = "dynsec-admin"
# The plugin's own default for clients it creates (plugins/dynamic-security in Mosquitto 2.0).
PBKDF2_ITERATIONS = 101
PBKDF2_SALT_BYTES = 12
COMMAND_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0

# Errors the plugin answers with (its exact texts), for the callers that expect them.
ALREADY_EXISTS = "already exists"
NOT_FOUND = "not found"


class BrokerUnreachableError(Exception):
    """The broker did not accept a connection (network, TLS, or credentials)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"broker mqtt://{host}:{port} not reachable: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class DynsecError(Exception):
    """The plugin refused a command; ``error`` is its own text."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynamic-security {command}: {error}")
        self.command = command
        self.error = error

    @property
    def already_exists(self) -> bool:
        return ALREADY_EXISTS in self.error.lower()

    @property
    def not_found(self) -> bool:
        return NOT_FOUND in self.error.lower()


@dataclass(frozen=True)
class Credentials:
    """An MQTT username and password."""

    username: str
    password: str

    @classmethod
    def generate(cls, username: str) -> Credentials:
        return cls(username, secrets.token_urlsafe(24))


@dataclass(frozen=True)
class Acl:
    """One ACL entry of a role, in the plugin's vocabulary.

    ``acltype``: publishClientSend, publishClientReceive, subscribeLiteral, subscribePattern,
    unsubscribeLiteral or unsubscribePattern. ``topic`` may use ``%u`` (username) and ``%c``
    (client id) as whole levels.
    """

    acltype: str
    topic: str
    allow: bool = True
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "acltype": self.acltype,
            "topic": self.topic,
            "allow": self.allow,
            "priority": self.priority,
        }


def hash_password(password: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The plugin's stored form: base64 of PBKDF2-HMAC-SHA512 over the decoded salt."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return base64.b64encode(digest).decode()


def initial_config(admin: Credentials) -> dict[str, Any]:
    """The plugin's first state: one admin client that may only use the control API."""
    salt = secrets.token_bytes(PBKDF2_SALT_BYTES)
    control = f"{CONTROL_TOPIC}/#"
    return {
        "clients": [
            {
                "username": admin.username,
                "textName": "Sensor Commons access administration",
                "password": hash_password(admin.password, salt),
                "salt": base64.b64encode(salt).decode(),
                "iterations": PBKDF2_ITERATIONS,
                "roles": [{"rolename": ADMIN_ROLE}],
            }
        ],
        "roles": [
            {
                "rolename": ADMIN_ROLE,
                "acls": [
                    Acl("publishClientSend", control).to_json(),
                    Acl("publishClientReceive", control).to_json(),
                    Acl("subscribePattern", control).to_json(),
                ],
            }
        ],
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


def write_initial_config(path: Path, admin: Credentials) -> None:
    """Create the plugin's state file (mode 0600) unless it exists: it is the broker's data."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = _open_private(tmp)
    with open(fd, "w") as out:
        json.dump(initial_config(admin), out, indent=2)
    tmp.replace(path)


def _open_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


class Dynsec:
    """A connection to the control API as an admin client; use as a context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        admin: Credentials,
        ca_file: Path | None = None,
        timeout: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._responses: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"commons-admin-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self._client.username_pw_set(admin.username, admin.password)
        if ca_file is not None:
            self._client.tls_set(ca_certs=str(ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_message = self._on_message

    def __enter__(self) -> Dynsec:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        ready = threading.Event()
        outcome: list[str] = []

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, rc: Any, props: object
        ) -> None:
            if rc.is_failure:
                outcome.append(f"refused: {rc}")
                ready.set()
                return
            client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(client: mqtt.Client, userdata: object, *args: object) -> None:
            ready.set()

        self._client.on_connect = on_connect
        self._client.on_subscribe = on_subscribe
        try:
            self._client.connect(self.host, self.port)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnreachableError(self.host, self.port, str(exc)) from None
        self._client.loop_start()
        if not ready.wait(CONNECT_TIMEOUT_S) or outcome:
            self.close()
            reason = outcome[0] if outcome else f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
            raise BrokerUnreachableError(self.host, self.port, reason)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self._answered:
            for response in body.get("responses", []):
                key = response.get("correlationData")
                if isinstance(key, str):
                    self._responses[key] = response
            self._answered.notify_all()

    def command(self, name: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return the plugin's answer; raise :class:`DynsecError`."""
        key = uuid.uuid4().hex
        payload = {"commands": [{"command": name, "correlationData": key, **fields}]}
        self._client.publish(CONTROL_TOPIC, json.dumps(payload), qos=1)
        with self._answered:
            if not self._answered.wait_for(lambda: key in self._responses, self.timeout):
                raise BrokerUnreachableError(
                    self.host, self.port, f"no answer to {name} within {self.timeout:.0f} s"
                )
            response = self._responses.pop(key)
        if "error" in response:
            raise DynsecError(name, str(response["error"]))
        data: dict[str, Any] = response.get("data", {})
        return data

    # -- the commands the project uses ------------------------------------------------

    def create_role(self, rolename: str, acls: list[Acl], text: str = "") -> bool:
        """Create a role; False if it existed already (it is then left as it is)."""
        try:
            self.command(
                "createRole",
                rolename=rolename,
                textname=text,
                acls=[acl.to_json() for acl in acls],
            )
        except DynsecError as exc:
            if exc.already_exists:
                return False
            raise
        return True

    def create_client(self, credentials: Credentials, roles: list[str], text: str = "") -> None:
        self.command(
            "createClient",
            username=credentials.username,
            password=credentials.password,
            textname=text,
            roles=[{"rolename": role} for role in roles],
        )

    def delete_client(self, username: str) -> None:
        """Delete a client; the broker drops its connection at once."""
        self.command("deleteClient", username=username)

    def set_password(self, credentials: Credentials) -> None:
        self.command(
            "setClientPassword", username=credentials.username, password=credentials.password
        )

    def get_client(self, username: str) -> dict[str, Any] | None:
        try:
            client: dict[str, Any] = self.command("getClient", username=username)["client"]
        except DynsecError as exc:
            if exc.not_found:
                return None
            raise
        return client

    def list_clients(self) -> list[dict[str, Any]]:
        """Every client with its roles."""
        clients: list[dict[str, Any]] = self.command("listClients", verbose=True)["clients"]
        return clients
