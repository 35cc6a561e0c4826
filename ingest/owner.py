"""Owners' rights: take everything a node ever sent, or erase it from InfluxDB.

``commons node export ID`` runs the ordinary export (:mod:`ingest.export`) over the node's
raw ``air``, ``noise`` and ``node_status`` readings, from the first to the last.

``commons node forget ID`` deletes every point tagged with the node, in every measurement of
every retention policy (raw readings in ``raw``, hourly means in ``forever``), with
``DROP SERIES WHERE "node" = 'ID'``: InfluxDB 1.x drops the series from the index and their
points from every shard of the database, whatever the retention policy. It then looks again,
measurement by measurement and policy by policy, and falls back to ``DELETE WHERE`` before it
reports anything left as an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.export import READING_MEASUREMENTS, STATUS_MEASUREMENT, ExportRequest, Format
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.readings import source
from ingest.registry import check_node_id
from ingest.schema import TAG_NODE
from ingest.selection import Selection

log = logging.getLogger(__name__)

# Everything a node sends, in export order.
NODE_MEASUREMENTS = (*READING_MEASUREMENTS, STATUS_MEASUREMENT)
# Before any node's clock can be right (commons.contract refuses earlier timestamps anyway).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Readings a few minutes ahead of the server's clock are accepted (clock lead): include them.
FUTURE_MARGIN = timedelta(days=1)


class DataLeftError(Exception):
    """Points of a node were still in InfluxDB after deletion."""

    def __init__(self, node: str, left: list[StoredPoints]) -> None:
        where = ", ".join(f"{c.retention_policy}.{c.measurement}: {c.points}" for c in left)
        super().__init__(f"node {node!r}: points left after deletion ({where})")
        self.node = node
        self.left = left


@dataclass(frozen=True)
class StoredPoints:
    retention_policy: str
    measurement: str
    points: int


def node_export_request(node: str, fmt: Format, now: datetime | None = None) -> ExportRequest:
    """The export of all of ``node``'s raw readings, status included."""
    check_node_id(node)
    end = (now or datetime.now(UTC)) + FUTURE_MARGIN
    selection = Selection(EPOCH, end, NODE_MEASUREMENTS, (node,))
    note = f"everything node {node} sent: raw readings and status, first to last"
    return ExportRequest(selection, fmt, "raw", False, (note,))


def _names(influx: InfluxHTTP, q: str, column: str = "name") -> list[str]:
    out: list[str] = []
    for series in influx.series(q):
        at = series["columns"].index(column)
        out.extend(str(values[at]) for values in series.get("values", []))
    return out


def retention_policies(influx: InfluxHTTP) -> list[str]:
    return _names(influx, f"SHOW RETENTION POLICIES ON {quote_ident(influx.database)}")


def measurements(influx: InfluxHTTP) -> list[str]:
    return _names(influx, f"SHOW MEASUREMENTS ON {quote_ident(influx.database)}")


def _node_condition(node: str) -> str:
    return f"{quote_ident(TAG_NODE)} = {quote_string(node)}"


def stored_points(influx: InfluxHTTP, node: str) -> list[StoredPoints]:
    """How many points of ``node`` each measurement of each retention policy holds (only
    those that hold some). A point's count is its most-populated field's count."""
    found: list[StoredPoints] = []
    names = measurements(influx)
    for rp in retention_policies(influx):
        for measurement in names:
            q = (
                f"SELECT count(*) FROM {source(influx.database, measurement, rp)} "
                f"WHERE {_node_condition(node)}"
            )
            points = 0
            for series in influx.series(q):
                for values in series.get("values", []):
                    points = max([points, *(int(v) for v in values[1:] if v is not None)])
            if points:
                found.append(StoredPoints(rp, measurement, points))
    return found


def series_left(influx: InfluxHTTP, node: str) -> list[str]:
    """The series keys of ``node`` still in the index."""
    q = f"SHOW SERIES ON {quote_ident(influx.database)} WHERE {_node_condition(node)}"
    return _names(influx, q, "key")


def forget(influx: InfluxHTTP, node: str) -> list[StoredPoints]:
    """Delete every point of ``node`` in every measurement and retention policy; return what
    was there. Raises :class:`DataLeftError` if anything is left."""
    check_node_id(node)
    before = stored_points(influx, node)
    influx.execute(f"DROP SERIES WHERE {_node_condition(node)}")
    left = stored_points(influx, node)
    if left or series_left(influx, node):
        log.warning("node %s: DROP SERIES left %s; deleting point by point", node, left)
        for measurement in measurements(influx):
            influx.execute(f"DELETE FROM {quote_ident(measurement)} WHERE {_node_condition(node)}")
        left = stored_points(influx, node)
    if left:
        raise DataLeftError(node, left)
    return before
