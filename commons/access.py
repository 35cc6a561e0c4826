"""Who may do what on the broker: the project's roles, made through the control API.

Mosquitto 2.0's dynamic-security plugin has no ``%u``/``%c`` substitution in ACL topics, so
every node and every gateway gets a role of its own, named after it, created and deleted with
its client:

- ``node:<id>`` — publish ``commons/v1/<id>/+`` (readings, status, last will); no subscription
  at all (the plugin's default denies subscribing and publishing).
- ``gateway:<id>`` — subscribe ``commons/v1/+/+`` (every node's messages) and its own status
  topic; publish only ``commons/v1/gateway/<id>/status``. It cannot publish readings.
- ``monitor`` — read-only for dashboards and monitoring: subscribe ``commons/v1/#`` and
  ``$SYS/#``, publish nothing.

A node's MQTT username is its node id; a gateway's is its gateway id.
"""

from __future__ import annotations

import socket

from commons.contract import SUBSCRIPTION, gateway_status_topic
from commons.dynsec import Acl, Credentials, Dynsec, DynsecError

NODE_ROLE_PREFIX = "node:"
GATEWAY_ROLE_PREFIX = "gateway:"
MONITOR_ROLE = "monitor"
TOPIC_ROOT = "commons/v1"


class ClientExistsError(Exception):
    """A client of that name exists on the broker already."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username!r} already has MQTT credentials")
        self.username = username


class AccessNotConfiguredError(Exception):
    """The local stack predates access control: it has no admin account yet."""

    def __init__(self, home: object) -> None:
        super().__init__(f"the stack in {home} has no MQTT admin account: run 'commons stack up'")
        self.home = home


def default_gateway_id() -> str:
    """The host's name, as a gateway id: lowercase letters, digits and dashes, at most 32."""
    name = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower())
    return (name.strip("-") or "gateway")[:32]


def node_topic_prefix(node_id: str) -> str:
    return f"{TOPIC_ROOT}/{node_id}/"


def node_acls(node_id: str) -> list[Acl]:
    return [Acl("publishClientSend", f"{node_topic_prefix(node_id)}+")]


def gateway_acls(gateway_id: str) -> list[Acl]:
    status = gateway_status_topic(gateway_id)
    return [
        Acl("subscribePattern", SUBSCRIPTION),
        Acl("subscribePattern", status),
        Acl("publishClientReceive", SUBSCRIPTION),
        Acl("publishClientReceive", status),
        Acl("publishClientSend", status),
    ]


MONITOR_ACLS = [
    Acl("subscribePattern", f"{TOPIC_ROOT}/#"),
    Acl("publishClientReceive", f"{TOPIC_ROOT}/#"),
    Acl("subscribePattern", "$SYS/#"),
    Acl("publishClientReceive", "$SYS/#"),
]


def ensure_shared_roles(dynsec: Dynsec) -> None:
    dynsec.create_role(MONITOR_ROLE, MONITOR_ACLS, "read-only: dashboards, monitoring")


def _add(
    dynsec: Dynsec, credentials: Credentials, role: str, acls: list[Acl], text: str
) -> Credentials:
    if dynsec.get_client(credentials.username) is not None:
        raise ClientExistsError(credentials.username)
    dynsec.create_role(role, acls, text)
    try:
        dynsec.create_client(credentials, [role], text)
    except DynsecError as exc:
        if exc.already_exists:
            raise ClientExistsError(credentials.username) from None
        raise
    return credentials


def add_node(dynsec: Dynsec, node_id: str, password: str | None = None) -> Credentials:
    """A client for ``node_id`` (username = node id) that may publish only as that node."""
    credentials = Credentials(node_id, password) if password else Credentials.generate(node_id)
    return _add(dynsec, credentials, NODE_ROLE_PREFIX + node_id, node_acls(node_id), "node")


def add_gateway(dynsec: Dynsec, gateway_id: str, password: str | None = None) -> Credentials:
    credentials = (
        Credentials(gateway_id, password) if password else Credentials.generate(gateway_id)
    )
    role = GATEWAY_ROLE_PREFIX + gateway_id
    return _add(dynsec, credentials, role, gateway_acls(gateway_id), "gateway")


def add_monitor(dynsec: Dynsec, username: str) -> Credentials:
    ensure_shared_roles(dynsec)
    credentials = Credentials.generate(username)
    if dynsec.get_client(username) is not None:
        raise ClientExistsError(username)
    dynsec.create_client(credentials, [MONITOR_ROLE], "monitor")
    return credentials


def remove_client(dynsec: Dynsec, username: str) -> bool:
    """Delete the client (its connection is dropped at once) and its own role, if any.

    Returns whether the client existed.
    """
    client = dynsec.get_client(username)
    if client is not None:
        dynsec.delete_client(username)
    for role in (NODE_ROLE_PREFIX + username, GATEWAY_ROLE_PREFIX + username):
        try:
            dynsec.command("deleteRole", rolename=role)
        except DynsecError as exc:
            if not exc.not_found:
                raise
    return client is not None


def node_clients(dynsec: Dynsec) -> set[str]:
    """Usernames of the clients that hold a node role."""
    names = set()
    for client in dynsec.list_clients():
        roles = {role.get("rolename", "") for role in client.get("roles", [])}
        if any(role.startswith(NODE_ROLE_PREFIX) for role in roles):
            names.add(str(client["username"]))
    return names
