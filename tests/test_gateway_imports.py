"""The gateway's ingress process loads no InfluxDB or HTTP client: only its uplink needs them.

Each of those libraries costs megabytes of resident memory on a Raspberry Pi (measured with
``bench/pipeline.py``); the ingress is forked first and stays small.
"""

from __future__ import annotations

import subprocess
import sys

# What ``commons gateway run`` imports in its own process before it forks the uplink.
PROBE = """
import sys
import click
from commons.cli import main
main.get_command(click.Context(main), "gateway")
import gateway.service, gateway.config, gateway.serial_nodes
print(" ".join(m for m in sys.modules if m.split(".")[0] in {NAMES} or m == "ingest.influx"))
"""
UPLINK_ONLY = {"influxdb_client", "requests", "urllib3", "numpy", "reactivex"}


def test_the_ingress_process_does_not_load_the_uplinks_libraries() -> None:
    probe = PROBE.replace("{NAMES}", repr(UPLINK_ONLY))
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []
