"""``commons report``: HTML and PDF planner reports, from readings in the real InfluxDB.

One scene for the module: four local days (Europe/Paris) of two air nodes and one noise node
in the area "Riverside", and an air node with far higher values in "Hillside" that must not
appear. The summary's numbers are checked against a computation written here from the
generated readings, not from the report's code; the plots are decoded from the HTML; the PDF is
printed by the real headless Chromium and read back with pypdf.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import RunCommons, influx_for
from PIL import Image
from pypdf import PdfReader

from commons.contract import Kind, Reading
from commons.home import StackInfo
from ingest.influx import InfluxHTTP
from ingest.registry import Location, Registry, coarsen
from ingest.report import PLOT_KEYS, ChromiumFailedError, ReportRequest, collect, render_html
from ingest.report.pdf import SHORT_TMP_BASE, html_to_pdf
from ingest.schema import to_line

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Europe/Paris")
AREA, OTHER_AREA = "Riverside", "Hillside"
DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(4)]  # Monday to Thursday
INTERVAL_S = 600
PER_DAY = 86400 // INTERVAL_S
# Daily PM2.5 base levels per node; PM10 is twice PM2.5. Node air-2 sends only half of its
# readings on the third day (incomplete: shown, not counted), with a high value.
PM25_BASE = {"rs-air-1": [8.0, 18.0, 30.0, 12.0], "rs-air-2": [10.0, 14.0, 40.0, 26.0]}
HALF_DAY_NODE, HALF_DAY = "rs-air-2", 2
NOISE_NODE = "rs-noise-1"
NOISE_LEVELS = {"day": 62.0, "evening": 57.0, "night": 49.0}
OTHER_NODE = "hs-air-1"
LOCATIONS = {
    "rs-air-1": Location(48.85663, 2.35217),
    "rs-air-2": Location(48.86004, 2.36011),
    NOISE_NODE: Location(48.85317, 2.34893),
    OTHER_NODE: Location(48.88012, 2.30007),
}


@dataclass(frozen=True)
class Scene:
    influx: InfluxHTTP
    registry_path: Path
    home: Path  # a $COMMONS_HOME whose stack.json points at the scene's database
    readings: list[tuple[Reading, str]]
    start: datetime
    end: datetime


def _period(hour: int) -> str:
    return "day" if 7 <= hour < 19 else "evening" if 19 <= hour < 23 else "night"


def _readings() -> Iterator[tuple[Reading, str]]:
    for day_index, day in enumerate(DAYS):
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=TZ)
        for slot in range(PER_DAY):
            moment = midnight + timedelta(seconds=slot * INTERVAL_S)
            ts = int(moment.timestamp())
            hour = moment.astimezone(TZ).hour
            for node, bases in PM25_BASE.items():
                if node == HALF_DAY_NODE and day_index == HALF_DAY and slot % 2:
                    continue
                # A daily cycle of +-1.5 around the base: the day's mean is the base.
                pm25 = bases[day_index] + (1.5 if hour % 2 else -1.5)
                values = {"pm2_5": pm25, "pm10": 2 * pm25}
                yield Reading(node, Kind.AIR, ts, slot, "1.0", (), values), AREA
            level = NOISE_LEVELS[_period(hour)]
            noise = {"period": float(INTERVAL_S), "laeq": level}
            yield Reading(NOISE_NODE, Kind.NOISE, ts, slot, "1.0", (), noise), AREA
            other = {"pm2_5": 200.0, "pm10": 400.0}
            yield Reading(OTHER_NODE, Kind.AIR, ts, slot, "1.0", (), other), OTHER_AREA


@pytest.fixture(scope="module")
def scene(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    database = f"report_{uuid.uuid4().hex[:8]}"
    influx = influx_for(stack, database)
    home = tmp_path_factory.mktemp("report-home")
    registry_path = home / "registry.sqlite"
    with Registry(registry_path) as registry:
        for node, location in LOCATIONS.items():
            area = OTHER_AREA if node == OTHER_NODE else AREA
            registry.add(node, area, location, interval=INTERVAL_S)
    readings = list(_readings())
    lines = [to_line(reading, area) for reading, area in readings]
    for first in range(0, len(lines), 5000):
        result = influx.write(lines[first : first + 5000])
        assert result.status == 204, result.reason
    described = stack.to_json()
    described["influx"] = {"url": stack.influx.url, "database": database}
    (home / "stack.json").write_text(json.dumps(described))
    start = datetime.combine(DAYS[0], datetime.min.time(), tzinfo=TZ)
    end = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    yield Scene(influx, registry_path, home, readings, start, end)
    influx.execute(f'DROP DATABASE "{database}"')
    influx.close()


# -- an independent computation from the generated readings ----------------------------------


@dataclass(frozen=True)
class NodeDay:
    n: int
    pm25: float
    pm10: float

    @property
    def valid(self) -> bool:
        return self.n >= 0.75 * PER_DAY


def expected_days(scene: Scene) -> dict[str, dict[date, NodeDay]]:
    sums: dict[str, dict[date, list[float]]] = {}
    for reading, area in scene.readings:
        if area != AREA or reading.kind is not Kind.AIR:
            continue
        day = datetime.fromtimestamp(reading.ts, UTC).astimezone(TZ).date()
        entry = sums.setdefault(reading.node, {}).setdefault(day, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += reading.values["pm2_5"]
        entry[2] += reading.values["pm10"]
    return {
        node: {day: NodeDay(int(n), s25 / n, s10 / n) for day, (n, s25, s10) in days.items()}
        for node, days in sums.items()
    }


def expected_lden() -> float:
    d, e, n = (NOISE_LEVELS[p] for p in ("day", "evening", "night"))
    return 10 * math.log10(
        (12 * 10 ** (d / 10) + 4 * 10 ** ((e + 5) / 10) + 8 * 10 ** ((n + 10) / 10)) / 24
    )


# -- reading the HTML back ---------------------------------------------------------------------


class ReportParser(HTMLParser):
    """Images by their figure's id, table cells by table id, and the summary's list items."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.summary: list[str] = []
        self._figure: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "figure":
            self._figure = (attributes.get("id") or "").removeprefix("plot-")
        elif tag == "img" and self._figure:
            self.images[self._figure] = attributes.get("src") or ""
        elif tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.summary.append(" ".join("".join(self._item).split()))
            self._item = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._item is not None:
            self._item.append(data)


def table(parser: ReportParser, name: str) -> dict[str, dict[str, str]]:
    """Rows of a table by their first cell, each a dict by header."""
    header, *body = parser.tables[name]
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


@pytest.fixture(scope="module")
def html(scene: Scene) -> str:
    request = ReportRequest(AREA, scene.start, scene.end, TZ)
    with Registry(scene.registry_path) as registry:
        return render_html(collect(scene.influx, registry, request))


@pytest.fixture(scope="module")
def parsed(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    return parser


# -- tests ------------------------------------------------------------------------------------


def test_summary_numbers_match_an_independent_computation(
    scene: Scene, parsed: ReportParser
) -> None:
    days = expected_days(scene)
    valid = {node: {d: v for d, v in per.items() if v.valid} for node, per in days.items()}
    assert not valid[HALF_DAY_NODE].get(DAYS[HALF_DAY])  # the scene has its incomplete day

    nodes = table(parsed, "air-nodes")
    assert set(nodes) == set(PM25_BASE)
    for node, per_day in valid.items():
        row = nodes[node]
        assert row["days"] == str(len(days[node]))
        assert row["valid"] == str(len(per_day))
        mean = sum(v.pm25 for v in per_day.values()) / len(per_day)
        assert row["PM2.5 mean"] == f"{mean:.1f}"
        assert row["PM2.5 max day"] == f"{max(v.pm25 for v in per_day.values()):.1f}"
        assert row["> PM2.5 15 (WHO)"] == str(sum(v.pm25 > 15 for v in per_day.values()))
        assert row["> PM2.5 25 (EU)"] == str(sum(v.pm25 > 25 for v in per_day.values()))
        assert row["> PM10 45 (WHO)"] == str(sum(v.pm10 > 45 for v in per_day.values()))

    exceedances = parsed.tables["exceedances"][1:]
    by_limit = {(row[0], row[1]): row for row in exceedances}
    for label, value, pollutant in (
        ("WHO 2021 24-h guideline, PM2.5", 15, "pm25"),
        ("EU daily limit from 2030, PM2.5", 25, "pm25"),
        ("WHO 2021 24-h guideline, PM10", 45, "pm10"),
    ):

        def over(v: NodeDay, value: float = value, pollutant: str = pollutant) -> bool:
            return (v.pm25 if pollutant == "pm25" else v.pm10) > value

        row = by_limit[(label, str(value))]
        distinct = {d for per in valid.values() for d, v in per.items() if over(v)}
        node_days = sum(over(v) for per in valid.values() for v in per.values())
        invalid_over = sum(over(v) for per in days.values() for v in per.values() if not v.valid)
        assert row[2:] == [
            str(len(distinct)),
            str(node_days),
            str(sum(len(per) for per in valid.values())),
            str(invalid_over),
        ], label

    who_pm25_days = {d for per in valid.values() for d, v in per.items() if v.pm25 > 15}
    sentence = next(s for s in parsed.summary if s.startswith("PM2.5: on"))
    assert f"on {len(who_pm25_days)} days the daily mean" in sentence
    assert any("incomplete data had a PM2.5 mean above 15" in s for s in parsed.summary)


def test_noise_levels_against_end_formula(parsed: ReportParser) -> None:
    row = table(parsed, "noise-nodes")[NOISE_NODE]
    assert row["Lday"] == f"{NOISE_LEVELS['day']:.1f}"
    assert row["Lnight"] == f"{NOISE_LEVELS['night']:.1f}"
    assert row["Lden"] == f"{expected_lden():.1f}"
    assert row["days with Lden"] == str(len(DAYS))
    assert any("at 1 of 1 node with an Lden" in s for s in parsed.summary)
    # Lnight 49 dB is at or above the WHO road-traffic value of 45 dB.
    assert any(s.startswith("Lnight was at or above") and NOISE_NODE in s for s in parsed.summary)


def test_other_area_and_private_locations_stay_out(html: str, parsed: ReportParser) -> None:
    assert OTHER_NODE not in html
    sites = table(parsed, "sites")
    assert set(sites) == {*PM25_BASE, NOISE_NODE}
    for node, row in sites.items():
        public, exact = coarsen(LOCATIONS[node]), LOCATIONS[node]
        assert row["public latitude"] == f"{public.lat:.5f}"
        assert row["public longitude"] == f"{public.lon:.5f}"
        # The exact (private) location is nowhere in the report.
        assert (public.lat, public.lon) != (exact.lat, exact.lon)
        assert f"{exact.lat:.5f}" not in html and f"{exact.lon:.5f}" not in html


def test_every_plot_is_an_embedded_png(parsed: ReportParser, html: str) -> None:
    assert set(parsed.images) == set(PLOT_KEYS)
    for key, src in parsed.images.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), key
        image = Image.open(io.BytesIO(base64.b64decode(src.removeprefix(prefix))))
        assert image.format == "PNG"
        assert image.width > 400 and image.height > 150, (key, image.size)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20, key  # more than a blank or a message
    # Self-contained: nothing is fetched when the file is opened.
    assert not re.search(
        r"""(src|href)=["']?(https?:)?//""", html.replace('href="https://opendatacommons', "")
    )


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_pdf_by_headless_chromium(scene: Scene, run_commons: RunCommons, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    profiles_before = set(Path(SHORT_TMP_BASE).glob("commons-chromium-*"))
    result = run_commons(
        "report", "--area", AREA, "--start", "2026-03-02", "--end", "2026-03-06",
        "--tz", "Europe/Paris", "--out", str(out),
        home=scene.home, env={"TMPDIR": str(own_tmp)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "3 nodes, 4 days" in result.stderr
    assert not _processes_with(f"TMPDIR={own_tmp}")  # Chromium left nothing behind
    assert not _processes_with(f"TMPDIR={SHORT_TMP_BASE}/commons-chromium-")
    assert list(own_tmp.iterdir()) == []  # nor its profile
    # A long $TMPDIR (as here) moves the profile to a short folder; it is gone too.
    assert set(Path(SHORT_TMP_BASE).glob("commons-chromium-*")) <= profiles_before
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    reader = PdfReader(out)
    # A page per section (summary, air, noise, quality, nodes); long ones run over.
    assert 5 <= len(reader.pages) <= 12
    first = " ".join(reader.pages[0].extract_text().split())
    assert "Air quality and noise in Riverside" in first
    assert "WHO 2021 24-hour guideline of 15 µg/m³" in first
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(float(width) / 72 * 25.4), round(float(height) / 72 * 25.4)) == (210, 297)


def test_cli_errors(scene: Scene, run_commons: RunCommons, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    common = ("--start", "2026-03-02", "--end", "2026-03-06", "--out", out)
    unknown = run_commons("report", "--area", "Nowhere", *common, home=scene.home)
    assert unknown.returncode == 1
    assert "area 'Nowhere' has no registered node" in unknown.stderr
    assert "Hillside, Riverside" in unknown.stderr
    bad_tz = run_commons("report", "--area", AREA, *common, "--tz", "Mars/Olympus", home=scene.home)
    assert bad_tz.returncode == 2 and "unknown time zone 'Mars/Olympus'" in bad_tz.stderr
    empty = run_commons(
        "report", "--area", AREA, "--start", "2026-03-02", "--end", "2026-03-02", "--out", out,
        home=scene.home,
    )  # fmt: skip
    assert empty.returncode == 2 and "the period is empty" in empty.stderr
    nothing = run_commons(
        "report", "--area", AREA, "--start", "2020-01-01", "--end", "2020-01-02", "--out", out,
        home=scene.home,
    )  # fmt: skip
    assert nothing.returncode == 1 and "no air or noise readings" in nothing.stderr
    assert not Path(out).exists()
    # The time zone from $COMMONS_TZ: naive times are local, days are Paris days.
    made = run_commons(
        "report", "--area", AREA, *common, home=scene.home, env={"COMMONS_TZ": "Europe/Paris"}
    )
    assert made.returncode == 0, made.stderr
    assert "3 nodes, 4 days" in made.stderr
    text = Path(out).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "2 March 2026 to 5 March 2026 (whole days)" in text
    assert "local time (Europe/Paris)" in text


def test_missing_chromium_is_named(scene: Scene, run_commons: RunCommons, tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    bare = {"PATH": str(Path(sys.executable).parent)}  # the venv only: no chromium there
    result = run_commons(
        "report", "--area", AREA, "--start", "2026-03-02", "--end", "2026-03-06",
        "--out", str(out), home=scene.home, env=bare,
    )  # fmt: skip
    assert result.returncode == 3
    assert "no headless Chromium found" in result.stderr and "chromium" in result.stderr
    assert not out.exists()


def test_chromium_overrunning_its_timeout_is_killed_with_its_helpers(
    html: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"COMMONS_REPORT_TEST={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    page = tmp_path / "r.html"
    page.write_text(html, encoding="utf-8")
    with pytest.raises(ChromiumFailedError, match=r"did not finish within 0\.2 s"):
        html_to_pdf(page, tmp_path / "r.pdf", timeout=0.2)
    assert not _processes_with(marker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
