"""Calibration as versioned data: the EPA PurpleAir correction (REFERENCE 4.1), linear and
offset methods, which calibration applies when, and errors that name the file and key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commons.settings import ConfigError
from ingest.calibration import (
    Calibrations,
    epa_purpleair,
    load,
)

T = datetime(2025, 7, 1, 12, tzinfo=UTC)

EPA = """
[[calibration]]
id = "epa-purpleair"
version = 1
source = "Barkjohn et al. 2021, AMT 14, 4617"
applies_to = { model = "pms5003" }
valid_from = 2024-01-01T00:00:00Z
method = "epa_purpleair_2021"
"""
COLOCATION = """
[[calibration]]
id = "colocation"
version = {version}
source = "co-location with the reference station"
applies_to = {{ nodes = ["node-a"] }}
valid_from = {valid_from}
method = "linear"
fields = ["pm2_5", "pm10"]
slope = {slope}
intercept = 1.0
"""
MICROPHONE = """
[[calibration]]
id = "mic"
version = 3
source = "field calibrator, 94 dB at 1 kHz"
applies_to = { nodes = ["noise-1"] }
valid_from = 2025-01-01
method = "offset"
fields = ["laeq", "lafmax"]
offset = -1.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    return path


# --- the EPA correction (REFERENCE 4.1) ---


@pytest.mark.parametrize(
    ("x", "rh", "expected"),
    [
        (10.0, 50.0, 0.524 * 10 - 0.0862 * 50 + 5.75),  # 6.68
        (40.0, 50.0, (0.786 * 0.5 + 0.524 * 0.5) * 40 - 0.0862 * 50 + 5.75),  # s = 0.5
        (100.0, 50.0, 0.786 * 100 - 0.0862 * 50 + 5.75),  # 80.04
        # s = 0.5: [0.69s + 0.786(1-s)]x - 0.0862 RH (1-s) + 2.966s + 5.75(1-s) + 8.84e-4 x² s
        (235.0, 50.0, 0.738 * 235 - 0.0862 * 25 + 1.483 + 2.875 + 8.84e-4 * 235**2 * 0.5),
        (400.0, 50.0, 2.966 + 0.69 * 400 + 8.84e-4 * 400**2),  # 420.406
    ],
)
def test_epa_piecewise_values(x: float, rh: float, expected: float) -> None:
    assert epa_purpleair(x, rh) == pytest.approx(expected)


def test_epa_linear_form_and_clamp() -> None:
    assert epa_purpleair(100.0, 50.0, "linear") == pytest.approx(53.84)
    assert epa_purpleair(0.0, 100.0) == 0.0  # 5.75 - 8.62 < 0: clamped


@pytest.mark.parametrize("edge", [30.0, 50.0, 210.0, 260.0])
def test_epa_piecewise_is_continuous(edge: float) -> None:
    assert epa_purpleair(edge - 1e-9, 60.0) == pytest.approx(epa_purpleair(edge, 60.0), abs=1e-6)


@given(st.floats(min_value=0, max_value=1000), st.floats(min_value=0, max_value=100))
def test_epa_correction_is_never_negative(x: float, rh: float) -> None:
    assert epa_purpleair(x, rh) >= 0.0


# --- which calibration applies ---


def test_corrected_values_go_beside_the_raw_ones(tmp_path: Path) -> None:
    text = EPA + COLOCATION.format(version=2, valid_from="2025-06-01", slope=0.8)
    calibrations = load(write(tmp_path, text))
    models = {"node-a": "pms5003", "node-b": "pms5003", "node-c": "sds011"}
    calibrator = calibrations.calibrator("air", models.get)
    assert calibrator.columns == ["pm2_5_corrected", "pm10_corrected", "calibration"]
    row = {"time": T, "node": "node-b", "pm2_5": 10.0, "pm10": 20.0, "rh": 50.0}
    assert calibrator.apply(row) == {
        "pm2_5_corrected": pytest.approx(6.68),
        "pm10_corrected": None,
        "calibration": "epa-purpleair@1",
    }
    assert row == {"time": T, "node": "node-b", "pm2_5": 10.0, "pm10": 20.0, "rh": 50.0}
    # The node's own calibration comes before its model's.
    node_a = calibrator.apply({**row, "node": "node-a"})
    assert node_a == {
        "pm2_5_corrected": pytest.approx(9.0),
        "pm10_corrected": pytest.approx(17.0),
        "calibration": "colocation@2",
    }
    # Before the co-location was valid, the model's correction applies.
    early = calibrator.apply({**row, "node": "node-a", "time": datetime(2025, 5, 1, tzinfo=UTC)})
    assert early["calibration"] == "epa-purpleair@1"
    # No calibration for this model, and none before any valid_from.
    assert calibrator.apply({**row, "node": "node-c"})["calibration"] is None
    old = calibrator.apply({**row, "time": datetime(2023, 1, 1, tzinfo=UTC)})
    assert old == {"pm2_5_corrected": None, "pm10_corrected": None, "calibration": None}


def test_epa_needs_humidity(tmp_path: Path) -> None:
    calibrator = load(write(tmp_path, EPA)).calibrator("air", lambda node: "pms5003")
    out = calibrator.apply({"time": T, "node": "node-b", "pm2_5": 10.0})
    assert out == {"pm2_5_corrected": None, "calibration": None}


def test_latest_valid_from_then_highest_version(tmp_path: Path) -> None:
    text = (
        COLOCATION.format(version=1, valid_from="2025-01-01", slope=0.5)
        + COLOCATION.format(version=2, valid_from="2025-03-01", slope=0.6)
        + COLOCATION.format(version=3, valid_from="2025-03-01", slope=0.7)
        + COLOCATION.format(version=4, valid_from="2026-01-01", slope=0.9)
    )
    calibrator = load(write(tmp_path, text)).calibrator("air")
    row = {"time": T, "node": "node-a", "pm2_5": 10.0}
    assert calibrator.apply(row)["calibration"] == "colocation@3"
    assert calibrator.apply(row)["pm2_5_corrected"] == pytest.approx(8.0)
    row["time"] = datetime(2025, 2, 1, tzinfo=UTC)
    assert calibrator.apply(row)["calibration"] == "colocation@1"


def test_offset_for_a_microphone_and_several_calibrations_in_one_row(tmp_path: Path) -> None:
    calibrations = load(write(tmp_path, MICROPHONE))
    noise = calibrations.calibrator("noise")
    assert noise.columns == ["laeq_corrected", "lafmax_corrected", "calibration"]
    out = noise.apply({"time": T, "node": "noise-1", "laeq": 55.0, "lafmax": 70.0})
    assert out == {"laeq_corrected": 53.5, "lafmax_corrected": 68.5, "calibration": "mic@3"}
    assert calibrations.calibrator("air").columns == ["calibration"]

    text = (
        EPA
        + """
[[calibration]]
id = "pm10-fit"
version = 1
source = "co-location"
applies_to = { model = "pms5003" }
valid_from = 2025-01-01
method = "linear"
fields = ["pm10"]
slope = 2
"""
    )
    both = load(write(tmp_path, text)).calibrator("air", lambda node: "pms5003")
    out = both.apply({"time": T, "node": "x-1", "pm2_5": 10.0, "pm10": 20.0, "rh": 50.0})
    assert out["calibration"] == "epa-purpleair@1;pm10-fit@1"
    assert out["pm10_corrected"] == 40.0


def test_describe_for_export_metadata(tmp_path: Path) -> None:
    (item,) = load(write(tmp_path, MICROPHONE)).describe()
    assert item == {
        "id": "mic",
        "version": 3,
        "source": "field calibrator, 94 dB at 1 kHz",
        "applies_to": {"nodes": ["noise-1"]},
        "valid_from": "2025-01-01T00:00:00+00:00",
        "method": "offset",
        "fields": ["laeq", "lafmax"],
    }


def test_default_file_under_commons_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMONS_HOME", str(tmp_path))
    assert load() == Calibrations((), None)
    write(tmp_path, MICROPHONE)
    assert [item.tag for item in load().items] == ["mic@3"]


# --- bad files name the file and the key ---

SOURCE = 'source = "Barkjohn et al. 2021, AMT 14, 4617"'
MODEL = '{ model = "pms5003" }'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (EPA.replace(SOURCE + "\n", ""), "calibration[0].source", "missing"),
        (EPA.replace(SOURCE, 'source = " "'), "calibration[0].source", "citation"),
        (EPA.replace("epa_purpleair_2021", "magic"), "calibration[0].method", "'magic'"),
        (EPA + 'slope = 2\n', "calibration[0].slope", "unknown key"),
        (EPA + 'form = "cubic"\n', "calibration[0].form", "'cubic'"),
        (EPA.replace("version = 1", 'version = "1"'), "calibration[0].version", "expected int"),
        (EPA.replace("version = 1", "version = 0"), "calibration[0].version", "positive"),
        (EPA.replace('id = "epa-purpleair"', 'id = "a@b"'), "calibration[0].id", "'@'"),
        (EPA.replace("00:00Z", "00:00"), "calibration[0].valid_from", "UTC offset"),
        (EPA.replace(MODEL, "{ }"), "calibration[0].applies_to", "nodes"),
        (EPA.replace(MODEL, "{ nodes = [] }"), "calibration[0].applies_to.nodes", "non-empty"),
        (MICROPHONE.replace('"lafmax"', '"volume"'), "calibration[0].fields", "'volume'"),
        (MICROPHONE.replace("offset = -1.5\n", ""), "calibration[0].offset", "missing"),
        (EPA + EPA, "calibration[1]", "defined twice"),
        ("[calibrations]\nid = 1\n", "calibrations", "unknown table"),
        ("calibration = 3\n", "calibration", "array of tables"),
        ("[[calibration]\n", "-", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_files_name_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.path == path
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


def test_a_named_file_that_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nowhere.toml")
