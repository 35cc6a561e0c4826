"""Reading TOML configuration files into frozen settings, with errors that name key and file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration value is missing or wrong; names the file and the dotted key."""

    def __init__(self, path: Path | None, key: str, problem: str) -> None:
        where = str(path) if path is not None else "<defaults>"
        super().__init__(f"{where}: {key}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "-", f"not valid TOML ({exc})") from None


class Section:
    """One table of a TOML file, read key by key with type checks.

    Unknown keys are errors: a misspelt key must not silently fall back to a default.
    """

    def __init__(self, data: dict[str, Any], path: Path | None, prefix: str) -> None:
        self._data = data
        self._path = path
        self._prefix = prefix
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def section(self, name: str) -> Section:
        self._seen.add(name)
        value = self._data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(self._path, self.key(name), "expected a table")
        return Section(value, self._path, self.key(name))

    def get(self, name: str, kind: type[T], default: T) -> T:
        self._seen.add(name)
        if name not in self._data:
            return default
        value = self._data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                self._path,
                self.key(name),
                f"expected {kind.__name__}, got {type(value).__name__} {value!r}",
            )
        return value

    def positive(self, name: str, kind: type[T], default: T) -> T:
        value = self.get(name, kind, default)
        if value <= 0:  # type: ignore[operator]
            raise ConfigError(self._path, self.key(name), f"must be positive, got {value!r}")
        return value

    def secret(self, name: str, env: str) -> str | None:
        """A secret: from environment variable ``env``, else ``<name>_file``, else ``<name>``."""
        file_value = self.get(f"{name}_file", str, "")
        inline = self.get(name, str, "")
        if env in os.environ:
            return os.environ[env]
        if file_value:
            try:
                return Path(file_value).expanduser().read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    self._path, self.key(f"{name}_file"), f"cannot read {file_value}: {exc}"
                ) from None
        return inline or None

    def check_keys(self, known: dict[str, set[str]]) -> None:
        """Before reading anything: every table and key must be one of ``known``."""
        for table, value in self._data.items():
            if table not in known:
                raise ConfigError(self._path, self.key(table), "unknown table")
            if not isinstance(value, dict):
                raise ConfigError(self._path, self.key(table), "expected a table")
            for name in value:
                if name not in known[table]:
                    raise ConfigError(self._path, f"{self.key(table)}.{name}", "unknown key")

    def check_unknown(self) -> None:
        for name in self._data:
            if name not in self._seen:
                raise ConfigError(self._path, self.key(name), "unknown key")
