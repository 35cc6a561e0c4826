"""Raw InfluxQL targets for Grafana's InfluxDB datasource, as a grafana-foundation-sdk dataquery.

The SDK ships no InfluxDB query type, so this module adds one the way the SDK is extended: a
model implementing ``cogvariants.Dataquery`` with ``to_json``/``from_json``, a builder, and a
registration with the SDK runtime so that ``Dashboard.from_json`` decodes the targets of panels
whose datasource type is ``influxdb`` back into :class:`InfluxQuery`.

Only raw InfluxQL is used (``rawQuery: true``), with Grafana's ``$timeFilter``,
``$__interval`` and ``$__interval_ms``: the same text runs on InfluxDB 1.x, on 2.x through its
v1 API and on 3.x.
"""

from __future__ import annotations

import enum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "influxdb"
# The datasource's uid, fixed in dashboards/provisioning/datasources/commons.yaml.
DATASOURCE_UID = "commons-influxdb"


def datasource() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class ResultFormat(enum.StrEnum):
    TIME_SERIES = "time_series"
    TABLE = "table"


class InfluxQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel."""

    ref_id: str
    query: str
    result_format: ResultFormat
    alias: str | None
    datasource: DataSourceRef | None
    hide: bool | None

    def __init__(
        self,
        ref_id: str = "",
        query: str = "",
        result_format: ResultFormat = ResultFormat.TIME_SERIES,
        alias: str | None = None,
        datasource: DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": str(self.result_format),
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("rawQuery") is not True:
            raise ValueError(f"target {data.get('refId')!r}: only raw InfluxQL queries are used")
        return cls(
            ref_id=str(data.get("refId", "")),
            query=str(data["query"]),
            result_format=ResultFormat(data.get("resultFormat", ResultFormat.TIME_SERIES)),
            alias=data.get("alias"),
            datasource=DataSourceRef.from_json(data["datasource"])
            if "datasource" in data
            else None,
            hide=data.get("hide"),
        )


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an :class:`InfluxQuery`: ``Query(text).ref_id("A").table()``."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQuery(query=query, datasource=datasource())

    def build(self) -> InfluxQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        self._internal.result_format = ResultFormat.TABLE
        return self


def register() -> None:
    """Let the SDK's ``from_json`` decode InfluxDB targets, and panel options and field configs
    into their panel plugin's models (idempotent)."""
    plugins.register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQuery.from_json)
    )


# -- InfluxQL text ------------------------------------------------------------------------


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(text: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tag_is(tag: str, value: str) -> str:
    return f"{ident(tag)} = {literal(value)}"


def any_of(tag: str, values: list[str]) -> str:
    """``("node" = 'a' OR "node" = 'b')``: a fixed set, no regular expression to escape."""
    if not values:
        raise ValueError(f"no values for {tag!r}")
    return "(" + " OR ".join(tag_is(tag, v) for v in values) + ")"
