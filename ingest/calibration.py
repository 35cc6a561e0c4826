"""Calibration as versioned data: corrected values beside the raw ones, with their provenance.

The calibrations live in a TOML file (default ``$COMMONS_HOME/calibration.toml``), one
``[[calibration]]`` table each::

    [[calibration]]
    id = "epa-purpleair"
    version = 1
    source = "Barkjohn et al. 2021, AMT 14, 4617, doi:10.5194/amt-14-4617-2021"
    applies_to = { model = "pms5003" }          # or { nodes = ["esp32-a1b2c3"] }
    valid_from = 2024-01-01T00:00:00Z           # or a date (midnight UTC)
    method = "epa_purpleair_2021"
    form = "piecewise"                          # or "linear" (the 2021 paper's single line)

    [[calibration]]
    id = "colocation-town-hall"
    version = 2
    source = "co-location with the reference station, May 2025"
    applies_to = { nodes = ["esp32-a1b2c3"] }
    valid_from = 2025-06-01
    method = "linear"                           # corrected = slope * raw + intercept
    fields = ["pm2_5", "pm10"]
    slope = 0.81
    intercept = 1.3

    [[calibration]]
    ...
    method = "offset"                           # corrected = raw + offset, e.g. a microphone
    fields = ["laeq", "lafmax", "lafmin", "la10", "la50", "la90"]
    offset = -1.5

For a reading, each field takes the calibration that applies to it at the reading's time: one
for the node itself before one for its sensor model, then the latest ``valid_from``, then the
highest version. :meth:`Calibrator.apply` returns ``<field>_corrected`` and ``calibration``
(``id@version``, ``;``-joined when several fields were corrected by different calibrations);
the raw values are never replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from commons.home import commons_home
from commons.settings import ConfigError, load_toml
from ingest.schema import MEASURED_FIELDS

DEFAULT_FILE = "calibration.toml"
CORRECTED_SUFFIX = "_corrected"
CALIBRATION_COLUMN = "calibration"

# US EPA correction for PurpleAir (Plantower CF=1) PM2.5 (REFERENCE 4.1).
# Barkjohn, Gantt & Clements 2021: PM2.5 = 0.524·x - 0.0862·RH + 5.75.
EPA_SLOPE_LOW = 0.524
EPA_RH_COEFFICIENT = 0.0862
EPA_INTERCEPT = 5.75
# Extended (piecewise) form, Barkjohn et al. 2022 / AirNow Fire and Smoke Map, Oct 2021.
EPA_SLOPE_HIGH = 0.786
EPA_SLOPE_SMOKE = 0.69
EPA_SMOKE_INTERCEPT = 2.966
EPA_SMOKE_QUADRATIC = 8.84e-4
EPA_BLEND_LOW = (30.0, 50.0)  # x/20 - 1.5 runs from 0 to 1 over [30, 50)
EPA_BLEND_HIGH = (210.0, 260.0)  # x/50 - 4.2 runs from 0 to 1 over [210, 260)

EPA_METHOD = "epa_purpleair_2021"
LINEAR_METHOD = "linear"
OFFSET_METHOD = "offset"
EPA_FORMS = ("piecewise", "linear")
COMMON_KEYS = {"id", "version", "source", "applies_to", "valid_from", "method"}
METHOD_KEYS = {
    EPA_METHOD: {"form"},
    LINEAR_METHOD: {"fields", "slope", "intercept"},
    OFFSET_METHOD: {"fields", "offset"},
}
_ALL_FIELDS = frozenset(name for fields in MEASURED_FIELDS.values() for name in fields)


def epa_purpleair(cf1: float, rh: float, form: str = "piecewise") -> float:
    """US EPA-corrected PM2.5 from a Plantower CF=1 PM2.5 value and RH in %, clamped to >= 0.

    ``piecewise`` is the extended correction; ``linear`` the 2021 paper's single line. The
    range is selected by the same value that goes into the formula (REFERENCE 4.1 notes this
    as an open point).
    """
    x = cf1
    low = EPA_SLOPE_LOW * x - EPA_RH_COEFFICIENT * rh + EPA_INTERCEPT
    if form == "linear" or x < EPA_BLEND_LOW[0]:
        value = low
    elif x < EPA_BLEND_LOW[1]:
        s = x / 20 - 1.5
        slope = EPA_SLOPE_HIGH * s + EPA_SLOPE_LOW * (1 - s)
        value = slope * x - EPA_RH_COEFFICIENT * rh + EPA_INTERCEPT
    elif x < EPA_BLEND_HIGH[0]:
        value = EPA_SLOPE_HIGH * x - EPA_RH_COEFFICIENT * rh + EPA_INTERCEPT
    elif x < EPA_BLEND_HIGH[1]:
        s = x / 50 - 4.2
        value = (
            (EPA_SLOPE_SMOKE * s + EPA_SLOPE_HIGH * (1 - s)) * x
            - EPA_RH_COEFFICIENT * rh * (1 - s)
            + EPA_SMOKE_INTERCEPT * s
            + EPA_INTERCEPT * (1 - s)
            + EPA_SMOKE_QUADRATIC * x * x * s
        )
    else:
        value = EPA_SMOKE_INTERCEPT + EPA_SLOPE_SMOKE * x + EPA_SMOKE_QUADRATIC * x * x
    return max(value, 0.0)


@dataclass(frozen=True)
class Calibration:
    """One calibration, as read from the file."""

    id: str
    version: int
    source: str
    nodes: frozenset[str]
    model: str | None
    valid_from: datetime
    method: str
    fields: tuple[str, ...]
    slope: float = 1.0
    intercept: float = 0.0
    offset: float = 0.0
    form: str = "piecewise"

    @property
    def tag(self) -> str:
        return f"{self.id}@{self.version}"

    def applies(self, node: str, model: str | None, moment: datetime) -> bool:
        if moment < self.valid_from:
            return False
        return node in self.nodes or (self.model is not None and self.model == model)

    def correct(self, name: str, row: Mapping[str, Any]) -> float | None:
        """The corrected value of field ``name`` of ``row`` (None if an input is missing)."""
        raw = _number(row.get(name))
        if raw is None:
            return None
        if self.method == EPA_METHOD:
            rh = _number(row.get("rh"))
            return None if rh is None else epa_purpleair(raw, rh, self.form)
        if self.method == LINEAR_METHOD:
            return self.slope * raw + self.intercept
        return raw + self.offset

    def describe(self) -> dict[str, Any]:
        """Provenance for an export's metadata."""
        return {
            "id": self.id,
            "version": self.version,
            "source": self.source,
            "applies_to": {"nodes": sorted(self.nodes)} if self.nodes else {"model": self.model},
            "valid_from": self.valid_from.isoformat(),
            "method": self.method,
            "fields": list(self.fields),
        }


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Calibrations:
    """All calibrations of a file (possibly none)."""

    items: tuple[Calibration, ...]
    path: Path | None = None

    def describe(self) -> list[dict[str, Any]]:
        return [item.describe() for item in self.items]

    def fields(self, measurement: str) -> tuple[str, ...]:
        """The fields of ``measurement`` that some calibration corrects, in contract order."""
        targeted = {name for item in self.items for name in item.fields}
        return tuple(name for name in MEASURED_FIELDS[measurement] if name in targeted)

    def calibrator(
        self, measurement: str, model: Callable[[str], str | None] = lambda node: None
    ) -> Calibrator:
        return Calibrator(self, measurement, model)


class Calibrator:
    """Corrections of one measurement's rows; ``model(node)`` names a node's sensor model."""

    def __init__(
        self, calibrations: Calibrations, measurement: str, model: Callable[[str], str | None]
    ) -> None:
        self.fields = calibrations.fields(measurement)
        self.columns = [*(name + CORRECTED_SUFFIX for name in self.fields), CALIBRATION_COLUMN]
        self._by_field = {
            name: [item for item in calibrations.items if name in item.fields]
            for name in self.fields
        }
        self._model = model

    def choose(self, name: str, node: str, moment: datetime) -> Calibration | None:
        """The calibration of field ``name`` for ``node`` at ``moment``, if any applies."""
        model = self._model(node)
        best: Calibration | None = None
        best_key: tuple[bool, datetime, int] | None = None
        for item in self._by_field.get(name, ()):
            if not item.applies(node, model, moment):
                continue
            key = (node in item.nodes, item.valid_from, item.version)
            if best_key is None or key > best_key:
                best, best_key = item, key
        return best

    def apply(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The columns of :attr:`columns` for ``row`` (``<field>_corrected``, ``calibration``)."""
        out: dict[str, Any] = dict.fromkeys(self.columns)
        used: list[str] = []
        for name in self.fields:
            item = self.choose(name, str(row["node"]), row["time"])
            if item is None:
                continue
            value = item.correct(name, row)
            if value is None:
                continue
            out[name + CORRECTED_SUFFIX] = value
            if item.tag not in used:
                used.append(item.tag)
        out[CALIBRATION_COLUMN] = ";".join(used) if used else None
        return out


def default_path() -> Path:
    return commons_home() / DEFAULT_FILE


def load(path: Path | None = None) -> Calibrations:
    """The calibrations of ``path`` (default ``$COMMONS_HOME/calibration.toml``; a missing
    default file means no calibrations). Errors name the file and the key."""
    if path is None:
        path = default_path()
        if not path.exists():
            return Calibrations((), None)
    data = load_toml(path)
    unknown = set(data) - {"calibration"}
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown table (expected [[calibration]])")
    tables = data.get("calibration", [])
    if not isinstance(tables, list):
        raise ConfigError(path, "calibration", "expected an array of tables [[calibration]]")
    items = tuple(_parse(path, f"calibration[{i}]", table) for i, table in enumerate(tables))
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.tag in seen:
            raise ConfigError(path, f"calibration[{i}]", f"{item.tag} is defined twice")
        seen.add(item.tag)
    return Calibrations(items, path)


def _parse(path: Path, where: str, table: Any) -> Calibration:
    if not isinstance(table, dict):
        raise ConfigError(path, where, "expected a table")

    def key(name: str) -> str:
        return f"{where}.{name}"

    def need(name: str, kind: type) -> Any:
        if name not in table:
            raise ConfigError(path, key(name), "missing")
        value = table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                path, key(name), f"expected {kind.__name__}, got {type(value).__name__}"
            )
        return value

    method = need("method", str)
    if method not in METHOD_KEYS:
        raise ConfigError(path, key("method"), f"{method!r} is not one of {sorted(METHOD_KEYS)}")
    for name in table:
        if name not in COMMON_KEYS | METHOD_KEYS[method]:
            raise ConfigError(path, key(name), f"unknown key for method {method}")
    ident = need("id", str)
    if not ident or "@" in ident or ";" in ident:
        raise ConfigError(path, key("id"), f"{ident!r}: a non-empty name without '@' or ';'")
    version = need("version", int)
    if version < 1:
        raise ConfigError(path, key("version"), f"{version} is not a positive integer")
    source = need("source", str)
    if not source.strip():
        raise ConfigError(path, key("source"), "empty: a calibration needs its citation")
    nodes, model = _applies_to(path, key("applies_to"), table.get("applies_to"))
    valid_from = _moment(path, key("valid_from"), table.get("valid_from"))
    common = {
        "id": ident,
        "version": version,
        "source": source,
        "nodes": nodes,
        "model": model,
        "valid_from": valid_from,
        "method": method,
    }
    if method == EPA_METHOD:
        form = table.get("form", "piecewise")
        if form not in EPA_FORMS:
            raise ConfigError(path, key("form"), f"{form!r} is not one of {list(EPA_FORMS)}")
        return Calibration(**common, fields=("pm2_5",), form=form)
    fields = _fields(path, key("fields"), need("fields", list))
    if method == LINEAR_METHOD:
        slope = need("slope", float)
        intercept = need("intercept", float) if "intercept" in table else 0.0
        return Calibration(**common, fields=fields, slope=slope, intercept=intercept)
    return Calibration(**common, fields=fields, offset=need("offset", float))


def _applies_to(path: Path, where: str, value: Any) -> tuple[frozenset[str], str | None]:
    if value is None:
        raise ConfigError(path, where, "missing")
    if not isinstance(value, dict) or len(value) != 1 or not {"nodes", "model"} & set(value):
        raise ConfigError(path, where, "expected { nodes = [ids] } or { model = name }")
    if "model" in value:
        if not isinstance(value["model"], str) or not value["model"]:
            raise ConfigError(path, f"{where}.model", "expected a sensor model name")
        return frozenset(), value["model"]
    nodes = value["nodes"]
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
        raise ConfigError(path, f"{where}.nodes", "expected a non-empty list of node ids")
    return frozenset(nodes), None


def _moment(path: Path, where: str, value: Any) -> datetime:
    if value is None:
        raise ConfigError(path, where, "missing")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(path, where, f"{value.isoformat()} needs a UTC offset (e.g. Z)")
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ConfigError(path, where, f"expected a date or date-time, got {type(value).__name__}")


def _fields(path: Path, where: str, names: list[Any]) -> tuple[str, ...]:
    if not names:
        raise ConfigError(path, where, "empty: name the fields to correct")
    for name in names:
        if not isinstance(name, str) or name not in _ALL_FIELDS:
            raise ConfigError(path, where, f"{name!r} is not a measured field")
    return tuple(names)
