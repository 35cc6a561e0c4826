"""``commons db init``: the database, its retention policies and the hourly downsampling.

Layout (InfluxDB 1.x, database ``commons``):

- ``raw`` (the DEFAULT retention policy, duration configurable, INF unless told otherwise):
  readings exactly as written.
- ``forever`` (INF): one point per node, area and hour in ``<measurement>_1h`` for ``air``,
  ``noise`` and ``node_status``, timestamped at the start of the hour.

Hourly fields, per measured field ``f`` of the contract:

- ``f``: the hour's aggregate, and ``f_count``: how many readings carried ``f`` (with the
  node's reporting interval this tells how complete the hour is).
- air, node_status: ``f`` is the arithmetic mean.
- noise: ``laeq`` is the energy mean weighted by each reading's duration,
  ``10·lg(Σ periodᵢ·10^(Lᵢ/10) / Σ periodᵢ)`` (REFERENCE.md §1.4), which is the exact hourly
  LAeq when the readings tile the hour. ``la10``, ``la50`` and ``la90`` are combined the same
  way: an approximation (the exact hourly percentile levels would need the LAF distribution,
  which nodes do not send), chosen because levels in dB are never averaged arithmetically.
  ``lafmax`` is the maximum, ``lafmin`` the minimum, ``period`` the sum (seconds covered).

The aggregates are computed by continuous queries ``cq_<measurement>_1h`` that run every hour
and resample the last :data:`CQ_RESAMPLE_FOR_H` hours. The noise query uses a subquery, which
InfluxDB 1.6 runs inside a continuous query (checked against the real server; the outer time
range is pushed into the subquery, so a run reads only its window). Readings that arrive later
than :data:`RESAMPLE_WINDOW_S` after their timestamp (replayed from a node's flash or the
gateway's queue) are covered by :func:`recompute_hours`, which runs the same SELECT ... INTO
over the given hours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.influx import InfluxHTTP, InfluxQueryError, quote_ident
from ingest.schema import (
    HOURLY_RP,
    HOURLY_SUFFIX,
    MEASURED_FIELDS,
    RAW_RETENTION_DEFAULT,
    RAW_RP,
)

log = logging.getLogger(__name__)

HOUR_S = 3600
# How far back each hourly run of a continuous query recomputes.
CQ_RESAMPLE_FOR_H = 6
# A reading written less than this long after its timestamp is covered by the next run of the
# continuous queries; an older one needs recompute_hours. The resample window less one hour
# (the run covers whole hours up to its start, the reading's hour may have just begun) and
# one hour of margin (a delayed run, clocks of gateway and server that differ).
RESAMPLE_WINDOW_S = (CQ_RESAMPLE_FOR_H - 2) * HOUR_S
# Longest time range of one recompute statement, so one statement stays bounded in memory
# and time however long the backfill.
RECOMPUTE_MAX_HOURS = 24
# InfluxDB refuses retention policies shorter than one hour.
MIN_RETENTION_S = HOUR_S

# Noise fields in dB that are combined as a duration-weighted energy mean.
ENERGY_MEAN_FIELDS = ("laeq", "la10", "la50", "la90")
NOISE_MAX_FIELDS = ("lafmax",)
NOISE_MIN_FIELDS = ("lafmin",)
NOISE_SUM_FIELDS = ("period",)
NOISE_DURATION_FIELD = "period"
NOISE_MEASUREMENT = "noise"
COUNT_SUFFIX = "_count"

_DURATION_UNITS_S = {
    "ns": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_PART = re.compile(r"(\d+)(ns|us|µs|u|µ|ms|s|m|h|d|w)")


class InvalidDurationError(ValueError):
    """A retention duration that is not an InfluxQL duration literal (or ``INF``)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{text!r}: {reason}")
        self.text = text
        self.reason = reason


class UnknownMeasurementError(ValueError):
    """A measurement that has no hourly aggregate."""

    def __init__(self, measurement: str) -> None:
        names = ", ".join(MEASURED_FIELDS)
        super().__init__(f"{measurement!r} has no hourly aggregate (one of {names})")
        self.measurement = measurement


def duration_seconds(text: str) -> float:
    """Seconds of an InfluxQL duration (``30d``, ``1h30m``, ``720h0m0s``); ``INF``/``0s`` → 0."""
    if text.strip().upper() == "INF":
        return 0.0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _DURATION_UNITS_S[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise InvalidDurationError(text, "expected INF or a duration such as 30d, 12w or 1h30m")
    return total


def shard_duration(retention_s: float) -> str:
    """InfluxDB's own default shard group duration for a retention of ``retention_s``.

    Given explicitly so that shortening ``raw`` later never leaves a shard group longer than
    the policy (which InfluxDB refuses).
    """
    if retention_s == 0 or retention_s > 180 * 86400:
        return "7d"
    if retention_s >= 2 * 86400:
        return "1d"
    return "1h"


def check_retention(text: str) -> str:
    """``text`` if it can be a retention policy's duration, else :class:`InvalidDurationError`."""
    seconds = duration_seconds(text)
    if 0 < seconds < MIN_RETENTION_S:
        raise InvalidDurationError(text, "a retention policy keeps data at least 1h (or INF)")
    return "INF" if seconds == 0 else text


# -- the hourly aggregate queries ---------------------------------------------------------


def hourly_measurement(measurement: str) -> str:
    return measurement + HOURLY_SUFFIX


def hourly_fields(measurement: str) -> tuple[str, ...]:
    """Field names of ``<measurement>_1h``: each measured field and its ``_count``."""
    if measurement not in MEASURED_FIELDS:
        raise UnknownMeasurementError(measurement)
    return tuple(
        name for field in MEASURED_FIELDS[measurement] for name in (field, field + COUNT_SUFFIX)
    )


def _select_lists(measurement: str) -> tuple[str, str | None]:
    """(outer select list, inner select list or None) of the hourly aggregate."""
    q = quote_ident
    if measurement != NOISE_MEASUREMENT:
        parts = []
        for field in MEASURED_FIELDS[measurement]:
            parts.append(f"mean({q(field)}) AS {q(field)}")
            parts.append(f"count({q(field)}) AS {q(field + COUNT_SUFFIX)}")
        return ", ".join(parts), None
    # Energy mean weighted by duration. The subquery turns each reading into its energy
    # (period·10^(L/10)) and its duration counted only where L exists (period + 0·L is null
    # where L is null), because InfluxQL aggregates take fields, not expressions.
    duration = q(NOISE_DURATION_FIELD)
    inner: list[str] = []
    outer: list[str] = []
    for field in MEASURED_FIELDS[measurement]:
        name, count_name = q(field), q(field + COUNT_SUFFIX)
        if field in ENERGY_MEAN_FIELDS:
            energy, seconds = q(f"{field}_energy"), q(f"{field}_seconds")
            inner.append(f"{duration} * pow(10, {name} / 10) AS {energy}")
            inner.append(f"{duration} + 0 * {name} AS {seconds}")
            outer.append(f"10 * log10(sum({energy}) / sum({seconds})) AS {name}")
            outer.append(f"count({energy}) AS {count_name}")
            continue
        if field in NOISE_MAX_FIELDS:
            function = "max"
        elif field in NOISE_MIN_FIELDS:
            function = "min"
        elif field in NOISE_SUM_FIELDS:
            function = "sum"
        else:  # a noise field added to the contract: say how to combine it here
            raise UnknownMeasurementError(f"{measurement}.{field}")
        inner.append(name)
        outer.append(f"{function}({name}) AS {name}")
        outer.append(f"count({name}) AS {count_name}")
    return ", ".join(outer), ", ".join(inner)


def aggregate_select(database: str, measurement: str, where: str = "") -> str:
    """``SELECT ... INTO forever.<m>_1h FROM raw.<m> [WHERE ...] GROUP BY time(1h), *``.

    The same statement is the body of the continuous query (without ``where``) and the
    recompute of explicit hours (with a time range in ``where``).
    """
    if measurement not in MEASURED_FIELDS:
        raise UnknownMeasurementError(measurement)
    q = quote_ident
    target = f"{q(database)}.{q(HOURLY_RP)}.{q(hourly_measurement(measurement))}"
    source = f"{q(database)}.{q(RAW_RP)}.{q(measurement)}"
    condition = f" WHERE {where}" if where else ""
    outer, inner = _select_lists(measurement)
    if inner is not None:
        # The same time range inside, explicitly, so the subquery never reads more.
        source = f"(SELECT {inner} FROM {source}{condition} GROUP BY *)"
    return f"SELECT {outer} INTO {target} FROM {source}{condition} GROUP BY time(1h), *"


def cq_name(measurement: str) -> str:
    return f"cq_{hourly_measurement(measurement)}"


def create_cq_statement(database: str, measurement: str) -> str:
    q = quote_ident
    return (
        f"CREATE CONTINUOUS QUERY {q(cq_name(measurement))} ON {q(database)} "
        f"RESAMPLE EVERY 1h FOR {CQ_RESAMPLE_FOR_H}h "
        f"BEGIN {aggregate_select(database, measurement)} END"
    )


# -- init -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    duration_s: float  # 0 = INF
    default: bool


def _retention_policies(influx: InfluxHTTP) -> dict[str, RetentionPolicy]:
    policies: dict[str, RetentionPolicy] = {}
    for series in influx.series(f"SHOW RETENTION POLICIES ON {quote_ident(influx.database)}"):
        columns = series["columns"]
        for values in series.get("values", []):
            row = dict(zip(columns, values, strict=True))
            policies[row["name"]] = RetentionPolicy(
                name=row["name"],
                duration_s=duration_seconds(row["duration"]),
                default=bool(row["default"]),
            )
    return policies


def _continuous_queries(influx: InfluxHTTP) -> set[str]:
    names: set[str] = set()
    for series in influx.series("SHOW CONTINUOUS QUERIES"):
        if series.get("name") != influx.database:
            continue
        column = series["columns"].index("name")
        names.update(values[column] for values in series.get("values", []))
    return names


def _databases(influx: InfluxHTTP) -> set[str]:
    series = influx.series("SHOW DATABASES")
    return {values[0] for entry in series for values in entry.get("values", [])}


def init_database(influx: InfluxHTTP, raw_retention: str = RAW_RETENTION_DEFAULT) -> list[str]:
    """Create or bring up to date the database, retention policies and continuous queries.

    Idempotent: it looks first and changes only what differs. Returns the statements that
    changed the server (empty when it already matched). A continuous query whose definition
    changed is dropped and created again.
    """
    raw_retention = check_retention(raw_retention)
    raw_seconds = duration_seconds(raw_retention)
    raw_shards = shard_duration(raw_seconds)
    q = quote_ident
    db = q(influx.database)
    done: list[str] = []

    def run(statement: str) -> None:
        log.info("%s", statement)
        influx.execute(statement)
        done.append(statement)

    if influx.database not in _databases(influx):
        # Created with ``raw`` as its default policy, so no unused ``autogen`` appears.
        run(
            f"CREATE DATABASE {db} WITH DURATION {raw_retention} REPLICATION 1 "
            f"SHARD DURATION {raw_shards} NAME {q(RAW_RP)}"
        )
    policies = _retention_policies(influx)
    raw = policies.get(RAW_RP)
    if raw is None:
        run(
            f"CREATE RETENTION POLICY {q(RAW_RP)} ON {db} "
            f"DURATION {raw_retention} REPLICATION 1 SHARD DURATION {raw_shards} DEFAULT"
        )
    elif raw.duration_s != raw_seconds or not raw.default:
        run(
            f"ALTER RETENTION POLICY {q(RAW_RP)} ON {db} "
            f"DURATION {raw_retention} SHARD DURATION {raw_shards} DEFAULT"
        )
    hourly = policies.get(HOURLY_RP)
    if hourly is None:
        run(f"CREATE RETENTION POLICY {q(HOURLY_RP)} ON {db} DURATION INF REPLICATION 1")
    elif hourly.duration_s != 0:
        run(f"ALTER RETENTION POLICY {q(HOURLY_RP)} ON {db} DURATION INF")

    existing = _continuous_queries(influx)
    for measurement in MEASURED_FIELDS:
        statement = create_cq_statement(influx.database, measurement)
        name = cq_name(measurement)
        if name not in existing:
            run(statement)
            continue
        # InfluxDB accepts re-creating an identical continuous query and refuses a
        # different one under the same name: the server itself compares the definitions.
        try:
            influx.execute(statement)
        except InfluxQueryError as exc:
            if "already exists" not in exc.message:
                raise
            run(f"DROP CONTINUOUS QUERY {q(name)} ON {db}")
            run(statement)
    return done


# -- recompute --------------------------------------------------------------------------


def hour_start(ts: int) -> int:
    return ts - ts % HOUR_S


def hour_ranges(hours: Iterable[int], max_hours: int = RECOMPUTE_MAX_HOURS) -> list[range]:
    """Hour starts (floored to the hour) grouped into contiguous ranges of at most ``max_hours``.

    Each range is ``range(start, end, 3600)``: ``end`` is the first second after it.
    """
    starts = sorted({hour_start(int(h)) for h in hours})
    ranges: list[range] = []
    first = previous = None
    for start in starts:
        if first is None or previous is None:
            first = previous = start
            continue
        if start == previous + HOUR_S and (start - first) // HOUR_S < max_hours:
            previous = start
            continue
        ranges.append(range(first, previous + HOUR_S, HOUR_S))
        first = previous = start
    if first is not None and previous is not None:
        ranges.append(range(first, previous + HOUR_S, HOUR_S))
    return ranges


def recompute_statements(database: str, measurement: str, hours: Iterable[int]) -> list[str]:
    """One SELECT ... INTO per contiguous range of hours."""
    return [
        aggregate_select(database, measurement, f"time >= {r.start}s AND time < {r.stop}s")
        for r in hour_ranges(hours)
    ]


def recompute_hours(influx: InfluxHTTP, measurement: str, hours: Iterable[int]) -> None:
    """Rewrite ``forever.<measurement>_1h`` for the hours starting at ``hours`` (epoch s).

    Values are floored to their hour start, so the timestamps of late readings can be passed
    as they are. Contiguous hours share one statement. Hours without readings are left alone.
    """
    for statement in recompute_statements(influx.database, measurement, hours):
        log.debug("%s", statement)
        influx.execute(statement)
