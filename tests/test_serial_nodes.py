"""A node in USB-serial mode read by the gateway, over a pseudo-terminal: the test is the node.

The gateway's reader (gateway/serial_nodes.py) opens the pty's slave through a symlink, as
it would ``/dev/serial/by-id/…``; the test writes the protocol's lines (gateway/serial_link.py)
on the master, with garbage and impersonation between them, and reads the answers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from fake_serial import FakeSensor, running, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

from commons.settings import ConfigError
from gateway.queue import DurableQueue
from gateway.serial_config import NODE_BAUDRATE, SerialNodeSettings, parse_serial
from gateway.serial_link import (
    LINE_MAX,
    Hello,
    LinkError,
    NodeMessage,
    frame,
    parse_line,
)
from gateway.serial_nodes import SerialNodeReader

NODE = "esp32-usb001"
TOPIC = f"commons/v1/{NODE}/air"
TS = 1_790_000_000


def msg_line(number: int, topic: str, payload: dict[str, object] | bytes) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return frame(b"SC1 MSG %d " % number + topic.encode() + b" " + body)


def reading(seq: int) -> dict[str, object]:
    return {"v": 1, "ts": TS + seq, "seq": seq, "fw": "0.1.0", "flags": [], "pm2_5": 1.5}


class NodeEnd:
    """The node's end of the cable: the pty master."""

    def __init__(self, link: Path) -> None:
        self.pty = FakeSensor(lambda: b"", period=3600.0)
        self.pty.paused.set()
        tmp = link.with_name(link.name + ".new")
        os.symlink(self.pty.device, tmp)
        os.replace(tmp, link)
        self.answers: list[bytes] = []
        self.times: list[bytes] = []
        self._partial = b""

    def send(self, data: bytes) -> None:
        self.pty.write(data)

    def poll(self) -> list[bytes]:
        """The answers so far, but the TIME lines (kept in ``times``)."""
        data = self.pty.drain()
        if data:
            self._partial += data
            *lines, self._partial = self._partial.split(b"\n")
            for line in lines:
                (self.times if line.startswith(b"SC1 TIME ") else self.answers).append(line)
        return self.answers

    def unplug(self) -> None:
        self.pty.unplug()


def test_lines_parse_and_corruption_is_named() -> None:
    assert parse_line(frame(b"SC1 HELLO esp32-a1b2c3 0.1.0")[:-1]) == Hello("esp32-a1b2c3", "0.1.0")
    line = msg_line(7, TOPIC, b'{"v":1, "seq":7}')[:-1]
    assert parse_line(line) == NodeMessage(7, TOPIC, b'{"v":1, "seq":7}')
    flipped = line.replace(b'"seq":7', b'"seq":8')
    reasons = []
    for bad in (flipped, b"SC1 \xff\xfe", frame(b"SC1 MSG x topic {}")[:-1], b"SC1 MSG"):
        with pytest.raises(LinkError) as caught:
            parse_line(bad)
        reasons.append(caught.value.reason)
    assert reasons == ["bad_crc", "garbage", "bad_frame", "bad_crc"]


def test_node_port_settings(tmp_path: Path) -> None:
    (only,) = parse_serial([{"port": "/dev/ttyUSB0", "sensor": "node", "node": NODE}], None)
    assert only == SerialNodeSettings(Path("/dev/ttyUSB0"), NODE, NODE_BAUDRATE)
    with pytest.raises(ConfigError, match=r"serial\[0\]\.interval"):
        parse_serial([{"port": "/dev/x", "sensor": "node", "node": NODE, "interval": 5}], None)


def test_messages_are_committed_then_acknowledged_and_the_rest_refused_with_reasons(
    tmp_path: Path, queue: DurableQueue
) -> None:
    link = tmp_path / "usb-node"
    node = NodeEnd(link)
    reader = SerialNodeReader(SerialNodeSettings(link, NODE, NODE_BAUDRATE), queue)
    with running(reader):
        wait_for(lambda: reader.counters.connected, "the port to open")
        node.send(frame(b"SC1 HELLO " + NODE.encode() + b" 0.1.0"))
        node.send(b"node esp32-usb001 fw 0.1.0: a console line\n")
        node.send(msg_line(1, TOPIC, reading(1)))
        node.send(b"\x00\xff garbage \xaa\xc0\n")
        node.send(msg_line(2, TOPIC, reading(2)).replace(b"1.5", b"9.5"))  # corrupted
        node.send(msg_line(900, "commons/v1/esp32-other/air", reading(900)))  # impersonation
        node.send(b"x" * (LINE_MAX + 10) + b"\n")
        node.send(msg_line(2, TOPIC, reading(2)))
        node.send(msg_line(2, TOPIC, reading(2)))  # its ACK was lost: sent again
        node.send(msg_line(3, TOPIC, {"v": 1, "seq": "three"}))  # breaks the contract
        node.send(msg_line(0, f"commons/v1/{NODE}/status", {"v": 1, "state": "online"}))
        wait_for(lambda: len(node.poll()) >= 6, "six answers")
    # The time when the port opened, and again for the HELLO.
    assert len(node.times) == 2
    answers = [a.rsplit(b" ", 1)[0] for a in node.answers]
    assert answers == [
        b"SC1 ACK 1",
        b"SC1 NAK 900 wrong_node",
        b"SC1 ACK 2",
        b"SC1 ACK 2",
        b"SC1 ACK 3",
        b"SC1 ACK 0",
    ]
    stored = [(m.topic, json.loads(m.payload).get("seq")) for m in queue.peek(100)]
    assert stored == [(TOPIC, 1), (TOPIC, 2), (TOPIC, "three"), (f"commons/v1/{NODE}/status", None)]
    assert reader.last_seen is not None
    numbers = reader.numbers()
    assert numbers["readings"] == 4 and numbers["invalid"] == 1 and numbers["duplicates"] == 1
    assert numbers["console"] == 1
    assert {k: v for k, v in numbers.items() if k.startswith("rejected_") and v} == {
        "rejected_garbage": 1,
        "rejected_bad_crc": 1,
        "rejected_wrong_node": 1,
        "rejected_too_long": 1,
    }
    node.unplug()


def test_unplug_and_replug_are_survived(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-node"
    node = NodeEnd(link)
    reader = SerialNodeReader(SerialNodeSettings(link, NODE, NODE_BAUDRATE), queue)
    with running(reader):
        wait_for(lambda: reader.counters.connected, "the port to open")
        node.send(msg_line(1, TOPIC, reading(1)))
        wait_for(lambda: len(node.poll()) >= 1, "the first ACK")
        node.unplug()
        link.unlink()
        wait_for(lambda: not reader.counters.connected, "the unplug to be noticed")
        node = NodeEnd(link)
        wait_for(lambda: reader.counters.connected, "the port to open again")
        node.send(msg_line(2, TOPIC, reading(2)))
        wait_for(lambda: len(node.poll()) >= 1, "the ACK after replugging")
    node.unplug()
    assert [json.loads(m.payload)["seq"] for m in queue.peek(10)] == [1, 2]
    assert reader.counters.reconnects == 1 and reader.counters.disconnects == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.sampled_from(
                [
                    msg_line(5, TOPIC, reading(5)),
                    msg_line(6, "commons/v1/esp32-other/air", reading(6)),
                    frame(b"SC1 HELLO " + NODE.encode() + b" 0.1.0"),
                    b"SC1 MSG 7 " + TOPIC.encode() + b" {} 00000000\n",
                    b"\n",
                    b"\r\n",
                ]
            ),
        ),
        max_size=30,
    )
)
def test_any_bytes_end_each_line_in_exactly_one_count(chunks: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        queue = DurableQueue(Path(tmp) / "queue.sqlite")
        try:
            reader = SerialNodeReader(SerialNodeSettings(Path(tmp) / "x", NODE, 115200), queue)
            for chunk in chunks:
                reader.feed(chunk)
            data = b"".join(chunks)
            lines = data.split(b"\n")[:-1]  # the part after the last newline is pending
            numbers = reader.numbers()
            counted = (
                numbers["readings"]
                + numbers["duplicates"]
                + numbers["console"]
                + numbers["hellos"]
                + numbers["rejected"]
                + numbers["refused"]
            )
            # Empty lines are skipped; a line past LINE_MAX is counted when it overflows.
            assert counted == sum(1 for line in lines if line.rstrip(b"\r")) or any(
                len(line) > LINE_MAX for line in data.split(b"\n")
            )
            assert len(queue.peek(1000)) == numbers["readings"]
        finally:
            queue.close()
