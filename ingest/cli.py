"""``commons db init`` and ``commons export``: the storage side's commands."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from zoneinfo import ZoneInfo

import click

from commons.home import StackNotFoundError, commons_home, load_stack
from ingest.influx import InfluxHTTP, InfluxQueryError

if TYPE_CHECKING:
    from ingest.calibration import Calibrations
    from ingest.export import ExportRequest, Format, Level
    from ingest.exportconfig import ExportSettings
    from ingest.registry import Registry
    from ingest.selection import BBox

EXIT_NO_STACK = 2


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"commons: {message}", err=True)
    sys.exit(code)


def influx_or_exit() -> InfluxHTTP:
    """The local stack's InfluxDB, or exit 2 with the reason."""
    try:
        stack = load_stack()
    except StackNotFoundError as exc:
        _fail(str(exc), EXIT_NO_STACK)
    if not stack.influx.url:  # a gateway's broker home: the InfluxDB is elsewhere
        _fail(f"no InfluxDB is described in {stack.home / 'stack.json'}", EXIT_NO_STACK)
    return InfluxHTTP(stack.influx.url, stack.influx.database)


def _iso_time(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """An ISO 8601 date or date-time; without a UTC offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T06:00Z)",
            ctx=ctx,
            param=param,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- db ---------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """The InfluxDB database: retention policies and hourly downsampling."""


@db.command("init")
@click.option(
    "--raw-retention",
    default="INF",
    show_default=True,
    metavar="DURATION",
    help="How long raw readings are kept (INF or an InfluxQL duration: 90d, 52w, 1h30m).",
)
def db_init(raw_retention: str) -> None:
    """Create the database, its retention policies and continuous queries (idempotent)."""
    from ingest.dbinit import InvalidDurationError, check_retention, init_database

    try:
        check_retention(raw_retention)
    except InvalidDurationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--raw-retention'") from None
    influx = influx_or_exit()
    try:
        statements = init_database(influx, raw_retention)
    except InfluxQueryError as exc:
        _fail(f"InfluxDB at {influx.url}: {exc}")
    finally:
        influx.close()
    if not statements:
        click.echo(f"database {influx.database} is up to date: nothing to do")
    for statement in statements:
        click.echo(statement)


# -- export -----------------------------------------------------------------------------


def _registry(home: Path) -> Registry | None:
    """The local registry, if there is one (an export never creates it)."""
    from ingest.registry import Registry

    path = home / "registry.sqlite"
    return Registry(path) if path.exists() else None


def _tz_option(ctx: click.Context, param: click.Parameter, value: str | None) -> ZoneInfo | None:
    from ingest.exportconfig import UnknownTimeZoneError, time_zone

    if value is None:
        return None
    try:
        return time_zone(value)
    except UnknownTimeZoneError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _bbox_option(ctx: click.Context, param: click.Parameter, value: str | None) -> BBox | None:
    from ingest.selection import BadBBoxError, BBox

    if value is None:
        return None
    try:
        return BBox.parse(value)
    except BadBBoxError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def export_settings(
    config: Path | None, tz: ZoneInfo | None, licence: str | None
) -> ExportSettings:
    """Settings from the export configuration with the command line's overrides (exit 2 on a
    bad configuration)."""
    from commons.settings import ConfigError
    from ingest.exportconfig import ExportSettings

    try:
        return ExportSettings.load(config).overridden(tz=tz, licence=licence)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _load_calibrations() -> Calibrations:
    from commons.settings import ConfigError
    from ingest.calibration import load

    try:
        return load()
    except ConfigError as exc:
        _fail(str(exc), 2)


FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "geojson", "parquet"]),
    default=None,
    help="csv (spreadsheets), geojson (GIS: one feature per node), parquet (analysts); "
    "default: from the --out suffix (.parquet, .geojson or .json), else csv.",
)
SUFFIX_FORMATS = {".parquet": "parquet", ".geojson": "geojson", ".json": "geojson"}


def output_format(fmt: str | None, out: str) -> Format:
    """The format asked for, or the one the output file's name says (exit 2 for Parquet to
    standard output)."""
    if fmt is None:
        fmt = SUFFIX_FORMATS.get(Path(out).suffix.lower(), "csv") if out != "-" else "csv"
    if fmt == "parquet" and out == "-":
        raise click.BadParameter("parquet cannot go to standard output", param_hint="'--out'")
    assert fmt in ("csv", "geojson", "parquet")
    return fmt  # type: ignore[return-value]


CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Export settings (default: $COMMONS_HOME/export.toml, if present).",
)


@click.command()
@click.option(
    "--start",
    required=True,
    callback=_iso_time,
    metavar="ISO-8601",
    help="First instant, included (UTC unless an offset is given).",
)
@click.option(
    "--end",
    required=True,
    callback=_iso_time,
    metavar="ISO-8601",
    help="End instant, excluded (UTC unless an offset is given).",
)
@click.option("--node", "nodes", multiple=True, metavar="ID", help="Only this node (repeatable).")
@click.option("--area", default=None, metavar="NAME", help="Only this neighbourhood.")
@click.option(
    "--bbox",
    default=None,
    callback=_bbox_option,
    metavar="MINLON,MINLAT,MAXLON,MAXLAT",
    help="Only nodes whose public location is in this box (degrees, WGS 84).",
)
@click.option(
    "--measurement",
    type=click.Choice(["air", "noise"]),
    default=None,
    help="Only this measurement (default: both).",
)
@click.option(
    "--aggregate",
    "level",
    type=click.Choice(["raw", "hourly", "daily"]),
    default="raw",
    show_default=True,
    help="Readings as stored, or hourly / daily means with completeness.",
)
@click.option(
    "--indicators",
    is_flag=True,
    help="Add AQI, NowCast, European AQI band, WHO/EU exceedances, Lden (hourly/daily).",
)
@click.option(
    "--tz",
    default=None,
    callback=_tz_option,
    metavar="ZONE",
    help="Time zone of days, noise periods and written times "
    "(default: $COMMONS_TZ, else export.toml's tz, else UTC).",
)
@FORMAT_OPTION
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Output file ('-' for standard output: csv and geojson, no sidecar).",
)
@click.option(
    "--licence",
    default=None,
    metavar="ID",
    help="SPDX identifier of the data licence (default: export.toml's, else ODbL-1.0).",
)
@CONFIG_OPTION
def export(
    start: datetime,
    end: datetime,
    nodes: tuple[str, ...],
    area: str | None,
    bbox: BBox | None,
    measurement: str | None,
    level: Level,
    indicators: bool,
    tz: ZoneInfo | None,
    fmt: str | None,
    out: str,
    licence: str | None,
    config: Path | None,
) -> None:
    """Readings of [START, END), or their hourly/daily means, for planners.

    Every export carries its licence, attribution, query, software and calibration versions,
    time zone and generation time: in the file where the format has room, and always in
    FILE.meta.json beside it.
    """
    from ingest.export import READING_MEASUREMENTS, ExportRequest
    from ingest.selection import Selection, SelectionError

    if start >= end:
        raise click.BadParameter(
            f"{end.isoformat()} is not after --start {start.isoformat()}", param_hint="'--end'"
        )
    if indicators and level == "raw":
        raise click.BadParameter(
            "indicators are computed from means: add --aggregate hourly or daily",
            param_hint="'--indicators'",
        )
    settings = export_settings(config, tz, licence)
    measurements = (measurement,) if measurement else READING_MEASUREMENTS
    try:
        selection = Selection(start, end, measurements, nodes, area, bbox)
    except SelectionError as exc:
        _fail(str(exc), 2)
    request = ExportRequest(selection, output_format(fmt, out), level, indicators)
    run_export(request, settings, out)


def run_export(request: ExportRequest, settings: ExportSettings, out: str) -> None:
    """Run an export against the local stack and say what was written (shared with
    ``commons node export``)."""
    from ingest.export import export as write_export
    from ingest.selection import SelectionError

    influx = influx_or_exit()
    home = commons_home()
    registry = _registry(home)
    calibrations = _load_calibrations()
    try:
        if out == "-":
            result = write_export(
                influx,
                registry,
                request,
                settings,
                calibrations,
                None,
                stdout=sys.stdout,
                progress=True,
            )
        else:
            result = write_export(
                influx, registry, request, settings, calibrations, Path(out), progress=True
            )
    except BrokenPipeError:
        # The reader of standard output went away (| head): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except SelectionError as exc:
        _fail(str(exc), 2)
    except InfluxQueryError as exc:
        _fail(f"InfluxDB at {influx.url}: {exc}")
    finally:
        influx.close()
        if registry is not None:
            registry.close()
    where = "standard output" if result.out is None else str(result.out)
    sidecar = "" if result.sidecar is None else f"; provenance in {result.sidecar}"
    click.echo(
        f"exported {result.rows} rows of {result.nodes} nodes ({request.fmt}, "
        f"{request.level}) to {where}{sidecar}",
        err=True,
    )
