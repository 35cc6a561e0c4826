"""What the dashboards are generated from: the neighbourhoods and their nodes' public facts.

Only a node's id, area, public (coarsened) location and reporting interval are read from the
registry: the exact location never enters this model, so it cannot reach a dashboard.

The committed dashboards under ``dashboards/generated/`` come from :data:`EXAMPLE_CITY`, a fixed
description of the demo's nodes (``example-city.toml``), so that regenerating them is
deterministic; ``commons dashboards build`` reads the live registry instead.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.registry import (
    Location,
    Registry,
    check_area,
    check_hardware,
    check_location,
    check_node_id,
)

EXAMPLE_CITY = Path(__file__).with_name("example-city.toml")


class CityDescriptionError(ValueError):
    """A bad entry in a city description file, with where it is."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path = path
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class PublicNode:
    id: str
    area: str
    public: Location | None
    interval_s: float | None
    kinds: tuple[str, ...] = ()  # "air", "noise"; empty: not known


@dataclass(frozen=True)
class City:
    name: str
    nodes: tuple[PublicNode, ...]

    def areas(self) -> list[str]:
        return sorted({n.area for n in self.nodes})

    def in_area(self, area: str) -> list[PublicNode]:
        return [n for n in self.nodes if n.area == area]

    def measures(self, area: str, kind: str) -> bool:
        """True when a node of ``area`` measures ``kind``, or might (its kinds not known)."""
        return any(not n.kinds or kind in n.kinds for n in self.in_area(area))


def slug(name: str) -> str:
    """``Old Town`` → ``old-town``: lowercase letters, digits and single dashes."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "area"


def from_registry(path: Path, name: str = "Sensor Commons") -> City:
    """The nodes of a registry that have an area, by id (nodes without an area are left out)."""
    with Registry(path) as registry:
        nodes = tuple(
            PublicNode(n.id, n.area, n.public, n.interval, n.kinds)
            for n in registry.nodes()
            if n.area is not None
        )
    return City(name, nodes)


def from_description(path: Path) -> City:
    """A city described in TOML: ``name`` and ``[[node]]`` tables with ``id``, ``area``,
    ``lat``/``lon`` (the public location), ``interval_s`` and ``kinds``."""
    raw = tomllib.loads(path.read_text())
    nodes = []
    for i, entry in enumerate(raw.get("node", [])):
        nodes.append(_node(path, f"node[{i}]", entry))
    return City(str(raw.get("name", "Sensor Commons")), tuple(sorted(nodes, key=lambda n: n.id)))


def _node(path: Path, where: str, entry: dict[str, Any]) -> PublicNode:
    try:
        node_id = check_node_id(str(entry["id"]))
        area = check_area(str(entry["area"]))
        public = (
            check_location(float(entry["lat"]), float(entry["lon"])) if "lat" in entry else None
        )
        interval = float(entry["interval_s"]) if "interval_s" in entry else None
        kinds = tuple(str(kind) for kind in entry.get("kinds", ()))
        check_hardware(kinds, None)
    except KeyError as exc:
        raise CityDescriptionError(path, where, f"missing key {exc}") from None
    except ValueError as exc:
        raise CityDescriptionError(path, where, str(exc)) from None
    return PublicNode(node_id, area, public, interval, kinds)
