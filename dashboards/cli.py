"""``commons dashboards build|publish``."""

from __future__ import annotations

import click


@click.group()
def dashboards() -> None:
    """Grafana dashboards: generate them from the registry, publish them to a Grafana."""
