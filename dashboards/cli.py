"""``commons dashboards build|publish``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from commons.home import commons_home


@click.group()
def dashboards() -> None:
    """Grafana dashboards: generate them from the registry, publish them to a Grafana."""


@dashboards.command("build")
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Node registry (default: $COMMONS_HOME/registry.sqlite).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the JSON files (default: $COMMONS_HOME/dashboards).",
)
@click.option(
    "--example",
    is_flag=True,
    help="Build the committed dashboards/generated/ from dashboards/example-city.toml instead.",
)
def build(registry_path: Path | None, out_dir: Path | None, example: bool) -> None:
    """Generate the city, neighbourhood and operator dashboards as JSON.

    From the live registry by default; Grafana loads the folder through
    dashboards/provisioning/ (see docs/dashboards.md).
    """
    from dashboards.build import GENERATED_DIR, build_all, build_example

    if example:
        paths = build_example(out_dir or GENERATED_DIR)
    else:
        registry = registry_path or commons_home() / "registry.sqlite"
        if not registry.exists():
            raise click.ClickException(
                f"no node registry at {registry}: add nodes with 'commons node add', "
                "or pass --registry"
            )
        paths = build_all(registry, out_dir or commons_home() / "dashboards")
    for path in paths:
        click.echo(str(path))


@dashboards.command("publish")
@click.option("--url", required=True, help="Grafana's URL, e.g. http://localhost:3000.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding a service account token (default: $GRAFANA_TOKEN).",
)
@click.option(
    "--dir",
    "json_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder of dashboard JSON to publish (default: the committed dashboards/generated/).",
)
def publish(url: str, token_file: Path | None, json_dir: Path | None) -> None:
    """Create or update the dashboards in a running Grafana and make the city and neighbourhood
    dashboards public; print their public links. Running it again changes nothing."""
    import os

    from dashboards.build import GENERATED_DIR
    from dashboards.publish import GrafanaAccessError, GrafanaError, publish_folder

    if token_file is not None:
        token = token_file.read_text().strip()
    else:
        token = os.environ.get("GRAFANA_TOKEN", "")
    if not token:
        raise click.ClickException("no token: pass --token-file FILE or set GRAFANA_TOKEN")
    try:
        report = publish_folder(url, token, json_dir or GENERATED_DIR)
    except GrafanaAccessError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(4)
    except GrafanaError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)
