"""End to end: a PM sensor on the gateway's serial port → queue → uplink → InfluxDB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fake_serial import plugged, sds_stream
from harness import GatewayProcess, influx_for, rows

from commons.home import StackInfo
from commons.procs import wait_until

pytestmark = pytest.mark.integration

NODE = "gw-serial-pm"


def test_serial_readings_reach_influxdb_under_the_configured_node(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    link = tmp_path / "usb-1a86_USB_Serial-if00-port0"
    query = f"SELECT pm2_5, pm10, qa, seq FROM air WHERE node = '{NODE}'"
    with plugged(link, sds_stream(17.4, 33.9)) as sensor:
        gateway = GatewayProcess(stack, tmp_path, database)
        with gateway.config.open("a") as config:
            config.write(
                f'[[serial]]\nport = "{link}"\nsensor = "sds011"\nnode = "{NODE}"\n'
                "interval = 1\nwarmup = 0\n"
            )
        gateway.start()
        try:
            wait_until(
                lambda: sum(1 for r in rows(influx, query) if r["pm2_5"] is not None) >= 3,
                60,
                "three serial readings with values in InfluxDB",
                poll=0.2,
            )
            sensor.write(b"\x00garbage\xaa\xc0")
            status = (
                "SELECT last(serial_readings) AS readings, last(serial_garbage_bytes) AS garbage, "
                f"last(serial_connected) AS connected FROM gateway_status "
                f"WHERE gateway = '{gateway.gateway_id}'"
            )
            wait_until(
                lambda: any(r["garbage"] and r["readings"] for r in rows(influx, status)),
                60,
                "the serial counters in the gateway's status",
                poll=0.2,
            )
            assert rows(influx, status)[0]["connected"] == 1
        finally:
            gateway.stop()
    got = rows(influx, query)
    measured = [r for r in got if r["pm2_5"] is not None]
    assert len(measured) >= 3
    for r in measured:
        assert (r["pm2_5"], r["pm10"], r["qa"]) == (17.4, 33.9, 0)
    seqs = sorted(r["seq"] for r in got)
    assert seqs == list(range(len(seqs)))
    assert "Traceback" not in gateway.log_text()
