"""``ingest.export`` and ``commons export``: CSV for planners, against the real InfluxDB.

Each test writes readings of its own nodes in a time range of its own (a random hour in 2021),
so the tests share the ``commons`` database without seeing each other's data.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import RunCommons

from commons import __version__
from commons.contract import Kind, Reading
from commons.home import StackInfo
from ingest.dbinit import init_database
from ingest.export import COLUMNS, export_csv, export_queries, header_lines
from ingest.influx import InfluxHTTP
from ingest.schema import MEASUREMENT, RAW_RP, to_line

ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"


@dataclass(frozen=True)
class Scene:
    """Readings written for one test: where and when."""

    start: datetime  # the first reading's time
    end: datetime  # one second after the last reading in range
    air_node: str
    noise_node: str
    other_node: str  # in another area
    area: str
    other_area: str
    readings: dict[str, list[tuple[Reading, str]]]  # node → (reading, area)


def _parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    comments = [line for line in text.splitlines() if line.startswith("#")]
    body = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("".join(body)))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return comments, list(reader)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_row(reading: Reading, area: str) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        time=_iso(reading.ts),
        measurement=MEASUREMENT[reading.kind],
        node=reading.node,
        area=area,
        seq=str(reading.seq),
        fw=reading.fw or "",
        qa=str(reading.qa),
        flags=";".join(f for f in ("warmup", "rh_high", "clip") if f in reading.flags),
    )
    for name, value in reading.values.items():
        row[name] = repr(value) if value != int(value) else str(int(value))
    return row


def _assert_same_values(got: dict[str, str], reading: Reading, area: str) -> None:
    """Value by value: floats read back to exactly the written float."""
    expected = _expected_row(reading, area)
    for column in COLUMNS:
        if column in reading.values:
            assert float(got[column]) == reading.values[column], column
        else:
            assert got[column] == expected[column], column


@pytest.fixture
def influx(stack: StackInfo) -> Iterator[InfluxHTTP]:
    client = InfluxHTTP(stack.influx.url, stack.influx.database, retention_policy=RAW_RP)
    init_database(client)
    yield client
    client.close()


@pytest.fixture
def scene(influx: InfluxHTTP) -> Scene:
    tag = uuid.uuid4().hex[:8]
    start_ts = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp()) + random.randrange(8000) * 3600
    air_node, noise_node, other_node = f"air-{tag}", f"noise-{tag}", f"other-{tag}"
    area, other_area = f"area-{tag}", f"elsewhere-{tag}"
    readings: dict[str, list[tuple[Reading, str]]] = {air_node: [], noise_node: [], other_node: []}
    for i in range(5):
        ts = start_ts + i * 60
        flags = ("warmup",) if i == 0 else (("rh_high",) if i == 3 else ())
        values = {"pm1": 3.0 + i, "pm2_5": 0.1 * (i + 1), "pm10": 12.345678901234567, "rh": 55.5}
        if i % 2 == 0:
            values["temp"] = -3.25
        readings[air_node].append(
            (Reading(air_node, Kind.AIR, ts, 100 + i, "1.2.3", flags, values), area)
        )
        noise_values = {
            "period": 60.0,
            "laeq": 55.0 + i / 3,
            "lafmax": 70.1,
            "lafmin": 40.0,
            "la10": 60.0,
            "la50": 52.5,
            "la90": 45.0,
        }
        noise_flags = ("clip",) if i == 4 else ()
        readings[noise_node].append(
            (Reading(noise_node, Kind.NOISE, ts + 30, i, "1.2.3", noise_flags, noise_values), area)
        )
        readings[other_node].append(
            (Reading(other_node, Kind.AIR, ts + 1, i, "0.9", (), {"pm2_5": 7.0}), other_area)
        )
    lines = [to_line(r, a) for pairs in readings.values() for r, a in pairs]
    # Status readings are not exported.
    status = Reading(air_node, Kind.STATUS, start_ts + 5, 1, "1.2.3", (), {"uptime": 5.0})
    lines.append(to_line(status, area))
    result = influx.write(lines)
    assert result.status == 204, result
    last = max(r.ts for pairs in readings.values() for r, _ in pairs)
    return Scene(
        start=datetime.fromtimestamp(start_ts, UTC),
        end=datetime.fromtimestamp(last + 1, UTC),
        air_node=air_node,
        noise_node=noise_node,
        other_node=other_node,
        area=area,
        other_area=other_area,
        readings=readings,
    )


def _export(influx: InfluxHTTP, scene: Scene, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    rows = export_csv(
        influx,
        out,
        kwargs.pop("start", scene.start),
        kwargs.pop("end", scene.end),
        **kwargs,
    )
    return rows, out.getvalue()


@pytest.mark.integration
def test_one_node_exports_value_by_value(influx: InfluxHTTP, scene: Scene) -> None:
    rows, text = _export(influx, scene, node=scene.air_node)
    _, got = _parse(text)
    assert rows == len(got) == 5
    for row, (reading, area) in zip(got, scene.readings[scene.air_node], strict=True):
        _assert_same_values(row, reading, area)
        assert row == _expected_row(reading, area)
    assert got[0]["flags"] == "warmup"
    assert got[3]["flags"] == "rh_high"
    assert got[3]["qa"] == "2"
    assert got[1]["temp"] == ""
    assert got[0]["pm10"] == "12.345678901234567"
    assert got[0]["pm2_5"] == "0.1"


@pytest.mark.integration
def test_noise_rows_carry_the_noise_fields(influx: InfluxHTTP, scene: Scene) -> None:
    rows, text = _export(influx, scene, node=scene.noise_node)
    _, got = _parse(text)
    assert rows == 5
    for row, (reading, area) in zip(got, scene.readings[scene.noise_node], strict=True):
        _assert_same_values(row, reading, area)
        assert row["measurement"] == "noise"
        assert row["pm2_5"] == ""
    assert got[4]["flags"] == "clip"


@pytest.mark.integration
def test_area_filter_and_no_filter(influx: InfluxHTTP, scene: Scene) -> None:
    _, text = _export(influx, scene, area=scene.area)
    _, got = _parse(text)
    assert {row["node"] for row in got} == {scene.air_node, scene.noise_node}
    assert [row["measurement"] for row in got] == ["air"] * 5 + ["noise"] * 5

    _, text = _export(influx, scene, area=scene.other_area, node=scene.air_node)
    assert _parse(text)[1] == []

    rows, text = _export(influx, scene)
    _, got = _parse(text)
    mine = [row for row in got if row["node"] in scene.readings]
    assert len(mine) == 15
    assert rows == len(got)
    by_key = {(row["node"], row["time"]): row for row in mine}
    for pairs in scene.readings.values():
        for reading, area in pairs:
            _assert_same_values(by_key[(reading.node, _iso(reading.ts))], reading, area)


@pytest.mark.integration
def test_time_range_is_half_open(influx: InfluxHTTP, scene: Scene) -> None:
    readings = [r for r, _ in scene.readings[scene.air_node]]
    start = datetime.fromtimestamp(readings[1].ts, UTC)
    end = datetime.fromtimestamp(readings[3].ts, UTC)
    rows, text = _export(influx, scene, node=scene.air_node, start=start, end=end)
    _, got = _parse(text)
    assert rows == 2
    assert [row["time"] for row in got] == [_iso(readings[1].ts), _iso(readings[2].ts)]

    with pytest.raises(ValueError, match="not before"):
        _export(influx, scene, start=end, end=end)


@pytest.mark.integration
def test_header_has_licence_attribution_queries_and_version(
    influx: InfluxHTTP, scene: Scene
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    _, text = _export(influx, scene, node=scene.air_node, area=scene.area)
    comments, _ = _parse(text)
    assert f"# licence: ODbL-1.0 {ODBL_URL}" in comments
    assert "# attribution: Sensor Commons contributors" in comments
    assert f"# software: sensor-commons {__version__}" in comments
    queries = export_queries(influx.database, scene.start, scene.end, scene.air_node, scene.area)
    assert [c.removeprefix("# query: ") for c in comments if c.startswith("# query: ")] == queries
    assert queries[0].startswith(f'SELECT * FROM "{influx.database}"."raw"."air" WHERE ')
    assert f"\"node\" = '{scene.air_node}'" in queries[0]
    (exported,) = [c.removeprefix("# exported: ") for c in comments if "exported:" in c]
    assert before <= datetime.fromisoformat(exported) <= datetime.now(UTC)

    _, text = _export(influx, scene, node=scene.air_node, licence="CC-BY-4.0")
    assert "# licence: CC-BY-4.0 https://creativecommons.org/licenses/by/4.0/" in text


@pytest.mark.integration
def test_filters_are_quoted(influx: InfluxHTTP, scene: Scene) -> None:
    rows, text = _export(influx, scene, node="x' OR 'a'='a")
    assert rows == 0
    assert _parse(text)[1] == []


class CountingInflux(InfluxHTTP):
    """Counts the series chunks the chunked /query answer arrives in."""

    chunks = 0

    def stream(self, q: str, chunk_size: int = 10_000) -> Iterator[dict[str, Any]]:
        for series in super().stream(q, chunk_size):
            self.chunks += 1
            yield series


@pytest.mark.integration
def test_export_streams_in_chunks(stack: StackInfo, scene: Scene) -> None:
    counting = CountingInflux(stack.influx.url, stack.influx.database)
    rows, text = _export(counting, scene, area=scene.area, chunk_size=3)
    assert rows == 10
    # 5 air and 5 noise rows in chunks of at most 3: at least 2 chunks each.
    assert counting.chunks >= 4
    _, got = _parse(text)
    assert [row["time"] for row in got[:5]] == sorted(row["time"] for row in got[:5])
    counting.close()


# -- the command line ---------------------------------------------------------------------


@pytest.mark.integration
def test_cli_exports_to_a_file_and_to_stdout(
    run_commons: RunCommons,
    scene: Scene,
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.csv"
    start = scene.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    end_iso = scene.end.isoformat()  # with its +00:00 offset
    done = run_commons(
        *("export", "--start", start, "--end", end_iso, "--node", scene.air_node),
        *("--format", "csv", "--out", str(out)),
    )
    assert done.returncode == 0, done.stderr
    assert "exported 5 rows" in done.stderr
    _, got = _parse(out.read_text())
    for row, (reading, area) in zip(got, scene.readings[scene.air_node], strict=True):
        _assert_same_values(row, reading, area)

    done = run_commons(
        *("export", "--start", start, "--end", end_iso, "--area", scene.area, "--out", "-"),
        *("--licence", "CC0-1.0"),
    )
    assert done.returncode == 0, done.stderr
    comments, got = _parse(done.stdout)
    assert len(got) == 10
    assert any(c.startswith("# licence: CC0-1.0") for c in comments)


def test_cli_rejects_bad_times_and_formats(run_commons: RunCommons) -> None:
    done = run_commons("export", "--start", "yesterday", "--end", "2021-01-02", "--out", "-")
    assert done.returncode == 2
    assert "--start" in done.stderr
    assert "yesterday" in done.stderr
    done = run_commons("export", "--start", "2021-01-02", "--end", "2021-01-01", "--out", "-")
    assert done.returncode == 2
    assert "--end" in done.stderr
    done = run_commons(
        *("export", "--start", "2021-01-01", "--end", "2021-01-02"),
        *("--format", "parquet", "--out", "-"),
    )
    assert done.returncode == 2
    assert "--format" in done.stderr


def test_cli_without_a_stack_says_so(run_commons: RunCommons, tmp_path: Path) -> None:
    for args in (
        ("db", "init"),
        ("export", "--start", "2021-01-01", "--end", "2021-01-02", "--out", "-"),
    ):
        done = run_commons(*args, home=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "commons stack up" in done.stderr


@pytest.mark.integration
def test_cli_db_init(run_commons: RunCommons, influx: InfluxHTTP) -> None:
    done = run_commons("db", "init")
    assert done.returncode == 0, done.stderr
    # The influx fixture initialised the database already.
    assert "up to date" in done.stdout
    done = run_commons("db", "init", "--raw-retention", "ten days")
    assert done.returncode == 2
    assert "--raw-retention" in done.stderr


def test_header_lines_never_break_inside_a_value() -> None:
    queries = ['SELECT * FROM "commons"."raw"."air" WHERE "area" = \'north\nend\'']
    lines = header_lines(
        "ODbL-1.0\r\n# licence: CC0-1.0", queries, datetime(2024, 5, 1, tzinfo=UTC)
    )
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert '# query: SELECT * FROM "commons"."raw"."air" WHERE "area" = \'north\\nend\'' in lines
    assert "# exported: 2024-05-01T00:00:00Z" in lines
