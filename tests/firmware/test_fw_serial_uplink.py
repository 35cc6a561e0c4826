"""A node in USB-serial mode: the real firmware ↔ a pty pair ↔ the real gateway ↔ real InfluxDB.

The node is ``micropython -m main`` (the firmware as ``make firmware`` builds it, with the
fake hardware of tests/firmware/mp/hw) whose console, standard input and output, is the
master of a pty: on an ESP32 the console is the USB port. The gateway process reads the
slave through a symlink (as udev's ``/dev/serial/by-id/…`` name) with ``sensor = "node"``
in its ``[[serial]]`` table. Unplugging is a power cut (the node is powered by the USB
port): the node is killed, the pty goes away; replugging is a new pty behind the same
link and the node booting again on the same flash folder.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import tty
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import GatewayProcess, influx_for, rows, watching_status
from mprunner import MICROPYTHON, MicroPython

from commons.home import StackInfo
from commons.procs import DeadlineExceededError, ProcessRef, reap, wait_until
from ingest.influx import InfluxHTTP

NODE = "esp32-usb001"
# Room to spare: under the unix port an air node needs about 106 KB in either mode (the
# serial uplink costs about 1.5 KB of heap more than the MQTT one); the heap itself is
# measured by tests/firmware/test_fw_node_run.py.
HEAP = "128K"

SERIAL_CONFIG: dict[str, Any] = {
    "node_id": NODE,
    "uplink": "serial",
    # A second of warm-up: the first reading after boot comes after the gateway's TIME. One
    # taken before would carry no ts and be stamped with the time it arrives, which may be
    # the second of the reading before it (the contract's ``clock_gateway``).
    "pm": {"sensor": "sds011", "warmup_s": 1, "samples": 1},
    "intervals": {"sample_s": 2, "status_s": 5},
    "buffer": {"slots": 256},
    "watchdog_s": 30,
}


def test_config_serial_uplink_needs_neither_wifi_nor_broker(mp_source: MicroPython) -> None:
    bad = {**SERIAL_CONFIG, "uplink": "usb"}
    mqtt_without_wifi = {**SERIAL_CONFIG, "uplink": "mqtt"}
    ok, wrong, missing = mp_source.run(
        "scen_node", "config_errors", {"configs": [SERIAL_CONFIG, bad, mqtt_without_wifi]}
    )
    assert ok[0] == "ok" and ok[1]["node_id"] == NODE
    assert wrong == ["uplink", "config.json: uplink: 'usb' is not one of mqtt, serial"]
    assert missing[0] == "wifi.ssid"


class UsbNode:
    """The node on a USB cable: its console is the master of a pty behind ``link``."""

    def __init__(self, folder: Path, path: list[Path], link: Path) -> None:
        self.folder = folder
        self.path = path
        self.link = link
        self.master: int | None = None
        self.ref: ProcessRef | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(SERIAL_CONFIG))
        (folder / "hw.json").write_text("{}")

    def plug(self) -> None:
        """A new pty behind the link and the node booting on it."""
        master, slave = os.openpty()
        tty.setraw(slave)  # the gateway's pyserial sets the same
        device = os.ttyname(slave)
        os.close(slave)
        tmp = self.link.with_name(self.link.name + ".new")
        os.symlink(device, tmp)
        os.replace(tmp, self.link)
        env_path = ":".join([*(str(p) for p in self.path), ".frozen"])
        with (self.folder / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen(
                [str(MICROPYTHON), "-X", f"heapsize={HEAP}", "-m", "main"],
                cwd=self.folder,
                stdin=master,
                stdout=master,
                stderr=err,
                env={**os.environ, "MICROPYPATH": env_path},
            )
        self.ref = ProcessRef.of(self.proc.pid)
        self.master = master  # kept: the test puts garbage on the wire through it

    def inject(self, data: bytes) -> None:
        """Bytes on the wire towards the gateway, between the node's own lines."""
        assert self.master is not None
        os.write(self.master, data)

    def unplug(self) -> None:
        """Power and data gone at once: the node dies, the pty with it, udev drops the link."""
        if self.ref is not None and self.ref.signal(signal.SIGKILL):
            wait_until(lambda: not self.ref.alive(), 10, "the node to die")  # type: ignore[union-attr]
            reap(self.ref.pid)
        if self.proc is not None:
            self.proc.wait(10)
            self.proc = None
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.link.unlink(missing_ok=True)

    def acknowledged(self) -> int:
        """Record numbers below this have left the node's flash (``ring.state``)."""
        return int((self.folder / "data" / "ring.state").read_text().split()[0])


@pytest.fixture
def usb_node(node_path: list[Path], tmp_path: Path) -> Iterator[UsbNode]:
    node = UsbNode(tmp_path / "node", node_path, tmp_path / "usb-Silicon_Labs_CP2102-if00-port0")
    yield node
    node.unplug()


def _seqs(influx: InfluxHTTP) -> list[int]:
    return sorted(int(r["seq"]) for r in rows(influx, f"SELECT seq FROM air WHERE node = '{NODE}'"))


def _msg(number: int, topic: str, payload: bytes) -> bytes:
    import binascii

    body = b"SC1 MSG %d " % number + topic.encode() + b" " + payload
    return body + b" %08x\n" % (binascii.crc32(body) & 0xFFFFFFFF)


@pytest.mark.integration
def test_usb_serial_node_readings_reach_influxdb_exactly_once(
    stack: StackInfo, usb_node: UsbNode, tmp_path: Path
) -> None:
    rng = random.Random(5)
    database = f"u_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    gateway = GatewayProcess(stack, tmp_path, database)
    with gateway.config.open("a") as config:
        config.write(f'[[serial]]\nport = "{usb_node.link}"\nsensor = "node"\nnode = "{NODE}"\n')
    gateway.start()
    usb_node.plug()
    try:
        wait_until(lambda: len(_seqs(influx)) >= 4, 60, "four readings in InfluxDB", poll=0.2)
        # Garbage and impersonation between the node's lines: refused, counted, and no
        # reading of the node lost for them.
        other = json.dumps({"v": 1, "seq": 1, "fw": "x", "flags": [], "pm2_5": 999.0}).encode()
        usb_node.inject(b"\x00\xff\xfe line noise \xaa\xc0\n")
        usb_node.inject(_msg(900_001, "commons/v1/esp32-other/air", other))
        usb_node.inject(_msg(900_002, f"commons/v1/{NODE}/air", other).replace(b"999", b"998"))
        usb_node.inject(b"SC1 " + b"x" * 2000 + b"\n")
        with watching_status(stack, gateway.gateway_id) as seen:
            wait_until(
                lambda: any(NODE in s.get("last_seen", {}) for s in seen),
                30,
                "the gateway's status to have heard from the node",
            )
        count = len(_seqs(influx))
        wait_until(lambda: len(_seqs(influx)) >= count + 3, 60, "more readings after garbage")
        # Unplugged at random moments, three times; plugged in again each time.
        for unplugs in range(1, 4):
            time.sleep(rng.uniform(0.0, 1.5))  # the random moment, not a synchronisation
            usb_node.unplug()
            wait_until(
                lambda n=unplugs: gateway.log_text().count(": lost ") >= n,  # type: ignore[misc]
                30,
                "the gateway to see the unplug",
            )
            usb_node.plug()
            floor = len(_seqs(influx)) + 3
            wait_until(
                lambda f=floor: len(_seqs(influx)) >= f,  # type: ignore[misc]
                60,
                "readings after replugging",
            )
        usb_node.unplug()
        acknowledged = usb_node.acknowledged()
        # Every reading that left the node's flash is stored, once; nothing else appears.
        try:
            wait_until(lambda: len(_seqs(influx)) >= acknowledged - 1, 60, "every acknowledged")
        except DeadlineExceededError:
            q = f"SELECT seq, qa FROM air WHERE node = '{NODE}'"
            pytest.fail(f"readings 1..{acknowledged - 1} left the node; stored: {rows(influx, q)}")
        query = (
            "SELECT last(serial_rejected_garbage) AS garbage, last(serial_rejected_bad_crc) AS "
            "crc, last(serial_rejected_wrong_node) AS wrong, last(serial_rejected_too_long) AS "
            "long, last(serial_reconnects) AS reconnects FROM gateway_status "
            f"WHERE gateway = '{gateway.gateway_id}'"
        )
        wait_until(
            lambda: any(r["reconnects"] >= 3 for r in rows(influx, query)),
            30,
            "the reconnects in the gateway's status",
        )
        status = rows(influx, query)
    finally:
        gateway.stop()
    seqs = _seqs(influx)
    assert seqs == list(range(1, seqs[-1] + 1)), "a reading missing or stored twice"
    assert seqs[-1] >= acknowledged - 1
    assert len(seqs) >= 13
    (counts,) = status
    assert (counts["garbage"], counts["crc"], counts["wrong"], counts["long"]) == (1, 1, 1, 1)
    assert counts["reconnects"] >= 3
    log = gateway.log_text()
    assert "Traceback" not in log
    stored = rows(influx, f"SELECT pm2_5, pm10, qa FROM air WHERE node = '{NODE}'")
    assert all(r["pm10"] == pytest.approx(2 * r["pm2_5"]) for r in stored)
    assert not rows(influx, "SELECT * FROM air WHERE node = 'esp32-other'")
