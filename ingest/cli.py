"""``commons db init`` and ``commons export``: the storage side's commands."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import NoReturn

import click

from commons.home import StackNotFoundError, load_stack
from ingest.influx import InfluxHTTP, InfluxQueryError

EXIT_NO_STACK = 2


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"commons: {message}", err=True)
    sys.exit(code)


def _influx() -> InfluxHTTP:
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
    influx = _influx()
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
@click.option("--node", default=None, metavar="ID", help="Only this node.")
@click.option("--area", default=None, metavar="NAME", help="Only this neighbourhood.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv"]),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Output file ('-' for standard output).",
)
@click.option(
    "--licence",
    default="ODbL-1.0",
    show_default=True,
    metavar="ID",
    help="SPDX identifier of the data licence written into the file.",
)
def export(
    start: datetime,
    end: datetime,
    node: str | None,
    area: str | None,
    fmt: str,
    out: str,
    licence: str,
) -> None:
    """Readings of [START, END) for planners, with licence and provenance in the header."""
    from ingest.export import export_csv

    if start >= end:
        raise click.BadParameter(
            f"{end.isoformat()} is not after --start {start.isoformat()}", param_hint="'--end'"
        )
    influx = _influx()
    try:
        # Atomic: a file is renamed into place only once the whole export is written.
        with click.open_file(out, "w", encoding="utf-8", atomic=out != "-") as stream:
            rows = export_csv(influx, stream, start, end, node, area, licence, progress=True)
    except BrokenPipeError:
        # The reader of standard output went away (| head): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except InfluxQueryError as exc:
        _fail(f"InfluxDB at {influx.url}: {exc}")
    finally:
        influx.close()
    where = "standard output" if out == "-" else out
    click.echo(f"exported {rows} rows ({fmt}) to {where}", err=True)
