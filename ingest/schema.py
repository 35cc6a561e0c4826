"""The InfluxDB schema: measurements, tags, fields and retention, and Reading → point.

Measured values are always floats (a JSON integer becomes a float), ``seq`` an integer,
``qa`` the integer bitmask of the flags, timestamps in seconds: a field never changes type.
"""

from __future__ import annotations

from influxdb_client import Point, WritePrecision

from commons.contract import AIR_FIELDS, NOISE_FIELDS, STATUS_FIELDS, Kind, Reading

DATABASE = "commons"
RAW_RP = "raw"
HOURLY_RP = "forever"
RAW_RETENTION_DEFAULT = "INF"

MEASUREMENT = {Kind.AIR: "air", Kind.NOISE: "noise", Kind.STATUS: "node_status"}
GATEWAY_MEASUREMENT = "gateway_status"
HOURLY_SUFFIX = "_1h"
TAG_NODE = "node"
TAG_AREA = "area"
# Public location of a node, on its status points.
FIELD_LAT = "lat"
FIELD_LON = "lon"

# Fields of each measurement that are means-able numbers, in contract order.
MEASURED_FIELDS: dict[str, tuple[str, ...]] = {
    "air": tuple(spec.name for spec in AIR_FIELDS),
    "noise": tuple(spec.name for spec in NOISE_FIELDS),
    "node_status": tuple(spec.name for spec in STATUS_FIELDS),
}


def to_point(
    reading: Reading, area: str | None, location: tuple[float, float] | None = None
) -> Point:
    """The InfluxDB point of one reading, tagged with its node and neighbourhood.

    ``location`` is the node's public (coarsened) latitude and longitude, written as the
    fields ``lat`` and ``lon`` (on status points, for maps).
    """
    point = Point(MEASUREMENT[reading.kind]).tag(TAG_NODE, reading.node)
    if area:
        point = point.tag(TAG_AREA, area)
    for name, value in reading.values.items():
        point = point.field(name, float(value))
    for name, text in reading.text.items():
        point = point.field(name, text)
    if reading.seq is not None:
        point = point.field("seq", int(reading.seq))
    if reading.fw is not None:
        point = point.field("fw", reading.fw)
    point = point.field("qa", reading.qa)
    if location is not None:
        point = point.field(FIELD_LAT, float(location[0])).field(FIELD_LON, float(location[1]))
    return point.time(reading.ts, WritePrecision.S)


def to_line(reading: Reading, area: str | None, location: tuple[float, float] | None = None) -> str:
    line: str = to_point(reading, area, location).to_line_protocol()
    return line
