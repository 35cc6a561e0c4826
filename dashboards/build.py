"""``commons dashboards build``: the dashboards as deterministic JSON, and Grafana's provisioning.

Each dashboard is written as ``<name>.json`` with sorted keys and a stable uid, so building twice
gives the same bytes; the committed copies in ``dashboards/generated/`` come from the example
city (``dashboards/example-city.toml``).
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import influxql
from dashboards.boards import Generated, all_dashboards
from dashboards.city import EXAMPLE_CITY, City, from_description, from_registry

PACKAGE_DIR = Path(__file__).parent
GENERATED_DIR = PACKAGE_DIR / "generated"
PROVISIONING_DIR = PACKAGE_DIR / "provisioning"


def render(dashboard: Dashboard) -> str:
    """The dashboard's JSON: sorted keys, two-space indent, a final newline."""
    return json.dumps(dashboard, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + (
        "\n"
    )


def write_city(city: City, out_dir: Path) -> list[Path]:
    """Write every dashboard of ``city`` into ``out_dir``; stale ``*.json`` there are removed."""
    influxql.register()
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = all_dashboards(city)
    wanted = {g.file_name for g in generated}
    for stale in out_dir.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    paths = []
    for item in generated:
        path = out_dir / item.file_name
        text = render(item.dashboard)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        paths.append(path)
    return paths


def build_all(registry_path: Path, out_dir: Path) -> list[Path]:
    """The dashboards of the nodes and areas in the registry at ``registry_path``, written into
    ``out_dir`` (for ``commons demo`` and ``commons dashboards build``)."""
    return write_city(from_registry(registry_path), out_dir)


def build_example(out_dir: Path = GENERATED_DIR) -> list[Path]:
    """The committed dashboards, from the example city description."""
    return write_city(from_description(EXAMPLE_CITY), out_dir)


def generated(city: City) -> list[Generated]:
    influxql.register()
    return all_dashboards(city)
