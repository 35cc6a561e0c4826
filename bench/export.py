"""Benchmark: ``commons export`` against a bare InfluxQL query of the same data, same run.

A scratch stack (``commons stack up`` in a temporary ``$COMMONS_HOME``) gets two data sets of
air readings, written as line protocol straight into its database:

- year:  a year of hourly readings from ``--nodes`` nodes (100: 876,000 readings);
- month: a month of readings every ``--interval`` seconds from the same number of nodes
  (100 at 300 s: 864,000 readings).

Each export runs as its own ``commons export`` process, and so does the baseline (a chunked
``SELECT *`` of the same range, its rows parsed and discarded, as the export's reader does).
Time is wall-clock; peak memory is the process's maximum resident set size as the kernel
reports it to its parent (``wait4``), so nothing samples and nothing is missed.

    python bench/export.py [--nodes 100] [--interval 300] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from commons.contract import Kind, Reading
from commons.stack import Stack
from ingest.dbinit import init_database
from ingest.influx import InfluxHTTP
from ingest.registry import Location, Registry
from ingest.schema import RAW_RP, to_line

COMMONS = Path(sys.executable).parent / "commons"
YEAR = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
MONTH = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC))
WRITE_BATCH = 20_000
# Where the synthetic nodes stand (a grid around a city centre), for GeoJSON.
CENTRE = Location(48.85, 2.35)


@dataclass(frozen=True)
class Run:
    label: str
    rows: int  # rows written (the baseline: rows read)
    seconds: float
    peak_rss: int  # bytes
    size: int  # bytes written
    readings: int = 0  # readings read from InfluxDB (the data set's size)


def _line(node: str, area: str, ts: int, seq: int) -> str:
    """Line protocol of one air reading, as ``ingest.schema.to_line`` writes it (checked)."""
    pm25 = 4.0 + (seq * 7919 % 400) / 10
    return (
        f"air,area={area},node={node} pm1={pm25 * 0.7:.3f},pm2_5={pm25!r},pm10={pm25 + 6.5!r},"
        f'temp=11.5,rh={35 + seq % 50}.0,pres=1013.2,seq={seq}i,fw="bench",qa=0i {ts}'
    )


def _parse_line(line: str) -> tuple[str, dict[str, object], str]:
    """(series key, typed fields, timestamp) of a line without escaped characters."""
    key, fields, ts = line.split(" ")
    typed: dict[str, object] = {}
    for item in fields.split(","):
        name, text = item.split("=")
        if text.endswith("i"):
            typed[name] = int(text[:-1])
        elif text.startswith('"'):
            typed[name] = text.strip('"')
        else:
            typed[name] = float(text)
    return key, typed, ts


def _check_line_format() -> None:
    pm25 = 4.0 + (3 * 7919 % 400) / 10
    values = {
        "pm1": float(f"{pm25 * 0.7:.3f}"),
        "pm2_5": pm25,
        "pm10": pm25 + 6.5,
        "temp": 11.5,
        "rh": 38.0,
        "pres": 1013.2,
    }
    reading = Reading("n-000", Kind.AIR, 1_700_000_000, 3, "bench", (), values)
    mine = _parse_line(_line("n-000", "a0", 1_700_000_000, 3))
    assert mine == _parse_line(to_line(reading, "a0")), mine


def write_data(
    influx: InfluxHTTP, prefix: str, nodes: int, span: tuple[datetime, datetime], step: int
) -> int:
    start, end = (int(t.timestamp()) for t in span)
    batch: list[str] = []
    total = 0
    for n in range(nodes):
        node, area = f"{prefix}-{n:03d}", f"area-{n % 5}"
        for seq, ts in enumerate(range(start, end, step)):
            batch.append(_line(node, area, ts, seq))
            if len(batch) >= WRITE_BATCH:
                result = influx.write(batch, timeout=300)
                assert result.status == 204, result
                total += len(batch)
                batch.clear()
    if batch:
        result = influx.write(batch, timeout=300)
        assert result.status == 204, result
        total += len(batch)
    return total


def register(home: Path, prefix: str, nodes: int, interval: float) -> None:
    with Registry(home / "registry.sqlite") as registry:
        for n in range(nodes):
            where = Location(CENTRE.lat + (n // 10) * 0.004, CENTRE.lon + (n % 10) * 0.006)
            registry.add(f"{prefix}-{n:03d}", f"area-{n % 5}", where, interval=interval)


def measured(label: str, argv: list[str], env: dict[str, str], out: Path | None) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}\n{stderr}")
    if out is None:
        rows = int(stdout.split()[0])
        size = 0
    else:
        rows = int(stderr.split("exported ")[1].split()[0])
        size = out.stat().st_size
    return Run(label, rows, seconds, usage.ru_maxrss * 1024, size)


BARE = """
import sys
from ingest.influx import InfluxHTTP
influx = InfluxHTTP(sys.argv[1], sys.argv[2])
rows = 0
for series in influx.stream(sys.argv[3], chunk_size=1000):
    rows += len(series.get("values", []))
print(rows)
"""


def bare(
    url: str, database: str, prefix: str, span: tuple[datetime, datetime], env: dict[str, str]
) -> Run:
    q = (
        f'SELECT * FROM "{database}"."{RAW_RP}"."air" WHERE "node" =~ /^{prefix}-/ '
        f"AND time >= '{span[0]:%Y-%m-%dT%H:%M:%SZ}' AND time < '{span[1]:%Y-%m-%dT%H:%M:%SZ}'"
    )
    return measured(
        f"{prefix}: bare InfluxQL query", [sys.executable, "-c", BARE, url, database, q], env, None
    )


def export(
    home: Path,
    prefix: str,
    span: tuple[datetime, datetime],
    fmt: str,
    level: str,
    env: dict[str, str],
) -> Run:
    out = home / f"{prefix}-{level}.{fmt}"
    argv = [
        str(COMMONS),
        *("export", "--start", span[0].isoformat(), "--end", span[1].isoformat()),
        *("--measurement", "air", "--format", fmt, "--aggregate", level, "--out", str(out)),
        *(("--indicators",) if level != "raw" else ()),
    ]
    # All nodes of the data set: both sets are the whole database's air readings in their span.
    return measured(f"{prefix}: export {level} {fmt}", argv, env, out)


def table(runs: list[Run]) -> str:
    lines = [
        f"| {'run':36} | {'rows out':>9} | {'seconds':>8} | {'readings/s':>10} | "
        f"{'peak RSS MiB':>12} | {'file MiB':>8} |",
        f"| {'-' * 36} | {'-' * 8}: | {'-' * 7}: | {'-' * 9}: | {'-' * 11}: | {'-' * 7}: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.label:36} | {r.rows:9d} | {r.seconds:8.1f} | {r.readings / r.seconds:10.0f} | "
            f"{r.peak_rss / 2**20:12.1f} | {r.size / 2**20:8.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument(
        "--interval", type=int, default=300, help="Seconds between readings in the month."
    )
    parser.add_argument("--quick", action="store_true", help="10 nodes: a check that it runs.")
    args = parser.parse_args()
    nodes = 10 if args.quick else args.nodes
    _check_line_format()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="commons-bench-export-") as tmp:
        home = Path(tmp)
        stack = Stack(home)
        info = stack.up()
        try:
            influx = InfluxHTTP(info.influx.url, info.influx.database, retention_policy=RAW_RP)
            init_database(influx)
            t0 = time.perf_counter()
            written = write_data(influx, "year", nodes, YEAR, 3600)
            written += write_data(influx, "month", nodes, MONTH, args.interval)
            print(f"wrote {written} readings in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            register(home, "year", nodes, 3600)
            register(home, "month", nodes, args.interval)
            env = {**os.environ, "COMMONS_HOME": str(home), "COMMONS_TZ": "Europe/Paris"}
            for prefix, span, cases in (
                (
                    "year",
                    YEAR,
                    [
                        ("csv", "raw"),
                        ("parquet", "raw"),
                        ("geojson", "raw"),
                        ("parquet", "hourly"),
                        ("csv", "daily"),
                        ("geojson", "daily"),
                    ],
                ),
                (
                    "month",
                    MONTH,
                    [("csv", "raw"), ("parquet", "raw"), ("geojson", "raw"), ("parquet", "hourly")],
                ),
            ):
                baseline = bare(info.influx.url, info.influx.database, prefix, span, env)
                runs.append(replace(baseline, readings=baseline.rows))
                for fmt, level in cases:
                    run = export(home, prefix, span, fmt, level, env)
                    runs.append(replace(run, readings=baseline.rows))
                    print(table(runs[-1:]).splitlines()[-1], file=sys.stderr)
        finally:
            stack.down()
    print(f"nodes per data set: {nodes}; month interval: {args.interval} s; tz Europe/Paris")
    print(table(runs))


if __name__ == "__main__":
    main()
