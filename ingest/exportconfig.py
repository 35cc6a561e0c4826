"""Settings of exports: licence, attribution and the local time zone.

Read once from ``$COMMONS_HOME/export.toml`` (or the file given with ``--config``)::

    [export]
    tz = "Europe/Paris"          # day boundaries and noise periods; default UTC
    licence = "ODbL-1.0"         # SPDX identifier written into every export
    attribution = "Sensor Commons contributors, Northside air group"

``$COMMONS_TZ`` overrides ``tz`` from the file; ``--tz``, ``--licence`` on the command line
override both. A missing default file is no error; a named one that is missing is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commons.home import commons_home
from commons.settings import ConfigError, Section, load_toml

CONFIG_FILE = "export.toml"
TZ_ENV = "COMMONS_TZ"
DEFAULT_TZ = "UTC"
DEFAULT_LICENCE = "ODbL-1.0"
DEFAULT_ATTRIBUTION = "Sensor Commons contributors"
LICENCE_URLS = {
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "ODC-By-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


class UnknownTimeZoneError(ValueError):
    """A time zone name that the IANA database (zoneinfo) does not know."""

    def __init__(self, name: str, source: str) -> None:
        super().__init__(
            f"unknown time zone {name!r} (from {source}): give an IANA name such as "
            "Europe/Paris or UTC"
        )
        self.name = name
        self.source = source


def time_zone(name: str, source: str = "--tz") -> ZoneInfo:
    """The zone called ``name``; ``source`` says where the name came from, for the error."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise UnknownTimeZoneError(name, source)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise UnknownTimeZoneError(name, source) from None


@dataclass(frozen=True)
class ExportSettings:
    tz: ZoneInfo
    licence: str = DEFAULT_LICENCE
    attribution: str = DEFAULT_ATTRIBUTION

    @property
    def licence_url(self) -> str | None:
        return LICENCE_URLS.get(self.licence)

    def overridden(self, tz: ZoneInfo | None = None, licence: str | None = None) -> ExportSettings:
        """These settings with the command line's values where it gave any."""
        return replace(self, tz=tz if tz is not None else self.tz, licence=licence or self.licence)

    @classmethod
    def load(cls, path: Path | None = None) -> ExportSettings:
        """From ``path`` (must exist) or ``$COMMONS_HOME/export.toml`` (may be absent)."""
        source = path if path is not None else commons_home() / CONFIG_FILE
        data = load_toml(source) if path is not None or source.exists() else {}
        root = Section(data, source, "")
        root.check_keys({"export": {"tz", "licence", "attribution"}})
        section = root.section("export")
        tz_name = section.get("tz", str, DEFAULT_TZ)
        tz_source = f"{source}: export.tz"
        if TZ_ENV in os.environ:
            tz_name, tz_source = os.environ[TZ_ENV], f"${TZ_ENV}"
        try:
            tz = time_zone(tz_name, tz_source)
        except UnknownTimeZoneError as exc:
            raise ConfigError(source, "export.tz", str(exc)) from None
        licence = section.get("licence", str, DEFAULT_LICENCE)
        attribution = section.get("attribution", str, DEFAULT_ATTRIBUTION)
        if not licence.strip():
            raise ConfigError(source, "export.licence", "must not be empty")
        return cls(tz=tz, licence=licence, attribution=attribution)
