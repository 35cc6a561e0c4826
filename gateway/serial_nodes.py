"""Nodes in USB-serial mode on the gateway's own ports (pyserial), into the same queue as MQTT.

A node plugged into the gateway's USB with ``"uplink": "serial"`` in its config.json sends
its messages on its console (the protocol: gateway/serial_link.py). One
:class:`SerialNodeReader` thread per ``[[serial]]`` table with ``sensor = "node"`` reads
the port, and for each message:

- checks the line (CRC, framing) and that its topic names the node the port is
  configured for: a node cannot speak for another one over USB any more than over MQTT;
  refused lines are counted by reason (``rejected_<reason>``) and logged, their
  neighbours are taken as usual;
- validates it against the contract; one that breaks it is still committed and
  acknowledged, so the uplink dead-letters it with its reason (as for MQTT) and the node's
  ring moves on; it is counted as ``invalid``;
- commits it to the durable queue, and only then answers ``ACK``: the node removes the
  reading from its flash only after that. A full queue answers ``NAK`` and the node sends
  it again later. The same record sent twice in a row (its ACK was lost) is acknowledged
  without a second commit.

The node's other console lines are logged (at debug level) and counted. Unplugging (the
node loses power with it) shows as a failed read; the port is reopened with backoff, and
the replugged node resends what its ring still holds. A HELLO is answered with the
gateway's time, which sets the node's clock; so is every (re)opening of the port.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import serial

from commons.contract import InvalidMessageError, parse_message
from gateway.backoff import Backoff
from gateway.queue import DurableQueue, Message, QueueFullError
from gateway.serial_config import SerialNodeSettings
from gateway.serial_link import (
    LINE_MAX,
    REASONS,
    TOO_LONG,
    WRONG_NODE,
    Hello,
    LinkError,
    NodeMessage,
    ack_line,
    is_protocol,
    is_text,
    nak_line,
    parse_line,
    time_line,
)
from gateway.serial_port import PortCounters, PortKeeper

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # longest a read blocks: bounds how late a stop is seen
REOPEN_BASE_S = 0.2
# Short: a replugged node boots in about a second, and readings it takes before the
# gateway's TIME carry no timestamp of their own.
REOPEN_CAP_S = 1.0
QUEUE_FULL = "queue_full"

NodeOpener = Callable[[SerialNodeSettings], serial.Serial]


def open_node_port(settings: SerialNodeSettings) -> serial.Serial:
    """The node's port, 8N1, exclusive (a second reader would steal half the lines)."""
    return serial.Serial(
        str(settings.port), settings.baudrate, timeout=READ_TIMEOUT_S, exclusive=True
    )


@dataclass
class NodeLinkCounters(PortCounters):
    messages: int = 0  # committed to the queue (readings and statuses)
    invalid: int = 0  # ... of which break the contract (dead-lettered downstream)
    duplicates: int = 0  # the same record again after a lost ACK: acknowledged, not stored
    refused: int = 0  # answered NAK because the queue refused new work
    console: int = 0  # the node's own console lines
    hellos: int = 0  # time requests answered


class SerialNodeReader:
    """Reads one node's port until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        settings: SerialNodeSettings,
        queue: DurableQueue,
        on_commit: Callable[[], None] = lambda: None,
        opener: NodeOpener = open_node_port,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.on_commit = on_commit
        self.counters = NodeLinkCounters()
        self.rejected: Counter[str] = Counter()
        self._clock = clock
        self.link = PortKeeper(
            settings.node,
            str(settings.port),
            lambda: opener(settings),
            self.counters,
            Backoff(base=REOPEN_BASE_S, cap=REOPEN_CAP_S),
        )
        self._buffer = bytearray()
        self._skipping = False  # inside a line that was too long: drop up to its end
        self._last_number = -1  # the last record committed, to spot a resend
        self.last_seen: float | None = None  # when the node last said something valid

    def numbers(self) -> dict[str, int]:
        c = self.counters
        numbers = {
            "connected": int(c.connected),
            "opened": c.opened,
            "reconnects": c.reconnects,
            "disconnects": c.disconnects,
            "open_failures": c.open_failures,
            "readings": c.messages,
            "invalid": c.invalid,
            "duplicates": c.duplicates,
            "refused": c.refused,
            "console": c.console,
            "hellos": c.hellos,
            "rejected": sum(self.rejected.values()),
        }
        for reason in REASONS:
            numbers[f"rejected_{reason}"] = self.rejected[reason]
        return numbers

    def status(self) -> dict[str, object]:
        return {
            "port": str(self.settings.port),
            "sensor": "node",
            "last_error": self.counters.last_error,
            **self.numbers(),
        }

    # -- the port ------------------------------------------------------------------------

    def _open(self, now: float) -> None:
        port = self.link.open(now)
        if port is None:
            return
        self._buffer.clear()
        self._skipping = False
        log.info("%s: node on %s", self.settings.node, port.port)
        # The time at once: a HELLO the node wrote before the port was open is lost.
        self._write(time_line(int(now)))

    def _lost(self, exc: BaseException) -> None:
        self.link.lost(exc, self._clock())

    def _write(self, line: bytes) -> None:
        if self.link.port is None:
            return
        try:
            self.link.port.write(line)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)

    def _read(self) -> None:
        assert self.link.port is not None
        try:
            data = self.link.port.read(1)
            if data:
                data += self.link.port.read(self.link.port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
            return
        if data:
            self.feed(data)

    # -- lines ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the port: every complete line is handled, the rest kept."""
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > LINE_MAX:
                    self._reject(TOO_LONG, f"more than {LINE_MAX} bytes without a newline")
                    self._buffer.clear()
                    self._skipping = True
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False  # the end of the line that was too long
                continue
            if len(line) > LINE_MAX:
                self._reject(TOO_LONG, f"{len(line)} bytes")
                continue
            self._line(line)

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        log.warning("%s: line refused (%s: %s)", self.settings.node, reason, detail)

    def _line(self, line: bytes) -> None:
        if not line:
            return
        if not is_protocol(line) and is_text(line):
            self.counters.console += 1
            log.debug("%s console: %s", self.settings.node, line.decode())
            return
        try:
            parsed = parse_line(line)
        except LinkError as exc:
            self._reject(exc.reason, exc.detail)
            return
        if isinstance(parsed, Hello) and parsed.node == self.settings.node:
            self.last_seen = self._clock()
        if isinstance(parsed, Hello):
            self._hello(parsed)
        else:
            self._message(parsed)

    def _hello(self, hello: Hello) -> None:
        if hello.node != self.settings.node:
            self._reject(WRONG_NODE, f"HELLO from {hello.node!r}")
            self._write(nak_line(0, WRONG_NODE))
            return
        self.counters.hellos += 1
        log.info("%s: says hello (fw %s); sending the time", hello.node, hello.fw)
        self._write(time_line(int(self._clock())))

    def _message(self, msg: NodeMessage) -> None:
        node = msg.topic.split("/")[2] if msg.topic.count("/") == 3 else None
        if node != self.settings.node:
            self._reject(WRONG_NODE, f"topic {msg.topic!r}")
            self._write(nak_line(msg.number, WRONG_NODE))
            return
        if msg.number and msg.number == self._last_number:
            self.counters.duplicates += 1
            self._write(ack_line(msg.number))
            return
        now = self._clock()
        try:
            parse_message(msg.topic, msg.payload, now)
        except InvalidMessageError as exc:
            # Stored all the same: the uplink dead-letters it with this reason.
            self.counters.invalid += 1
            log.warning("%s: message %d breaks the contract (%s)", node, msg.number, exc)
        try:
            self.queue.commit([Message(msg.topic, msg.payload, now)])
        except (QueueFullError, sqlite3.Error) as exc:
            self.counters.refused += 1
            if self.counters.refused == 1 or self.counters.last_error != str(exc):
                log.error("%s: %s; the node keeps its readings", node, exc)
            self.counters.last_error = str(exc)
            self._write(nak_line(msg.number, QUEUE_FULL))
            return
        self.counters.messages += 1
        self.last_seen = now
        if msg.number:
            self._last_number = msg.number
        self.link.backoff.reset()
        self.on_commit()
        self._write(ack_line(msg.number))

    # -- main loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set; never raises for a node or port fault."""
        try:
            while not stop.is_set():
                if self.link.port is None:
                    now = self._clock()
                    if now >= self.link.next_open:
                        self._open(now)
                    else:
                        stop.wait(min(self.link.next_open - now, REOPEN_CAP_S))
                    continue
                self._read()
        finally:
            self.link.close()
            self.counters.connected = False
