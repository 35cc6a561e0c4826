"""Shared fixtures: the session's own ``$COMMONS_HOME``, its real local stack, and the CLI.

``commons_home`` only creates the folder and points ``$COMMONS_HOME`` at it; request ``stack``
when Mosquitto and InfluxDB must be running. Tests that stop or restart services use a home of
their own instead of the session's (see ``test_stack.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from cityday import cityday  # noqa: F401  (the session's day of city data)
from harness import CLI_TIMEOUT_S, RunCommons

from commons.home import StackInfo
from commons.stack import Stack
from gateway.queue import DurableQueue

# The console script installed next to the interpreter running the tests.
COMMONS_SCRIPT = Path(sys.executable).parent / "commons"


@pytest.fixture(scope="session")
def commons_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh ``$COMMONS_HOME`` for the whole session, set in ``os.environ`` until it ends."""
    home = tmp_path_factory.mktemp("commons-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMMONS_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def stack(commons_home: Path) -> Iterator[StackInfo]:
    """The real Mosquitto and InfluxDB under ``commons_home``, stopped by PID at the end."""
    services = Stack(commons_home)
    try:
        yield services.up()
    finally:
        services.down()


@pytest.fixture
def run_commons(commons_home: Path) -> RunCommons:
    """Run the installed ``commons`` command and return its completed process (text output).

    It runs with this process's environment and ``$COMMONS_HOME`` set to ``home`` (default: the
    session's ``commons_home``); ``env`` adds or replaces variables. It never raises on a
    non-zero exit code: the test checks ``returncode``.
    """

    def run(
        *args: str,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = CLI_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "COMMONS_HOME": str(home or commons_home), **(env or {})}
        return subprocess.run(
            [str(COMMONS_SCRIPT), *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[DurableQueue]:
    """A gateway queue of the test's own."""
    q = DurableQueue(tmp_path / "queue.sqlite")
    yield q
    q.close()
