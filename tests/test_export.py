"""``ingest.export``: CSV for planners, read back with pandas and compared with InfluxDB.

The readings are the scene of ``exportscene``: a database and a ``$COMMONS_HOME`` of this
module's own, written as line protocol, so every value can be compared exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from exportscene import END, EXACT, INTERVAL_S, START, Scene, make_scene, stored

from commons import __version__
from commons.contract import Flag, flags_from_bitmask
from commons.home import StackInfo
from ingest.aggregate import aggregate
from ingest.calibration import Calibrations, load
from ingest.export import READING_MEASUREMENTS, ExportRequest, export, export_csv
from ingest.exportconfig import ExportSettings
from ingest.influx import InfluxHTTP
from ingest.qa import flag_node
from ingest.readings import node_readings
from ingest.selection import BBox, Selection, UnknownAreaError, UnknownExportNodeError
from ingest.writers import Block, write_csv

ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"
UTC_SETTINGS = ExportSettings(tz=ZoneInfo("UTC"))
NO_CALIBRATION = Calibrations(())

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scene(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(stack, tmp_path_factory.mktemp("export"))


@pytest.fixture
def influx(stack: StackInfo, scene: Scene) -> Iterator[InfluxHTTP]:
    client = scene.influx(stack.influx.url)
    yield client
    client.close()


def run(
    influx: InfluxHTTP,
    scene: Scene,
    out: Path,
    *,
    settings: ExportSettings = UTC_SETTINGS,
    calibrations: Calibrations = NO_CALIBRATION,
    level: Any = "raw",
    indicators: bool = False,
    **filters: Any,
) -> tuple[list[str], pd.DataFrame]:
    selection = Selection(
        filters.pop("start", START),
        filters.pop("end", END),
        filters.pop("measurements", READING_MEASUREMENTS),
        **filters,
    )
    with scene.registry() as registry:
        result = export(
            influx,
            registry,
            ExportRequest(selection, "csv", level, indicators),
            settings,
            calibrations,
            out,
        )
    text = out.read_text()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    frame = pd.read_csv(out, comment="#", dtype={"flags": str, "calibration": str})
    assert result.rows == len(frame)
    return comments, frame


def _same(got: Any, want: Any) -> bool:
    if want is None:
        return bool(pd.isna(got))
    if isinstance(want, float):
        return float(got) == want
    return bool(got == want)


def test_raw_rows_are_what_influxdb_holds(influx: InfluxHTTP, scene: Scene, tmp_path: Path) -> None:
    _, frame = run(influx, scene, tmp_path / "a.csv", nodes=(scene.air,))
    want = stored(influx, "air", scene.air)
    assert len(frame) == len(want) > 200
    for (_, got), row in zip(frame.iterrows(), want, strict=True):
        assert got["time"] == row["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert got["measurement"] == "air"
        assert got["node"] == scene.air
        assert got["area"] == scene.north
        for name in ("pm1", "pm2_5", "pm10", "temp", "rh", "pres", "co2", "seq", "fw"):
            assert _same(got[name], row.get(name)), (name, got[name], row.get(name))
        # Storage-side flags are added, the node's are kept, and the names match the bits.
        assert int(got["qa"]) & row["qa"] == row["qa"]
        assert (got["flags"] if isinstance(got["flags"], str) else "") == ";".join(
            flags_from_bitmask(int(got["qa"]))
        )
    assert frame["flags"].iloc[0] == "warmup"
    humid = frame[frame["rh"] > 70]
    assert len(humid) and all(q & Flag.RH_HIGH.bit for q in humid["qa"])
    after_gap = frame[frame["time"] == "2024-03-30T06:00:00Z"]
    assert "gap" in after_gap["flags"].iloc[0]


def test_noise_rows_carry_the_noise_fields(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path
) -> None:
    _, frame = run(influx, scene, tmp_path / "n.csv", nodes=(scene.noise,))
    want = stored(influx, "noise", scene.noise)
    assert len(frame) == len(want)
    assert set(frame["measurement"]) == {"noise"}
    assert frame["pm2_5"].isna().all()
    for (_, got), row in zip(frame.iterrows(), want, strict=True):
        for name in ("period", "laeq", "lafmax", "lafmin", "la10", "la50", "la90"):
            assert float(got[name]) == row[name]


def test_area_bbox_and_nodes_filter(influx: InfluxHTTP, scene: Scene, tmp_path: Path) -> None:
    _, frame = run(influx, scene, tmp_path / "north.csv", area=scene.north)
    assert list(dict.fromkeys(frame["node"])) == sorted(
        [scene.air, scene.noise, scene.unregistered]
    )
    # Sorted by node, then time.
    for _, rows in frame.groupby("node"):
        assert list(rows["time"]) == sorted(rows["time"])

    a, n = scene.public[scene.air], scene.public[scene.noise]
    box = BBox(min(a.lon, n.lon) - 0.01, min(a.lat, n.lat) - 0.01, 3.0, 49.0)
    _, frame = run(influx, scene, tmp_path / "box.csv", bbox=box)
    # The unregistered node has no public location: outside every box.
    assert set(frame["node"]) == {scene.air, scene.noise}

    _, frame = run(influx, scene, tmp_path / "two.csv", nodes=(scene.south, scene.noise))
    assert list(dict.fromkeys(frame["node"])) == sorted([scene.south, scene.noise])

    _, frame = run(influx, scene, tmp_path / "none.csv", area=scene.south_area, nodes=(scene.air,))
    assert frame.empty

    with pytest.raises(UnknownAreaError, match="nowhere"):
        run(influx, scene, tmp_path / "x.csv", area="nowhere")
    with pytest.raises(UnknownExportNodeError, match="nobody-here"):
        run(influx, scene, tmp_path / "x.csv", nodes=("nobody-here",))


def test_time_range_is_half_open(influx: InfluxHTTP, scene: Scene, tmp_path: Path) -> None:
    start = START + timedelta(hours=10)
    end = start + timedelta(seconds=3 * INTERVAL_S)
    _, frame = run(influx, scene, tmp_path / "r.csv", nodes=(scene.air,), start=start, end=end)
    assert list(frame["time"]) == [
        (start + timedelta(seconds=i * INTERVAL_S)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(3)
    ]
    with pytest.raises(ValueError, match="not after"):
        Selection(end, end, READING_MEASUREMENTS)


def test_header_and_sidecar_carry_the_provenance(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    out = tmp_path / "p.csv"
    settings = ExportSettings(ZoneInfo("Europe/Paris"), "CC-BY-4.0", "Northside air group")
    comments, _ = run(influx, scene, out, settings=settings, nodes=(scene.air,))
    assert "# licence: CC-BY-4.0 https://creativecommons.org/licenses/by/4.0/" in comments
    assert "# attribution: Northside air group" in comments
    assert f"# software: sensor-commons {__version__}" in comments
    assert any(c.startswith("# time zone: Europe/Paris") for c in comments)
    assert "# calibrations: none" in comments
    queries = [c.removeprefix("# query: ") for c in comments if c.startswith("# query: ")]
    assert queries[0].startswith(f'SELECT * FROM "{scene.database}"."raw"."air" WHERE ')
    assert f"\"node\" = '{scene.air}'" in queries[0]
    meta = json.loads((tmp_path / "p.csv.meta.json").read_text())
    assert meta["licence"] == {
        "id": "CC-BY-4.0",
        "url": "https://creativecommons.org/licenses/by/4.0/",
    }
    assert meta["attribution"] == "Northside air group"
    assert meta["software"] == {"name": "sensor-commons", "version": __version__}
    assert meta["time_zone"] == "Europe/Paris"
    assert meta["queries"] == queries
    assert meta["rows"] == len(stored(influx, "air", scene.air))
    assert meta["file"] == "p.csv"
    assert meta["firmware"] == {scene.air: ["1.4.0"]}
    assert before <= datetime.fromisoformat(meta["generated"]) <= datetime.now(UTC)
    # Times are written in the export's zone with their offset.
    frame = pd.read_csv(out, comment="#")
    assert frame["time"].iloc[0] == "2024-03-30T01:00:00+01:00"
    assert frame["time"].iloc[-1].endswith("+02:00")


def test_corrected_values_beside_raw_with_the_calibration_version(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path
) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(
        f"""
[[calibration]]
id = "colocation-test"
version = 3
source = "co-location, test"
applies_to = {{ nodes = ["{scene.air}"] }}
valid_from = 2024-03-31
method = "linear"
fields = ["pm2_5"]
slope = 2.0
intercept = 1.0
"""
    )
    comments, frame = run(
        influx, scene, tmp_path / "c.csv", calibrations=load(path), nodes=(scene.air,)
    )
    assert "# calibrations: colocation-test@3" in comments
    before = frame[frame["time"] < "2024-03-31"]
    after = frame[frame["time"] >= "2024-03-31"]
    assert before["pm2_5_corrected"].isna().all() and before["calibration"].isna().all()
    assert (after["pm2_5_corrected"] == 2.0 * after["pm2_5"] + 1.0).all()
    assert set(after["calibration"]) == {"colocation-test@3"}
    meta = json.loads((tmp_path / "c.csv.meta.json").read_text())
    assert meta["calibration_versions"] == ["colocation-test@3"]


def _pipeline_rows(influx: InfluxHTTP, node: str, level: Any, tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = flag_node(iter(stored(influx, "air", node)), "air", interval=INTERVAL_S)
    return list(aggregate(rows, "air", level, tz, indicators=True, interval=lambda _: INTERVAL_S))


@pytest.mark.parametrize("level", ["hourly", "daily"])
def test_means_come_from_ingest_aggregate(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path, level: str
) -> None:
    paris = ZoneInfo("Europe/Paris")
    settings = ExportSettings(paris)
    _, frame = run(
        influx,
        scene,
        tmp_path / f"{level}.csv",
        settings=settings,
        level=level,
        indicators=True,
        nodes=(scene.air,),
        measurements=("air",),
    )
    want = _pipeline_rows(influx, scene.air, level, paris)
    assert len(frame) == len(want)
    for (_, got), row in zip(frame.iterrows(), want, strict=True):
        assert got["time"] == row["time"].astimezone(paris).isoformat()
        for name in (
            "pm2_5",
            "pm10",
            "rh",
            "n",
            "expected",
            "completeness",
            "qa",
            "eaqi_band",
            "nowcast_pm25" if level == "hourly" else "aqi",
        ):
            assert _same(got[name], row[name]), (name, got[name], row[name])
        assert bool(got["valid"]) == row["valid"]
    assert frame["valid"].any() and not frame["valid"].all()
    if level == "hourly":
        # Independently: the hour's arithmetic mean of the stored values.
        hour = [
            r["pm2_5"]
            for r in stored(influx, "air", scene.air)
            if r["time"].hour == 10 and r["time"].day == 30
        ]
        got = frame[frame["time"] == "2024-03-30T11:00:00+01:00"]["pm2_5"].iloc[0]
        assert got == pytest.approx(sum(hour) / len(hour), rel=1e-12)
        silent = frame[frame["time"] == "2024-03-30T05:00:00+01:00"]
        assert silent.empty  # a silent hour has no row
        partial = frame[frame["time"] == "2024-03-30T09:00:00+01:00"]
        assert partial["n"].iloc[0] == 2 and not partial["valid"].iloc[0]
    else:
        # The local day of 31 March has 23 hours.
        day = frame[frame["time"] == "2024-03-31T00:00:00+01:00"]
        assert day["expected"].iloc[0] == 23 * 3600 / INTERVAL_S
        assert frame[frame["valid"]]["aqi"].notna().all()


def test_readings_are_queried_per_node_in_windows_and_chunks(
    stack: StackInfo, scene: Scene, tmp_path: Path
) -> None:
    queries: list[str] = []

    class Recording(InfluxHTTP):
        chunks = 0

        def stream(self, q: str, chunk_size: int = 10_000) -> Iterator[dict[str, Any]]:
            queries.append(q)
            for series in super().stream(q, chunk_size):
                self.chunks += 1
                yield series

    influx = Recording(stack.influx.url, scene.database)
    out = io.StringIO()
    rows = export_csv(influx, out, START, END, area=scene.north, chunk_size=50)
    north = [("air", scene.air), ("noise", scene.noise), ("air", scene.unregistered)]
    assert rows == sum(len(stored(influx, m, n)) for m, n in north)
    # One query per node and measurement (two days fit in one window), each for one node.
    assert len(queries) == len(north)
    assert all(q.count('"node" = \'') == 1 for q in queries)
    assert influx.chunks >= rows // 50

    queries.clear()
    window = timedelta(hours=6)
    got = list(node_readings(influx, "air", scene.south, START, END, window=window, chunk_size=7))
    assert got == stored(influx, "air", scene.south)
    assert len(queries) == (END - START) // window
    influx.close()


def test_writer_consumes_an_iterator_once(tmp_path: Path) -> None:
    from ingest.provenance import Provenance
    from ingest.selection import ExportNode

    consumed: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(3):
            consumed.append(i)
            yield {"time": START + timedelta(seconds=i), "node": "n-1", "qa": 0, "pm2_5": 1.5}

    provenance = Provenance(UTC_SETTINGS, START, "csv", "raw", ("air",), {}, [], [], ["time"])
    out = io.StringIO()
    blocks = iter([Block(ExportNode("n-1", None, None), "air", rows())])
    written = write_csv(out, provenance, ["time", "node", "pm2_5", "qa"], blocks)
    assert written.rows == 3 and consumed == [0, 1, 2]
    assert next(blocks, None) is None
    assert all(str(loc.lat) not in out.getvalue() for loc in EXACT.values())


def test_filters_are_quoted(influx: InfluxHTTP, scene: Scene, tmp_path: Path) -> None:
    sneaky = "x' OR 'a'='a"
    with pytest.raises(UnknownAreaError, match="x' OR"):
        run(influx, scene, tmp_path / "q.csv", area=sneaky)
    with pytest.raises(UnknownExportNodeError, match="x' OR"):
        run(influx, scene, tmp_path / "q.csv", nodes=(sneaky,))
    assert (
        Selection(START, END, ("air",), (sneaky,))
        .where()
        .endswith("(\"node\" = 'x\\' OR \\'a\\'=\\'a')")
    )
