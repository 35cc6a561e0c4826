"""``commons report``: a planner's report of one area over one period, as HTML or PDF."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from commons.home import StackNotFoundError, commons_home, load_stack

EXIT_NO_STACK = 2
EXIT_NO_CHROMIUM = 3
REGISTRY_FILE = "registry.sqlite"


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"commons: {message}", err=True)
    sys.exit(code)


def _iso_time(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is local time in ``--tz``, which
    is applied once the zone is known (see :func:`report`)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-05-01 or 2026-05-01T06:00Z)",
            ctx=ctx,
            param=param,
        ) from None


@click.command()
@click.option(
    "--area", required=True, metavar="NAME", help="The neighbourhood (from the registry)."
)
@click.option(
    "--start",
    required=True,
    callback=_iso_time,
    metavar="ISO-8601",
    help="First instant, included (local time in --tz unless an offset is given).",
)
@click.option(
    "--end",
    required=True,
    callback=_iso_time,
    metavar="ISO-8601",
    help="End instant, excluded (local time in --tz unless an offset is given).",
)
@click.option(
    "--tz",
    "tz_name",
    default=None,
    metavar="ZONE",
    help="IANA time zone of days and the daily cycle (default: $COMMONS_TZ, export.toml, UTC).",
)
@click.option("--licence", default=None, metavar="ID", help="SPDX id of the data licence.")
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The node registry (default: $COMMONS_HOME/registry.sqlite).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="report.html or report.pdf.",
)
def report(
    area: str,
    start: datetime,
    end: datetime,
    tz_name: str | None,
    licence: str | None,
    registry_path: Path | None,
    out: Path,
) -> None:
    """A report of AREA over [START, END) for planners: summary, plots and tables."""
    from commons.settings import ConfigError
    from ingest.exportconfig import ExportSettings, UnknownTimeZoneError, time_zone
    from ingest.influx import InfluxHTTP, InfluxQueryError
    from ingest.registry import Registry
    from ingest.report import (
        ChromiumMissingError,
        PdfError,
        ReportError,
        ReportRequest,
        UnknownFormatError,
        write_report,
    )

    if out.suffix.lower() not in (".html", ".pdf"):
        raise click.BadParameter(str(UnknownFormatError(out)), param_hint="'--out'")
    try:
        settings = ExportSettings.load()
        tz = time_zone(tz_name) if tz_name is not None else settings.tz
    except UnknownTimeZoneError as exc:
        raise click.BadParameter(str(exc), param_hint="'--tz'") from None
    except ConfigError as exc:
        _fail(str(exc), 2)
    start_at = (start if start.tzinfo else start.replace(tzinfo=tz)).astimezone(UTC)
    end_at = (end if end.tzinfo else end.replace(tzinfo=tz)).astimezone(UTC)
    if start_at >= end_at:
        raise click.BadParameter(
            f"the period is empty: {end.isoformat()} is not after --start {start.isoformat()}",
            param_hint="'--end'",
        )
    try:
        stack = load_stack()
    except StackNotFoundError as exc:
        _fail(str(exc), EXIT_NO_STACK)
    if not stack.influx.url:
        _fail(f"no InfluxDB is described in {stack.home / 'stack.json'}", EXIT_NO_STACK)
    registry_file = registry_path or commons_home() / REGISTRY_FILE
    if not registry_file.exists():
        _fail(f"no node registry at {registry_file}: register nodes with 'commons node add'")
    request = ReportRequest(
        area=area,
        start=start_at,
        end=end_at,
        tz=tz,
        licence=licence or settings.licence,
        attribution=settings.attribution,
    )
    influx = InfluxHTTP(stack.influx.url, stack.influx.database)
    try:
        with Registry(registry_file) as registry:
            data = write_report(influx, registry, request, out)
    except ChromiumMissingError as exc:
        _fail(str(exc), EXIT_NO_CHROMIUM)
    except (ReportError, PdfError) as exc:
        _fail(str(exc))
    except InfluxQueryError as exc:
        _fail(f"InfluxDB at {influx.url}: {exc}")
    finally:
        influx.close()
    nodes = len({*data.air_nodes, *data.noise_nodes})
    click.echo(
        f"report of {area} ({nodes} nodes, {len(data.days)} days) written to {out}", err=True
    )
