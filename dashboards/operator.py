"""The operator's dashboard (not public): gateway health, node health, completeness per node."""

from __future__ import annotations

from collections import defaultdict

from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import queries as q
from dashboards.boards import Board
from dashboards.city import City
from dashboards.influxql import Query, any_of, ident
from dashboards.panels import right_axis, table_panel, timeseries_panel
from dashboards.standards import DEFAULT_INTERVAL_S
from ingest.dbinit import COUNT_SUFFIX
from ingest.schema import GATEWAY_MEASUREMENT, TAG_NODE

GATEWAY_ALIAS = "$tag_gateway $col"
NODE_ALIAS = "$tag_node"
# The field whose hourly count says how many readings of each kind arrived.
COUNTED = {"air": "pm2_5", "noise": "laeq"}


def _gateway_max(fields: list[str]) -> str:
    select = ", ".join(f"max({ident(f)}) AS {ident(f)}" for f in fields)
    return (
        f"SELECT {select} FROM {ident(GATEWAY_MEASUREMENT)} WHERE {q.TIME_FILTER} "
        f"GROUP BY time({q.INTERVAL}), {ident('gateway')} fill(none)"
    )


def _status(function: str, field: str) -> Query:
    return Query(
        f"SELECT {function}({ident(field)}) AS {ident(field)} FROM {ident('node_status')} "
        f"WHERE {q.TIME_FILTER} GROUP BY time({q.INTERVAL}), {ident(TAG_NODE)} fill(none)"
    ).alias(NODE_ALIAS)


def completeness_query(node_ids: list[str], interval_s: float) -> str:
    """Readings per ``$__interval`` as a percentage of what a node sending every
    ``interval_s`` seconds would send, from the hourly counts of air and noise readings."""
    expected = f"({q.INTERVAL_MS} / 1000 / {interval_s:g})"
    select = ", ".join(
        f"100 * sum({ident(field + COUNT_SUFFIX)}) / {expected} AS {ident(kind)}"
        for kind, field in COUNTED.items()
    )
    sources = ", ".join(q.source(m, hourly=True) for m in COUNTED)
    return (
        f"SELECT {select} FROM {sources} WHERE {any_of(TAG_NODE, node_ids)} AND {q.TIME_FILTER} "
        f"GROUP BY time({q.INTERVAL}), {ident(TAG_NODE)} fill(none)"
    )


def operator_dashboard(city: City) -> Dashboard:
    board = Board(
        title=f"{city.name}: operator",
        name="operator",
        public=False,
        description="Gateway and node health and data completeness, for the people who run "
        "the network. Not public.",
    )
    board.row("Gateways")
    queue = timeseries_panel(
        "Queue: readings waiting, and the age of the oldest",
        [
            Query(_gateway_max(["queued"])).alias(GATEWAY_ALIAS),
            Query(_gateway_max(["oldest_queued_s"])).alias(GATEWAY_ALIAS),
        ],
        units.Number,
        False,
        "Messages in each gateway's durable queue, and how long the oldest has waited (s, right).",
    )
    board.add(right_axis(queue.time_from("7d"), ".*oldest_queued_s$", units.Seconds))
    board.add(
        timeseries_panel(
            "Counters since each queue was created",
            [
                Query(
                    _gateway_max(["received", "written", "rejected", "retried", "rate_limited"])
                ).alias(GATEWAY_ALIAS)
            ],
            units.Number,
            False,
            "Messages received, points written, messages rejected to the dead-letter store, "
            "write attempts retried, messages refused by the per-node rate limit.",
        ).time_from("7d")
    )
    board.add(
        timeseries_panel(
            "Disk free on each gateway",
            [
                Query(
                    f"SELECT min({ident('disk_free')}) AS {ident('disk_free')} "
                    f"FROM {ident(GATEWAY_MEASUREMENT)} WHERE {q.TIME_FILTER} "
                    f"GROUP BY time({q.INTERVAL}), {ident('gateway')} fill(none)"
                ).alias("$tag_gateway")
            ],
            units.BytesSI,
            False,
            "Free space on the disk that holds the gateway's queue.",
        ).time_from("7d")
    )
    board.row("Nodes")
    board.add(
        table_panel(
            "Nodes: last seen and latest health",
            [
                Query(
                    f"SELECT last({ident('uptime')}) AS {ident('uptime')} FROM "
                    f"{ident('node_status')} WHERE {q.TIME_FILTER} GROUP BY {ident(TAG_NODE)}"
                ),
                Query(
                    "SELECT "
                    + ", ".join(
                        f"last({ident(f)}) AS {ident(f)}"
                        for f in ("heap_free", "rssi", "buffered", "pm_hours", "state")
                    )
                    + f" FROM {ident('node_status')} WHERE {q.TIME_FILTER} "
                    f"GROUP BY {ident(TAG_NODE)}"
                ),
            ],
            "The time of each node's latest status (last seen) and its uptime, then its latest "
            "free heap, Wi-Fi RSSI, readings buffered in flash, PM sensor run hours and state.",
        )
    )
    for title, function, field, unit in (
        ("Free heap (lowest per interval)", "min", "heap_free", units.BytesIEC),
        ("Wi-Fi signal RSSI", "mean", "rssi", units.DecibelMilliWatt),
        ("Readings buffered in flash (highest per interval)", "max", "buffered", units.Number),
        ("PM sensor run hours", "max", "pm_hours", units.Hours),
    ):
        board.add(
            timeseries_panel(
                title,
                [_status(function, field)],
                unit,
                False,
                f"{field} from each node's status messages.",
            )
        )
    board.row("Completeness")
    by_interval: dict[float, list[str]] = defaultdict(list)
    for node in city.nodes:
        by_interval[node.interval_s or DEFAULT_INTERVAL_S].append(node.id)
    board.add(
        timeseries_panel(
            "Completeness per node (% of the readings its interval promises, hourly data)",
            [
                Query(completeness_query(ids, interval)).alias(f"{NODE_ALIAS} $col")
                for interval, ids in sorted(by_interval.items())
            ],
            units.Percent,
            True,
            "Readings that arrived per interval, as a share of what the node's reporting "
            "interval (from the registry; the firmware's default 60 s where unknown) promises.",
        ).span(24)
    )
    return board.build()
