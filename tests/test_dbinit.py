"""``ingest.dbinit``: retention policies, continuous queries and the recompute of late hours.

The integration tests run against the real InfluxDB of the local stack; each writes readings of
nodes whose ids are unique to it, so they share the ``commons`` database safely.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from commons.contract import Kind, Reading
from commons.home import StackInfo
from commons.procs import wait_until
from ingest.dbinit import (
    CQ_RESAMPLE_FOR_H,
    HOUR_S,
    InvalidDurationError,
    aggregate_select,
    check_retention,
    cq_name,
    duration_seconds,
    hour_ranges,
    hourly_fields,
    init_database,
    recompute_hours,
    recompute_statements,
)
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.schema import HOURLY_RP, MEASURED_FIELDS, RAW_RP, to_line

DAY_S = 86400


def energy_mean(levels: list[float], periods: list[float] | None = None) -> float:
    periods = periods or [1.0] * len(levels)
    energy = sum(p * 10 ** (level / 10) for level, p in zip(levels, periods, strict=True))
    return 10 * math.log10(energy / sum(periods))


def unique_node() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def hour_ago(hours: int) -> int:
    now = int(time.time())
    return now - now % HOUR_S - hours * HOUR_S


def hourly(influx: InfluxHTTP, measurement: str, node: str) -> dict[int, dict[str, Any]]:
    """The hourly points of one node, by hour start."""
    q = (
        f"SELECT * FROM {quote_ident(influx.database)}.{quote_ident(HOURLY_RP)}."
        f"{quote_ident(measurement + '_1h')} WHERE {quote_ident('node')} = {quote_string(node)}"
    )
    points: dict[int, dict[str, Any]] = {}
    for series in influx.series(q):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            points[row["time"]] = row
    return points


@pytest.fixture
def influx(stack: StackInfo) -> Iterator[InfluxHTTP]:
    client = InfluxHTTP(stack.influx.url, stack.influx.database, retention_policy=RAW_RP)
    init_database(client)
    yield client
    client.close()


@pytest.fixture
def scratch_db(stack: StackInfo) -> Iterator[InfluxHTTP]:
    """A database of its own, for tests that change retention policies or queries."""
    client = InfluxHTTP(stack.influx.url, f"scratch_{uuid.uuid4().hex[:10]}")
    yield client
    client.execute(f"DROP DATABASE {quote_ident(client.database)}")
    client.close()


def write(influx: InfluxHTTP, readings: list[Reading], area: str | None = "test-area") -> None:
    result = influx.write([to_line(r, area) for r in readings])
    assert result.status == 204, result


def air(node: str, ts: int, **values: float) -> Reading:
    return Reading(node=node, kind=Kind.AIR, ts=ts, seq=ts, fw="1.0.0", flags=(), values=values)


def noise(node: str, ts: int, **values: float) -> Reading:
    return Reading(node=node, kind=Kind.NOISE, ts=ts, seq=ts, fw="1.0.0", flags=(), values=values)


# -- pure ---------------------------------------------------------------------------------


def test_durations_parse_as_influxql_and_as_show_output() -> None:
    assert duration_seconds("INF") == 0
    assert duration_seconds("0s") == 0
    assert duration_seconds("30d") == 30 * DAY_S
    assert duration_seconds("720h0m0s") == 30 * DAY_S
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("2w") == 14 * DAY_S
    assert check_retention("inf") == "INF"
    for bad in ("", "30", "d", "30 d", "30x", "1h 30m", "-1d"):
        with pytest.raises(InvalidDurationError):
            duration_seconds(bad)
    with pytest.raises(InvalidDurationError, match="at least 1h"):
        check_retention("30m")


def test_hours_are_floored_deduplicated_and_grouped_into_contiguous_ranges() -> None:
    h = 1_700_002_800  # an hour start
    hours = [h + 5 * HOUR_S, h, h + HOUR_S + 59, h + 2 * HOUR_S, h, h + 7 * HOUR_S]
    ranges = hour_ranges(hours)
    assert [(r.start, r.stop) for r in ranges] == [
        (h, h + 3 * HOUR_S),
        (h + 5 * HOUR_S, h + 6 * HOUR_S),
        (h + 7 * HOUR_S, h + 8 * HOUR_S),
    ]
    assert hour_ranges([]) == []


def test_long_runs_of_hours_are_split_to_bound_each_statement() -> None:
    h = 1_700_002_800
    ranges = hour_ranges([h + i * HOUR_S for i in range(50)], max_hours=24)
    assert [len(r) for r in ranges] == [24, 24, 2]
    assert ranges[0].stop == ranges[1].start


def test_one_statement_per_range_with_its_half_open_time_range() -> None:
    h = 1_700_002_800
    statements = recompute_statements("commons", "air", [h, h + HOUR_S, h + 5 * HOUR_S])
    assert len(statements) == 2
    assert (
        f"WHERE time >= {h}s AND time < {h + 2 * HOUR_S}s GROUP BY time(1h), *" in (statements[0])
    )
    assert 'INTO "commons"."forever"."air_1h" FROM "commons"."raw"."air"' in statements[0]


def test_hourly_fields_are_each_field_and_its_count() -> None:
    assert hourly_fields("air")[:4] == ("pm1", "pm1_count", "pm2_5", "pm2_5_count")
    assert set(hourly_fields("noise")) == {
        name for f in MEASURED_FIELDS["noise"] for name in (f, f + "_count")
    }


# -- against the real server ----------------------------------------------------------------


@pytest.mark.integration
def test_init_creates_policies_and_queries_and_is_idempotent(scratch_db: InfluxHTTP) -> None:
    first = init_database(scratch_db)
    assert first[0].startswith(f'CREATE DATABASE "{scratch_db.database}"')
    assert init_database(scratch_db) == []

    (series,) = scratch_db.series("SHOW RETENTION POLICIES")
    policies = {row[0]: dict(zip(series["columns"], row, strict=True)) for row in series["values"]}
    assert set(policies) == {RAW_RP, HOURLY_RP}
    assert policies[RAW_RP]["default"] is True
    assert policies[RAW_RP]["duration"] == "0s"
    assert policies[HOURLY_RP]["duration"] == "0s"

    queries = {
        name: text
        for series in scratch_db.series("SHOW CONTINUOUS QUERIES")
        if series["name"] == scratch_db.database
        for name, text in series.get("values", [])
    }
    assert set(queries) == {cq_name(m) for m in MEASURED_FIELDS}
    for measurement in MEASURED_FIELDS:
        text = queries[cq_name(measurement)]
        assert f"RESAMPLE EVERY 1h FOR {CQ_RESAMPLE_FOR_H}h" in text
        assert f"INTO {scratch_db.database}.forever.{measurement}_1h" in text
        assert f"FROM {scratch_db.database}.raw.{measurement}" in text
        assert "GROUP BY time(1h), *" in text
    assert "log10(sum(laeq_energy) / sum(laeq_seconds)) AS laeq" in queries["cq_noise_1h"]


@pytest.mark.integration
def test_init_brings_an_existing_database_up_to_date(scratch_db: InfluxHTTP) -> None:
    init_database(scratch_db)
    assert init_database(scratch_db, "30d") == [
        f'ALTER RETENTION POLICY "raw" ON "{scratch_db.database}" '
        "DURATION 30d SHARD DURATION 1d DEFAULT"
    ]
    assert init_database(scratch_db, "720h") == []  # the same duration, written differently
    (series,) = scratch_db.series("SHOW RETENTION POLICIES")
    assert [row[1] for row in series["values"] if row[0] == RAW_RP] == ["720h0m0s"]

    # A continuous query of ours with another definition (an older version) is replaced.
    name = quote_ident(cq_name("air"))
    db = quote_ident(scratch_db.database)
    scratch_db.execute(f"DROP CONTINUOUS QUERY {name} ON {db}")
    scratch_db.execute(
        f"CREATE CONTINUOUS QUERY {name} ON {db} BEGIN SELECT mean(pm1) AS pm1 "
        f'INTO {db}."forever"."air_1h" FROM {db}."raw"."air" GROUP BY time(1h), * END'
    )
    changed = init_database(scratch_db, "30d")
    assert changed[0] == f"DROP CONTINUOUS QUERY {name} ON {db}"
    assert changed[1].startswith(f"CREATE CONTINUOUS QUERY {name}")
    assert len(changed) == 2
    assert init_database(scratch_db, "30d") == []


@pytest.mark.integration
def test_recompute_gives_hourly_means_and_counts_of_late_air_readings(
    influx: InfluxHTTP,
) -> None:
    node = unique_node()
    h = hour_ago(3 * 24)  # three days old: far outside the continuous queries' window
    write(
        influx,
        [
            air(node, h + 10, pm2_5=10.0, pm10=20.0, temp=21.5),
            air(node, h + 1800, pm2_5=20.0, pm10=31.0),
            air(node, h + 3599, pm2_5=33.5),
            air(node, h + HOUR_S, pm2_5=5.0),  # the next hour
            air(node, h + 5 * HOUR_S + 7, co2=420.0),  # a separate range
        ],
    )
    recompute_hours(influx, "air", [h + 10, h + 1800, h + HOUR_S, h + 5 * HOUR_S + 7])

    points = hourly(influx, "air", node)
    assert sorted(points) == [h, h + HOUR_S, h + 5 * HOUR_S]
    first = points[h]
    assert first["pm2_5"] == pytest.approx((10.0 + 20.0 + 33.5) / 3)
    assert first["pm2_5_count"] == 3
    assert first["pm10"] == pytest.approx(25.5)
    assert first["pm10_count"] == 2
    assert first["temp"] == 21.5
    assert first["temp_count"] == 1
    assert first["area"] == "test-area"
    assert points[h + HOUR_S]["pm2_5"] == 5.0
    assert points[h + HOUR_S]["pm2_5_count"] == 1
    assert points[h + 5 * HOUR_S]["co2"] == 420.0

    # More late data for an hour already aggregated: recomputing replaces the aggregate.
    write(influx, [air(node, h + 2400, pm2_5=100.0)])
    recompute_hours(influx, "air", [h])
    again = hourly(influx, "air", node)[h]
    assert again["pm2_5"] == pytest.approx((10.0 + 20.0 + 33.5 + 100.0) / 4)
    assert again["pm2_5_count"] == 4


@pytest.mark.integration
def test_recompute_averages_noise_levels_energetically(influx: InfluxHTTP) -> None:
    node = unique_node()
    h = hour_ago(10 * 24)
    write(
        influx,
        [
            # 60 and 70 dB over equal periods: 67.4 dB, not the arithmetic 65.
            noise(node, h + 60, period=60.0, laeq=60.0, lafmax=71.0, lafmin=45.0, la90=50.0),
            noise(node, h + 120, period=60.0, laeq=70.0, lafmax=80.5, lafmin=48.0, la90=52.0),
            # The next hour: 60 dB for 180 s and 70 dB for 60 s weigh by duration.
            noise(node, h + HOUR_S + 180, period=180.0, laeq=60.0),
            noise(node, h + HOUR_S + 240, period=60.0, laeq=70.0),
            # A reading without laeq neither counts nor weighs in the hour's LAeq.
            noise(node, h + HOUR_S + 300, period=60.0, lafmax=90.0),
        ],
    )
    recompute_hours(influx, "noise", [h, h + HOUR_S])

    points = hourly(influx, "noise", node)
    first = points[h]
    assert first["laeq"] == pytest.approx(67.40362689, abs=1e-6)
    assert first["laeq"] == pytest.approx(energy_mean([60.0, 70.0]))
    assert first["laeq_count"] == 2
    assert first["lafmax"] == 80.5
    assert first["lafmin"] == 45.0
    assert first["period"] == 120.0
    assert first["period_count"] == 2
    assert first["la90"] == pytest.approx(energy_mean([50.0, 52.0]))
    assert "la10" not in first or first["la10"] is None

    second = points[h + HOUR_S]
    assert second["laeq"] == pytest.approx(energy_mean([60.0, 70.0], [180.0, 60.0]))
    assert second["laeq"] == pytest.approx(65.1188, abs=1e-4)
    assert second["laeq_count"] == 2
    assert second["period"] == 300.0
    assert second["lafmax"] == 90.0


@pytest.mark.integration
def test_the_noise_continuous_query_runs_on_the_server(scratch_db: InfluxHTTP) -> None:
    """InfluxDB 1.6 runs the subquery form of the noise query as a continuous query.

    The stored definition is created again with a resample interval of one second, so the
    server's continuous query service runs it while the test waits.
    """
    init_database(scratch_db)
    db = scratch_db.database
    stored = {
        name: text
        for series in scratch_db.series("SHOW CONTINUOUS QUERIES")
        if series["name"] == db
        for name, text in series.get("values", [])
    }["cq_noise_1h"]
    fast = stored.replace("cq_noise_1h", "cq_noise_1h_fast", 1).replace(
        f"RESAMPLE EVERY 1h FOR {CQ_RESAMPLE_FOR_H}h", "RESAMPLE EVERY 1s FOR 2h"
    )
    assert fast != stored
    scratch_db.execute(fast)

    node = unique_node()
    now = int(time.time())
    first = max(now - 1, now - now % HOUR_S)
    write(
        InfluxHTTP(scratch_db.url, db, retention_policy=RAW_RP),
        [
            noise(node, first, period=1.0, laeq=60.0, lafmax=66.0),
            noise(node, first + 1, period=1.0, laeq=70.0, lafmax=75.0),
        ],
    )
    hour = first - first % HOUR_S

    def aggregated() -> bool:
        point = hourly(scratch_db, "noise", node).get(hour)
        return point is not None and point.get("laeq_count") == 2

    wait_until(aggregated, 30.0, "the continuous query to write the hourly noise point")
    point = hourly(scratch_db, "noise", node)[hour]
    assert point["laeq"] == pytest.approx(energy_mean([60.0, 70.0]))
    assert point["lafmax"] == 75.0


@pytest.mark.integration
def test_the_continuous_query_body_is_the_recompute_statement(influx: InfluxHTTP) -> None:
    for measurement in MEASURED_FIELDS:
        body = aggregate_select(influx.database, measurement)
        with_range = recompute_statements(influx.database, measurement, [0])[0]
        assert with_range.replace(" WHERE time >= 0s AND time < 3600s", "") == body
