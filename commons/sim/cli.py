"""The ``commons node simulate`` command (registered in the ``node`` group of gateway/cli.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("simulate")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 200))
@click.option(
    "--duration",
    type=click.FloatRange(0),
    help="Seconds to run once the nodes are live (after any backfill); default: until Ctrl-C.",
)
@click.option(
    "--interval", default=60, show_default=True, type=click.IntRange(20, 86400),
    help="Seconds between readings, on the node's clock.",
)  # fmt: skip
@click.option(
    "--backfill", "backfill_hours", default=0.0, show_default=True,
    type=click.FloatRange(0, 24 * 14),
    help="Start the nodes' clocks this many hours ago; they replay the history fast, then go live.",
)  # fmt: skip
@click.option(
    "--speed", default=360.0, show_default=True, type=click.FloatRange(1, 3600),
    help="How much faster than real time the nodes' clocks run while backfilling.",
)  # fmt: skip
@click.option("--seed", default=1, show_default=True, help="Seeds the sites, air and sensor noise.")
@click.option(
    "--kind", default="air", show_default=True, type=click.Choice(["air", "noise"]),
    help="Air nodes (PM sensor, BME280) or noise nodes (INMP441 microphone), as "
    "hardware/<kind>-node/board.toml wires them.",
)  # fmt: skip
@click.option(
    "--mic", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Noise nodes hear this WAV recording (16/24/32-bit PCM at 44.1 or 48 kHz, looped) "
    "instead of synthetic street noise.",
)  # fmt: skip
@click.option(
    "--pm-sensor", default="sds011", show_default=True, type=click.Choice(["sds011", "pms5003"]),
    help="Which PM sensor the nodes have (on the board's UART pins).",
)  # fmt: skip
@click.option(
    "--wifi-outages", metavar="EVERY,FOR", default=None,
    help="Drop each node's Wi-Fi for FOR seconds every EVERY seconds (node time).",
)  # fmt: skip
@click.option(
    "--heap", metavar="SIZE", default=None,
    help="MicroPython heap of each node, e.g. 164K (default: twice the ESP32's 100K for the "
    "64-bit port, plus the emulation's 64K).",
)  # fmt: skip
def simulate(
    count: int,
    duration: float | None,
    interval: int,
    backfill_hours: float,
    speed: float,
    seed: int,
    kind: str,
    mic: Path | None,
    pm_sensor: str,
    wifi_outages: str | None,
    heap: str | None,
) -> None:
    """Run COUNT simulated nodes: the real firmware under the MicroPython unix port.

    Each node is a `micropython` process running firmware/main.py in its own folder under
    $COMMONS_HOME/sim/ (its flash), with emulated sensors wired as hardware/<kind>-node/board.toml
    says, against the local stack's broker. Noise nodes hear synthetic street noise (traffic by
    day, quiet nights, on the node's clock) or --mic FILE.wav; while backfilling, their
    emulated microphone hands out at most 4 times real time of audio (docs/noise-simulation.md).
    Nodes are restarted when their watchdog resets them; all are stopped at the end or on
    Ctrl-C, and a summary is printed (per node: readings published, lowest free heap
    reported, resets).
    """
    from commons.home import StackNotFoundError
    from commons.noise import NoiseInputError
    from commons.sim.run import SimulateOptions
    from commons.sim.run import simulate as run

    if mic is not None and kind != "noise":
        raise click.BadParameter("a recording needs --kind noise", param_hint="--mic")
    outages = None
    if wifi_outages is not None:
        try:
            every, down = (int(v) for v in wifi_outages.split(","))
        except ValueError:
            raise click.BadParameter(
                "expected EVERY,FOR in seconds", param_hint="--wifi-outages"
            ) from None
        if not 0 < down < every:
            raise click.BadParameter("FOR must be less than EVERY", param_hint="--wifi-outages")
        outages = (every, down)
    options = SimulateOptions(
        count=count,
        duration=duration,
        interval=interval,
        backfill_hours=backfill_hours,
        speed=speed,
        seed=seed,
        kind=kind,
        pm_sensor=pm_sensor,
        wifi_outages=outages,
        heap=heap,
        mic=mic,
    )
    try:
        run(options)
    except (StackNotFoundError, NoiseInputError) as exc:
        raise click.ClickException(str(exc)) from exc
