"""Parquet (read back with pyarrow), GeoJSON (json) and ``commons export`` on the command line.

Same scene as ``test_export.py``: this module's own database and ``$COMMONS_HOME``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.parquet as pq
import pytest
from exportscene import END, EXACT, START, Scene, make_scene, stored
from harness import CLI_TIMEOUT_S, COMMONS, RunCommons

from commons import __version__
from commons.home import StackInfo
from ingest.calibration import Calibrations
from ingest.export import READING_MEASUREMENTS, ExportRequest, export
from ingest.exportconfig import ExportSettings
from ingest.influx import InfluxHTTP
from ingest.selection import Selection
from ingest.writers import PARQUET_METADATA_KEY

START_ISO, END_ISO = "2024-03-30T00:00:00Z", "2024-04-01T00:00:00Z"


@pytest.fixture(scope="module")
def scene(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(stack, tmp_path_factory.mktemp("formats"))


@pytest.fixture
def influx(stack: StackInfo, scene: Scene) -> Iterator[InfluxHTTP]:
    client = scene.influx(stack.influx.url)
    yield client
    client.close()


def _exact_texts() -> list[str]:
    """Exact coordinates as they could be printed: never in an export."""
    texts = []
    for location in EXACT.values():
        texts += [repr(location.lat), repr(location.lon), f"{location.lat:.5f}"]
    return texts


def _export(influx: InfluxHTTP, scene: Scene, out: Path, fmt: str, **options: object) -> None:
    selection = Selection(START, END, READING_MEASUREMENTS, **options)  # type: ignore[arg-type]
    with scene.registry() as registry:
        export(
            influx,
            registry,
            ExportRequest(selection, fmt, "raw"),  # type: ignore[arg-type]
            ExportSettings(ZoneInfo("UTC")),
            Calibrations(()),
            out,
        )


@pytest.mark.integration
def test_parquet_reads_back_value_by_value_with_metadata(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path
) -> None:
    out = tmp_path / "north.parquet"
    _export(influx, scene, out, "parquet", area=scene.north)
    table = pq.read_table(out)
    metadata = table.schema.metadata
    record = json.loads(metadata[PARQUET_METADATA_KEY])
    assert metadata[b"licence"] == b"ODbL-1.0"
    assert record["licence"]["id"] == "ODbL-1.0"
    assert record["software"]["version"] == __version__
    assert record["time_zone"] == "UTC"
    assert record["queries"][0].startswith(f'SELECT * FROM "{scene.database}"."raw"."air"')
    assert json.loads((tmp_path / "north.parquet.meta.json").read_text())["rows"] == table.num_rows
    assert str(table.schema.field("time").type) == "timestamp[ms, tz=UTC]"
    frame = table.to_pandas()
    assert list(dict.fromkeys(frame["node"])) == sorted(
        [scene.air, scene.noise, scene.unregistered]
    )
    for node, measurement in ((scene.air, "air"), (scene.noise, "noise")):
        got = frame[frame["node"] == node]
        want = stored(influx, measurement, node)
        assert len(got) == len(want)
        for (_, row), expected in zip(got.iterrows(), want, strict=True):
            assert row["time"].to_pydatetime() == expected["time"]
            assert row["measurement"] == measurement
            for name, value in expected.items():
                if name in ("time", "node", "area"):
                    continue
                if name == "qa":
                    assert int(row["qa"]) & value == value
                else:
                    assert row[name] == value, name
            assert row["area"] == scene.north
    assert frame[frame["node"] == scene.noise]["pm2_5"].isna().all()
    raw = out.read_bytes()
    assert not any(text.encode() in raw for text in _exact_texts())


@pytest.mark.integration
def test_geojson_one_feature_per_node_at_its_public_location(
    influx: InfluxHTTP, scene: Scene, tmp_path: Path
) -> None:
    out = tmp_path / "all.geojson"
    _export(influx, scene, out, "geojson")
    text = out.read_text()
    assert not any(exact in text for exact in _exact_texts())
    collection = json.loads(text)
    assert collection["type"] == "FeatureCollection"
    assert collection["metadata"]["licence"]["id"] == "ODbL-1.0"
    assert collection["metadata"]["software"]["version"] == __version__
    features = collection["features"]
    assert [f["id"] for f in features] == sorted(scene.nodes)
    by_node = {f["properties"]["node"]: f for f in features}
    for node, public in scene.public.items():
        geometry = by_node[node]["geometry"]
        assert geometry == {"type": "Point", "coordinates": [public.lon, public.lat]}
    assert by_node[scene.unregistered]["geometry"] is None
    for node, measurement in ((scene.air, "air"), (scene.noise, "noise"), (scene.south, "air")):
        feature = by_node[node]
        assert feature["type"] == "Feature"
        properties = feature["properties"]
        assert set(properties) == {"node", "area", measurement, "row_count"}
        series = pd.DataFrame(
            properties[measurement]["rows"], columns=properties[measurement]["columns"]
        )
        want = stored(influx, measurement, node)
        assert properties["row_count"] == len(series) == len(want)
        for (_, row), expected in zip(series.iterrows(), want, strict=True):
            assert row["time"] == expected["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
            for name, value in expected.items():
                if name not in ("time", "node", "area", "qa"):
                    assert row[name] == value, name
    assert json.loads((tmp_path / "all.geojson.meta.json").read_text())["nodes"] == 4


# -- the command line -----------------------------------------------------------------------


@pytest.mark.integration
def test_cli_exports_each_format_with_a_sidecar(
    run_commons: RunCommons, scene: Scene, tmp_path: Path
) -> None:
    for fmt, level in (("csv", "raw"), ("parquet", "hourly"), ("geojson", "daily")):
        out = tmp_path / f"north.{fmt}"
        done = run_commons(
            *("export", "--start", START_ISO, "--end", END_ISO, "--area", scene.north),
            *("--aggregate", level, "--format", fmt, "--out", str(out), "--tz", "Europe/Paris"),
            *(("--indicators",) if level != "raw" else ()),
            home=scene.home,
        )
        assert done.returncode == 0, done.stderr
        assert f"({fmt}, {level})" in done.stderr
        assert "without a column" not in done.stderr
        meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
        assert meta["time_zone"] == "Europe/Paris"
        assert meta["aggregate"] == level
        assert meta["filters"]["area"] == scene.north
    daily = json.loads((tmp_path / "north.geojson").read_text())
    air = {f["id"]: f for f in daily["features"]}[scene.air]["properties"]["air"]
    assert "aqi" in air["columns"] and air["rows"][0][0] == "2024-03-30T00:00:00+01:00"
    # Without --format, the suffix decides.
    done = run_commons(
        *("export", "--start", START_ISO, "--end", END_ISO, "--node", scene.south),
        *("--out", str(tmp_path / "south.geojson")),
        home=scene.home,
    )
    assert done.returncode == 0, done.stderr
    assert "(geojson, raw)" in done.stderr
    assert json.loads((tmp_path / "south.geojson").read_text())["type"] == "FeatureCollection"
    hourly = pq.read_table(tmp_path / "north.parquet")
    assert str(hourly.schema.field("time").type) == "timestamp[ms, tz=Europe/Paris]"
    assert "nowcast_pm25" in hourly.column_names


@pytest.mark.integration
def test_cli_to_stdout_and_time_zone_from_configuration(
    run_commons: RunCommons, scene: Scene
) -> None:
    args = ("export", "--start", START_ISO, "--end", END_ISO, "--node", scene.south, "--out", "-")
    done = run_commons(*args, "--licence", "CC0-1.0", home=scene.home)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(io.StringIO(done.stdout), comment="#")
    assert len(frame) == 288 and set(frame["node"]) == {scene.south}
    assert "# licence: CC0-1.0 " in done.stdout
    assert "# time zone: UTC " in done.stdout

    (scene.home / "export.toml").write_text('[export]\ntz = "Asia/Tokyo"\nattribution = "Test"\n')
    try:
        done = run_commons(*args, home=scene.home)
        assert "# time zone: Asia/Tokyo " in done.stdout
        assert "# attribution: Test" in done.stdout
        assert "+09:00" in done.stdout
        done = run_commons(*args, home=scene.home, env={"COMMONS_TZ": "America/New_York"})
        assert "# time zone: America/New_York " in done.stdout
        done = run_commons(*args, "--tz", "UTC", home=scene.home, env={"COMMONS_TZ": "Asia/Tokyo"})
        assert "# time zone: UTC " in done.stdout
        done = run_commons(*args, home=scene.home, env={"COMMONS_TZ": "Mars/Olympus"})
        assert done.returncode == 2 and "Mars/Olympus" in done.stderr
    finally:
        (scene.home / "export.toml").unlink()


@pytest.mark.integration
def test_cli_rejects_bad_arguments_naming_them(run_commons: RunCommons, scene: Scene) -> None:
    base = ("export", "--start", START_ISO, "--end", END_ISO, "--out", "-")
    cases = [
        (("--area", "atlantis"), "atlantis"),
        (("--bbox", "2,48,1,49"), "2,48,1,49"),
        (("--bbox", "2,48,3"), "4 numbers"),
        (("--bbox", "2,48,x,49"), "not numbers"),
        (("--bbox", "200,48,201,49"), "-180..180"),
        (("--tz", "Europe/Atlantis"), "Europe/Atlantis"),
        (("--node", "no-such-node"), "no-such-node"),
        (("--indicators",), "--aggregate"),
        (("--format", "parquet"), "standard output"),
        (("--format", "xlsx"), "xlsx"),
    ]
    for extra, named in cases:
        done = run_commons(*base, *extra, home=scene.home)
        assert done.returncode == 2, (extra, done.stderr)
        assert named in done.stderr, (extra, done.stderr)
    done = run_commons("export", "--start", "2021-01-02", "--end", "2021-01-01", "--out", "-")
    assert done.returncode == 2 and "--end" in done.stderr
    done = run_commons("export", "--start", "yesterday", "--end", "2021-01-02", "--out", "-")
    assert done.returncode == 2 and "yesterday" in done.stderr


def test_cli_without_a_stack_says_so(run_commons: RunCommons, tmp_path: Path) -> None:
    for args in (
        ("db", "init"),
        ("export", "--start", "2021-01-01", "--end", "2021-01-02", "--out", "-"),
    ):
        done = run_commons(*args, home=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "commons stack up" in done.stderr


@pytest.mark.integration
def test_cli_db_init(run_commons: RunCommons, scene: Scene) -> None:
    done = run_commons("db", "init", home=scene.home)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    done = run_commons("db", "init", "--raw-retention", "ten days", home=scene.home)
    assert done.returncode == 2
    assert "--raw-retention" in done.stderr


@pytest.mark.integration
def test_progress_bar_on_a_terminal_only(
    run_commons: RunCommons, scene: Scene, influx: InfluxHTTP, tmp_path: Path
) -> None:
    args = ("export", "--start", START_ISO, "--end", END_ISO, "--area", scene.north)
    done = run_commons(*args, "--out", str(tmp_path / "plain.csv"), home=scene.home)
    assert done.returncode == 0 and "readings/s" not in done.stderr and "%|" not in done.stderr

    leader, follower = pty.openpty()
    # A terminal of 24 rows and 100 columns (a new pty has none, and the bar fits its width).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "COMMONS_HOME": str(scene.home)}
    command = [str(COMMONS), *args, "--out", str(tmp_path / "tty.csv")]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=follower, env=env) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not piece:
                break
            seen += piece
        assert proc.wait(CLI_TIMEOUT_S) == 0, seen
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    north = [("air", scene.air), ("noise", scene.noise), ("air", scene.unregistered)]
    total = sum(len(stored(influx, m, node)) for m, node in north)
    assert "100%|" in text and f"{total}/{total}" in text
