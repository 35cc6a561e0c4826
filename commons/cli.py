"""The ``commons`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

import click

from commons import __version__
from commons.home import commons_home


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"commons: {message}", err=True)
    sys.exit(code)


# Subcommands of other packages, imported only when run or listed: the gateway process must
# not load what only ``db`` and ``export`` need (the HTTP client behind ingest.influx costs
# about 20 MB of resident memory).
LAZY_COMMANDS = {
    "gateway": "gateway.cli:gateway",
    "node": "gateway.cli:node",
    "db": "ingest.cli:db",
    "export": "ingest.cli:export",
    "report": "ingest.report.cli:report",
    "noise": "commons.noise:noise",
    "dashboards": "dashboards.cli:dashboards",
}


class LazyGroup(click.Group):
    """A group whose ``LAZY_COMMANDS`` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, name = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="commons")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail to standard error.")
def main(verbose: bool) -> None:
    """Sensor Commons: community-owned air-quality and noise sensing.

    Every command that talks to the local stack finds it through $COMMONS_HOME
    (default ./.commons).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# -- broker ------------------------------------------------------------------------------


@main.group()
def broker() -> None:
    """The gateway's MQTT broker as a system service (see docs/install-raspberry-pi.md)."""


@broker.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="broker.toml (default: port 1883 on all addresses, TLS on 8883).",
)
def broker_run(config_path: Path | None) -> None:
    """Run Mosquitto in the foreground with per-node access control, under $COMMONS_HOME."""
    from commons.broker import BrokerSettings, run
    from commons.settings import ConfigError
    from commons.stack import MissingBinaryError, ServiceStartError

    try:
        settings = BrokerSettings.load(config_path)
        sys.exit(run(settings, commons_home()))
    except ConfigError as exc:
        _fail(str(exc), 2)
    except MissingBinaryError as exc:
        _fail(str(exc), 3)
    except ServiceStartError as exc:
        _fail(str(exc), 1)


# -- stack -------------------------------------------------------------------------------


@main.group()
def stack() -> None:
    """A local Mosquitto and InfluxDB for development, demos and tests."""


@stack.command("up")
def stack_up() -> None:
    """Start whichever service is not running and wait until both answer."""
    from commons.stack import MissingBinaryError, ServiceStartError, Stack

    try:
        info = Stack(commons_home()).up()
    except MissingBinaryError as exc:
        _fail(str(exc), 3)
    except ServiceStartError as exc:
        _fail(str(exc), 1)
    else:
        click.echo(f"mqtt   mqtt://{info.mqtt.host}:{info.mqtt.port}")
        if info.mqtt.tls_port is not None:
            click.echo(
                f"mqtts  mqtts://{info.mqtt.host}:{info.mqtt.tls_port} (CA {info.mqtt.ca_file})"
            )
        click.echo(f"influx {info.influx.url} (database {info.influx.database})")
        click.echo(f"stack  {info.home / 'stack.json'}")


@stack.command("down")
def stack_down() -> None:
    """Stop the processes 'stack up' started (data is kept)."""
    from commons.stack import Stack

    stopped = Stack(commons_home()).down()
    click.echo("stopped " + (", ".join(stopped) if stopped else "nothing (not running)"))


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stack_status(as_json: bool) -> None:
    """Show whether each service runs and answers; exit 1 unless both do."""
    from commons.stack import Stack

    status = Stack(commons_home()).status()
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        for name, entry in status.items():
            state = "up" if entry.get("answers") else ("starting" if entry["running"] else "down")
            pid = entry.get("pid") or "-"
            click.echo(f"{name:10} {state:8} pid {pid!s:8} {entry.get('address', '')}")
    if not all(entry.get("answers") for entry in status.values()):
        sys.exit(1)


@main.command()
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after S seconds.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Seconds between live readings of each noise node (its period; air nodes: 60 s).",
)
def demo(duration: float | None, interval: float) -> None:
    """The whole pipeline on this machine: stack, gateway, nodes with a day of history, export."""
    from commons.demo import run_demo
    from commons.stack import MissingBinaryError

    try:
        run_demo(duration, interval)
    except MissingBinaryError as exc:
        _fail(str(exc), 3)


__all__ = ["Path", "main"]
