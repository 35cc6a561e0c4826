"""What an export covers: time range, measurements, and which nodes (by id, area or bounding box).

Nodes are those that have readings in InfluxDB, narrowed by the filters. The registry supplies
each node's public location (for ``--bbox`` and GeoJSON) and reporting interval; the area is
the ``area`` tag the readings were stored with, so data of nodes no longer registered is still
exported. A bounding box applies to public locations only: a node without one is outside
every box, and an exact location is never read for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ingest.export_time import as_utc, iso_utc
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.readings import source
from ingest.registry import Location, Node, Registry
from ingest.schema import TAG_AREA, TAG_NODE


class SelectionError(ValueError):
    """An export's arguments cannot select anything: the message names the bad value."""


class BadRangeError(SelectionError):
    def __init__(self, start: datetime, end: datetime) -> None:
        super().__init__(f"--end {iso_utc(end)} is not after --start {iso_utc(start)}")
        self.start = start
        self.end = end


class BadBBoxError(SelectionError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"--bbox {text!r}: {reason} (MINLON,MINLAT,MAXLON,MAXLAT in degrees)")
        self.text = text
        self.reason = reason


class UnknownAreaError(SelectionError):
    def __init__(self, area: str, known: Sequence[str]) -> None:
        listed = ", ".join(known[:20]) if known else "none"
        super().__init__(f"unknown area {area!r} (known areas: {listed})")
        self.area = area


class UnknownExportNodeError(SelectionError):
    def __init__(self, node: str) -> None:
        super().__init__(f"unknown node {node!r}: neither registered nor in InfluxDB")
        self.node = node


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        parts = text.split(",")
        if len(parts) != 4:
            raise BadBBoxError(text, f"expected 4 numbers, got {len(parts)}")
        try:
            min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
        except ValueError:
            raise BadBBoxError(text, "not numbers") from None
        if not all(math.isfinite(v) for v in (min_lon, min_lat, max_lon, max_lat)):
            raise BadBBoxError(text, "not finite numbers")
        if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
            raise BadBBoxError(text, "longitudes must be within -180..180")
        if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
            raise BadBBoxError(text, "latitudes must be within -90..90")
        if min_lon > max_lon or min_lat > max_lat:
            raise BadBBoxError(text, "minimum above maximum")
        return cls(min_lon, min_lat, max_lon, max_lat)

    def holds(self, location: Location) -> bool:
        return (
            self.min_lon <= location.lon <= self.max_lon
            and self.min_lat <= location.lat <= self.max_lat
        )

    def __str__(self) -> str:
        return f"{self.min_lon},{self.min_lat},{self.max_lon},{self.max_lat}"


@dataclass(frozen=True)
class ExportNode:
    """A node as exports see it: never its exact location."""

    id: str
    public: Location | None
    interval: float | None
    pm_sensor: str | None = None  # from the registry, when the operator gave it


@dataclass(frozen=True)
class Selection:
    start: datetime
    end: datetime
    measurements: tuple[str, ...]
    nodes: tuple[str, ...] = ()  # --node, repeated; empty: every node
    area: str | None = None
    bbox: BBox | None = None
    # The nodes after the filters (:func:`resolve`); None until then.
    resolved: tuple[ExportNode, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if as_utc(self.start) >= as_utc(self.end):
            raise BadRangeError(self.start, self.end)

    def where(self) -> str:
        """The InfluxQL condition of this selection: time range, nodes, area."""
        parts = [
            f"time >= {quote_string(iso_utc(self.start))}",
            f"time < {quote_string(iso_utc(self.end))}",
        ]
        if self.nodes or self.bbox is not None:
            ids = list(self.nodes) if self.resolved is None else [n.id for n in self.resolved]
            # No node left after the filters: a condition that holds for none.
            either = " OR ".join(f"{quote_ident(TAG_NODE)} = {quote_string(i)}" for i in ids)
            parts.append(f"({either or quote_ident(TAG_NODE) + ' = ' + quote_string('')})")
        if self.area is not None:
            parts.append(f"{quote_ident(TAG_AREA)} = {quote_string(self.area)}")
        return " AND ".join(parts)

    def queries(self, database: str) -> list[str]:
        """One statement per measurement that selects what the export holds (it runs in
        pieces: per node, in time windows, chunked)."""
        return [
            f"SELECT * FROM {source(database, m)} WHERE {self.where()}" for m in self.measurements
        ]


def _tag_values(influx: InfluxHTTP, measurement: str, key: str, where: str = "") -> set[str]:
    condition = f" WHERE {where}" if where else ""
    q = (
        f"SHOW TAG VALUES ON {quote_ident(influx.database)} FROM {quote_ident(measurement)} "
        f"WITH KEY = {quote_ident(key)}{condition}"
    )
    return {str(values[1]) for s in influx.series(q) for values in s.get("values", [])}


def stored_nodes(influx: InfluxHTTP, measurements: Sequence[str], area: str | None) -> set[str]:
    """Nodes with readings of ``measurements`` (in the ``area`` tag, when given)."""
    where = f"{quote_ident(TAG_AREA)} = {quote_string(area)}" if area is not None else ""
    found: set[str] = set()
    for measurement in measurements:
        found |= _tag_values(influx, measurement, TAG_NODE, where)
    return found


def stored_areas(influx: InfluxHTTP, measurements: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for measurement in measurements:
        found |= _tag_values(influx, measurement, TAG_AREA)
    return found


def resolve(selection: Selection, influx: InfluxHTTP, registry: Registry | None) -> Selection:
    """The selection with its nodes listed, sorted by id; raises :class:`SelectionError`."""
    known: dict[str, Node] = {n.id: n for n in registry.nodes()} if registry else {}
    stored = stored_nodes(influx, selection.measurements, selection.area)
    if selection.area is not None and not stored:
        areas = stored_areas(influx, selection.measurements)
        if registry is not None:
            areas |= set(registry.area_names())
        if selection.area not in areas:
            raise UnknownAreaError(selection.area, sorted(areas))
    if selection.nodes:
        everywhere = stored_nodes(influx, selection.measurements, None) | set(known)
        for node in selection.nodes:
            if node not in everywhere:
                raise UnknownExportNodeError(node)
        ids = sorted(set(selection.nodes) & stored)
    else:
        ids = sorted(stored)
    chosen = []
    for node_id in ids:
        entry = known.get(node_id)
        public = entry.public if entry else None
        if selection.bbox is not None and (public is None or not selection.bbox.holds(public)):
            continue
        chosen.append(
            ExportNode(
                node_id,
                public,
                entry.interval if entry else None,
                entry.pm_sensor if entry else None,
            )
        )
    return replace(selection, resolved=tuple(chosen))
