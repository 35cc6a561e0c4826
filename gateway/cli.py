"""``commons gateway …`` and ``commons node …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from commons.home import commons_home
from commons.settings import ConfigError
from ingest.registry import KINDS, PM_SENSORS

if TYPE_CHECKING:
    from gateway.nodes import NodeAdmin
    from ingest.registry import Location


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gateway_status(config_path: Path | None, dead_letters: int, as_json: bool) -> None:
    """The gateway's health: queue, counters, alarm, uplink, nodes last seen.

    Reads the queue database (works while the service is stopped) and, when the broker
    answers, the status the running gateway keeps retained.
    """
    from gateway.config import GatewaySettings
    from gateway.report import format_report, gather

    try:
        settings = GatewaySettings.load(config_path)
    except ConfigError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(2)
    report = gather(settings, dead_letters)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


# Exit codes of ``commons node``: what a script needs to tell apart.
EXIT_CONFLICT = 1  # the node exists already (add) or is unknown (remove)
EXIT_INVALID = 2  # a bad node id or area (as click's usage errors)
EXIT_UNREACHABLE = 3  # no local stack, or its broker does not answer the admin


@click.group()
def node() -> None:
    """Nodes: MQTT credentials on the broker and the registry of neighbourhoods.

    Exit codes: 0 done, 1 the node exists already / is unknown, 2 bad id or area,
    3 no local stack or broker not reachable.
    """


def _node_admin() -> NodeAdmin:
    from commons.home import StackNotFoundError, load_stack
    from gateway.nodes import NodeAdmin

    try:
        return NodeAdmin(load_stack(commons_home()))
    except StackNotFoundError as exc:
        _fail(str(exc), EXIT_UNREACHABLE)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"commons: {message}", err=True)
    sys.exit(code)


def _location(lat: float | None, lon: float | None) -> Location | None:
    from ingest.registry import Location

    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        _fail("give both --lat and --lon", EXIT_INVALID)
    return Location(lat, lon)


_LAT = click.option("--lat", type=float, help="Exact latitude (WGS 84, private).")
_LON = click.option("--lon", type=float, help="Exact longitude (WGS 84, private).")
_GRID = click.option(
    "--grid",
    "grid_m",
    type=float,
    default=100.0,
    show_default=True,
    help="Side in metres of the grid cell whose centre is published instead.",
)

_KINDS = click.option(
    "--kind",
    "kinds",
    type=click.Choice(list(KINDS)),
    multiple=True,
    help="What the node measures (repeat for both); dashboards and QA follow it.",
)
_PM_SENSOR = click.option(
    "--pm-sensor",
    type=click.Choice(list(PM_SENSORS)),
    help="Its PM sensor: storage-side QA uses that sensor's thresholds.",
)


@node.command("add")
@click.argument("node_id")
@click.option("--area", help="Neighbourhood the node belongs to.")
@_LAT
@_LON
@_GRID
@_KINDS
@_PM_SENSOR
@click.option("--host", help="Broker address the node connects to (default: the stack's).")
@click.option("--wifi-ssid", help="Wi-Fi network written into the node's config file.")
@click.option(
    "--wifi-password",
    envvar="COMMONS_WIFI_PASSWORD",
    help="Its password (or $COMMONS_WIFI_PASSWORD).",
)
def node_add(
    node_id: str,
    area: str | None,
    host: str | None,
    wifi_ssid: str | None,
    wifi_password: str | None,
    lat: float | None,
    lon: float | None,
    grid_m: float,
    kinds: tuple[str, ...],
    pm_sensor: str | None,
) -> None:
    """Create NODE_ID's MQTT credentials and register it (id: lowercase [a-z0-9-], 3-32).

    Prints JSON with the node's MQTT username, password, broker and topic prefix, and the
    CA to pin for TLS; writes the node's config file ($COMMONS_HOME/nodes/NODE_ID.json,
    mode 0600) for provisioning. The exact location stays in the registry; only the centre
    of its --grid cell is ever published.
    """
    from commons.access import AccessNotConfiguredError
    from commons.dynsec import BrokerUnreachableError
    from gateway.nodes import Hardware, NodeExistsError, Wifi
    from ingest.registry import RegistryError

    admin = _node_admin()
    wifi = Wifi(wifi_ssid, wifi_password or "") if wifi_ssid else None
    try:
        hardware = Hardware(kinds, pm_sensor) if kinds or pm_sensor else None
        account = admin.add(
            node_id,
            area,
            host=host,
            wifi=wifi,
            location=_location(lat, lon),
            grid_m=grid_m,
            hardware=hardware,
        )
    except RegistryError as exc:
        _fail(str(exc), EXIT_INVALID)
    except NodeExistsError as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except (BrokerUnreachableError, AccessNotConfiguredError) as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    click.echo(json.dumps(account.to_json(), indent=2))


@node.command("remove")
@click.argument("node_id")
def node_remove(node_id: str) -> None:
    """Revoke NODE_ID's credentials (its connection is dropped at once) and unregister it."""
    from commons.access import AccessNotConfiguredError
    from commons.dynsec import BrokerUnreachableError
    from gateway.nodes import UnknownNodeError

    admin = _node_admin()
    try:
        admin.remove(node_id)
    except UnknownNodeError as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except (BrokerUnreachableError, AccessNotConfiguredError) as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    click.echo(f"removed {node_id}")


@node.command("locate")
@click.argument("node_id")
@_LAT
@_LON
@_GRID
@click.option("--clear", is_flag=True, help="Forget the node's location.")
def node_locate(
    node_id: str, lat: float | None, lon: float | None, grid_m: float, clear: bool
) -> None:
    """Set (or --clear) where NODE_ID is; prints its exact and public location as JSON."""
    from ingest.registry import RegistryError

    location = None if clear else _location(lat, lon)
    if location is None and not clear:
        _fail("give --lat and --lon, or --clear", EXIT_INVALID)
    admin = _node_admin()
    try:
        placed = admin.locate(node_id, location, grid_m)
    except RegistryError as exc:
        code = EXIT_CONFLICT if "not registered" in str(exc) else EXIT_INVALID
        _fail(str(exc), code)
    click.echo(json.dumps(_where(placed.location, placed.public, placed.grid_m), indent=2))


def _where(
    location: Location | None, public: Location | None, grid_m: float | None = None
) -> dict[str, object]:
    where: dict[str, object] = {
        "location": None if location is None else {"lat": location.lat, "lon": location.lon},
        "public": None if public is None else {"lat": public.lat, "lon": public.lon},
    }
    if grid_m is not None:
        where["grid_m"] = grid_m
    return where


@node.command("set")
@click.argument("node_id")
@click.option("--area", help="Move the node to this neighbourhood.")
@_KINDS
@_PM_SENSOR
@click.option("--interval", type=float, help="Its reporting interval in seconds.")
def node_set(
    node_id: str,
    area: str | None,
    kinds: tuple[str, ...],
    pm_sensor: str | None,
    interval: float | None,
) -> None:
    """Change what the registry says of NODE_ID (area, kinds, PM sensor, interval); prints it."""
    from ingest.registry import RegistryError

    if area is None and not kinds and pm_sensor is None and interval is None:
        _fail("nothing to change: give --area, --kind, --pm-sensor or --interval", EXIT_INVALID)
    admin = _node_admin()
    try:
        changed = admin.describe(node_id, area, kinds or None, pm_sensor, interval)
    except RegistryError as exc:
        code = EXIT_CONFLICT if "not registered" in str(exc) else EXIT_INVALID
        _fail(str(exc), code)
    click.echo(
        json.dumps(
            {
                "node": changed.id,
                "area": changed.area,
                "kinds": list(changed.kinds),
                "pm_sensor": changed.pm_sensor,
                "interval": changed.interval,
            },
            indent=2,
        )
    )


@node.command("list")
@click.option("--json", "as_json", is_flag=True)
def node_list(as_json: bool) -> None:
    """List nodes: area, and whether they hold MQTT credentials.

    If the broker does not answer, the registry is listed with credentials unknown ('?').
    """
    from commons.access import AccessNotConfiguredError
    from commons.dynsec import BrokerUnreachableError

    admin = _node_admin()
    try:
        nodes = admin.list()
    except (BrokerUnreachableError, AccessNotConfiguredError) as exc:
        click.echo(f"commons: warning: {exc}; credentials unknown", err=True)
        nodes = admin.list(ask_broker=False)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "node": n.node_id,
                        "area": n.area,
                        "registered": n.registered,
                        "credentials": n.credentials,
                        "kinds": list(n.kinds),
                        "pm_sensor": n.pm_sensor,
                        **_where(n.location, n.public),
                    }
                    for n in nodes
                ],
                indent=2,
            )
        )
        return
    for n in nodes:
        creds = {True: "credentials", False: "no-credentials", None: "?"}[n.credentials]
        registered = "" if n.registered else "  (not in the registry)"
        public = f"{n.public.lat:.5f},{n.public.lon:.5f}" if n.public else "-"
        click.echo(f"{n.node_id:32} {n.area or '-':20} {public:22} {creds}{registered}")


# ``commons node simulate``: simulated nodes running the real firmware (commons/sim).
from commons.sim.cli import simulate as _simulate  # noqa: E402

node.add_command(_simulate)


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


# -- owners' rights: take or erase a node's data (implementation: ingest/owner.py) ---------


@node.command("export")
@click.argument("node_id")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Output file ('-' for standard output: csv and geojson, no sidecar).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "geojson", "parquet"]),
    default=None,
    help="Default: from the --out suffix (.parquet, .geojson or .json), else csv.",
)
def node_export(node_id: str, out: str, fmt: str | None) -> None:
    """Everything NODE_ID ever sent (air, noise, status; raw, first to last), for its owner."""
    from ingest.cli import export_settings, output_format, run_export
    from ingest.owner import node_export_request
    from ingest.registry import RegistryError

    try:
        request = node_export_request(node_id, output_format(fmt, out))
    except RegistryError as exc:
        _fail(str(exc), EXIT_INVALID)
    run_export(request, export_settings(None, None, None), out)


@node.command("forget")
@click.argument("node_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def node_forget(node_id: str, yes: bool) -> None:
    """Erase NODE_ID: all its data in InfluxDB, its registry entry and its credentials.

    Says what was deleted, per retention policy and measurement. Credentials are revoked
    when the broker answers; otherwise it says so ('commons node remove' later).
    """
    from commons.access import AccessNotConfiguredError
    from commons.dynsec import BrokerUnreachableError
    from gateway.nodes import UnknownNodeError
    from ingest.cli import influx_or_exit
    from ingest.influx import InfluxQueryError
    from ingest.owner import DataLeftError, forget, stored_points
    from ingest.registry import Registry, RegistryError, check_node_id

    try:
        check_node_id(node_id)
    except RegistryError as exc:
        _fail(str(exc), EXIT_INVALID)
    admin = _node_admin()
    influx = influx_or_exit()
    try:
        stored = stored_points(influx, node_id)
        with Registry(admin.registry_path) as registry:
            registered = node_id in {n.id for n in registry.nodes()}
        total = sum(s.points for s in stored)
        click.echo(
            f"node {node_id}: {total} points in InfluxDB{'' if registered else ', not registered'}"
        )
        for s in stored:
            click.echo(f"  {s.retention_policy}.{s.measurement}: {s.points}")
        if not yes and not click.confirm(
            f"Delete all data of {node_id}, its registry entry and credentials?", default=False
        ):
            _fail("nothing deleted", EXIT_CONFLICT)
        revoked = True
        try:
            admin.remove(node_id)
        except UnknownNodeError:
            if not stored:
                _fail(str(UnknownNodeError(node_id)) + " and no data in InfluxDB", EXIT_CONFLICT)
        except (BrokerUnreachableError, AccessNotConfiguredError) as exc:
            revoked = False
            click.echo(f"commons: warning: credentials not revoked: {exc}", err=True)
            with Registry(admin.registry_path) as registry:
                if registered:
                    registry.remove(node_id)
            (admin.nodes_dir / f"{node_id}.json").unlink(missing_ok=True)
        deleted = forget(influx, node_id)
    except DataLeftError as exc:
        _fail(str(exc), 1)
    except InfluxQueryError as exc:
        _fail(f"InfluxDB at {influx.url}: {exc}", EXIT_UNREACHABLE)
    finally:
        influx.close()
    for s in deleted:
        click.echo(f"deleted {s.retention_policy}.{s.measurement}: {s.points} points")
    click.echo(
        f"forgot {node_id}: {sum(s.points for s in deleted)} points"
        + (", registry entry" if registered else "")
        + (", credentials revoked" if revoked else ", credentials NOT revoked (broker unreachable)")
    )
