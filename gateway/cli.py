"""``commons gateway …`` and ``commons node …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from commons.home import commons_home
from commons.settings import ConfigError


@click.group()
def gateway() -> None:
    """The gateway service: MQTT → durable queue → InfluxDB."""


@gateway.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Gateway TOML file (default: the local stack in $COMMONS_HOME).",
)
def gateway_run(config_path: Path | None) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    from gateway.config import GatewaySettings
    from gateway.service import Gateway

    try:
        settings = GatewaySettings.load(config_path)
    except ConfigError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(2)
    service = Gateway(settings)
    service.install_signal_handlers()
    service.run()


@gateway.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dead-letters", default=0, show_default=True, help="Also list the newest N.")
def gateway_status(config_path: Path | None, dead_letters: int) -> None:
    """Counters of the gateway's queue (read from its database, the service may be stopped)."""
    from gateway.config import GatewaySettings
    from gateway.queue import DurableQueue

    try:
        settings = GatewaySettings.load(config_path)
    except ConfigError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(2)
    queue = DurableQueue(settings.queue_path)
    try:
        report: dict[str, object] = dict(queue.counters())
        oldest = queue.oldest_received()
        report["oldest_received"] = oldest
        if dead_letters:
            report["dead_letters"] = [
                {
                    "received": d.received,
                    "stage": d.stage,
                    "topic": d.topic,
                    "payload": (d.payload or b"").decode("utf-8", "replace"),
                    "reason": d.reason,
                }
                for d in queue.dead_letters(dead_letters)
            ]
    finally:
        queue.close()
    click.echo(json.dumps(report, indent=2))


@click.group()
def node() -> None:
    """The node registry: which nodes exist and their neighbourhoods."""


def _registry_path() -> Path:
    return commons_home() / "registry.sqlite"


@node.command("add")
@click.argument("node_id")
@click.option("--area", help="Neighbourhood the node belongs to.")
def node_add(node_id: str, area: str | None) -> None:
    """Register NODE_ID (lowercase [a-z0-9-], 3-32 characters)."""
    from ingest.registry import Registry, RegistryError

    registry = Registry(_registry_path())
    try:
        added = registry.add(node_id, area)
    except RegistryError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(2)
    finally:
        registry.close()
    click.echo(json.dumps({"node": added.id, "area": added.area}))


@node.command("remove")
@click.argument("node_id")
def node_remove(node_id: str) -> None:
    """Remove NODE_ID from the registry."""
    from ingest.registry import Registry, RegistryError

    registry = Registry(_registry_path())
    try:
        registry.remove(node_id)
    except RegistryError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(2)
    finally:
        registry.close()
    click.echo(f"removed {node_id}")


@node.command("list")
@click.option("--json", "as_json", is_flag=True)
def node_list(as_json: bool) -> None:
    """List registered nodes."""
    from ingest.registry import Registry

    registry = Registry(_registry_path())
    try:
        nodes = registry.nodes()
    finally:
        registry.close()
    if as_json:
        click.echo(json.dumps([{"node": n.id, "area": n.area} for n in nodes], indent=2))
        return
    for n in nodes:
        click.echo(f"{n.id:32} {n.area or '-'}")


@node.command("provision")
@click.argument("node_id")
@click.option("--port", "port", required=True, help="The node's USB serial device.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file to write (default: $COMMONS_HOME/nodes/NODE_ID.json).",
)
@click.option("--baudrate", default=115200, show_default=True)
def node_provision(node_id: str, port: str, config_path: Path | None, baudrate: int) -> None:
    """Write NODE_ID's config.json onto a MicroPython node over USB serial, and verify it."""
    from gateway.provision import provision_command

    provision_command(node_id, port, config_path, baudrate)
