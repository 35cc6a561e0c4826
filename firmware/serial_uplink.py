"""The uplink over USB serial: a node plugged into the gateway's USB, without Wi-Fi or MQTT.

Chosen by ``"uplink": "serial"`` in config.json. The node's USB port is its console
(UART0 behind the board's USB-UART bridge, or native USB CDC): readings go out on
standard output as lines between the console's own lines, and the gateway's answers come
in on standard input. Ctrl-C still interrupts the node, so ``commons node provision`` and
mpremote keep working on a node in this mode.

The line protocol, version 1, ASCII, one message per line (``\\n``; ``\\r\\n`` is
accepted), each ending in a space and the CRC-32 of everything before that space, as 8
lowercase hex digits (gateway/serial_link.py is the gateway's half)::

    node → gateway   SC1 HELLO <node_id> <fw> <crc>          asks for the time
                     SC1 MSG <n> <topic> <payload> <crc>     a message of contract v1
    gateway → node   SC1 TIME <unix seconds> <crc>
                     SC1 ACK <n> <crc>                       committed to the gateway's queue
                     SC1 NAK <n> <reason> <crc>              not taken: send it again later

``n`` is the reading's record number in the flash ring (0 for a status, which is not
kept). The rule is the MQTT uplink's: one reading at a time, oldest first, and it leaves
the ring only when its ACK arrived. Without an answer (gateway stopped, cable pulled) or
after a NAK it is sent again, waiting 2 s and doubling up to 30 s. The clock is set from
the gateway's TIME, as NTP sets it on a Wi-Fi node.
"""

import asyncio
import binascii
import gc
import sys
import time

import payload
from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from clock import Clock
    from config import Config
    from node import Node
    from ringbuf import RingBuffer

PREFIX = b"SC1 "
FIRST_WAIT_MS = const(2000)
MAX_WAIT_MS = const(30_000)
_HELLO_RETRY_MS = const(1000)
_POLL_MS = const(50)
_READ_PAUSE_MS = const(1000)  # after a failed read (nobody at the other end)
_EARLIEST = const(1_577_836_800)  # as clock.py: a time before 2020 is not a set clock


def set_clock(clock: Clock, unix: int) -> bool:
    """Set the node's clock to ``unix`` (UTC seconds) from the gateway's TIME line.

    Here rather than in ``clock``: only a node in this mode needs it, and every byte of code
    a Wi-Fi node loads is heap it cannot use.
    """
    if unix < _EARLIEST:
        return False
    import machine

    tm = time.gmtime(unix - clock._offset)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], 0))
    clock.syncs += 1
    clock._last = unix
    clock.synced = True
    return True


def crc_hex(body: bytes) -> bytes:
    """CRC-32 of ``body`` as 8 lowercase hex digits."""
    return b"%08x" % (binascii.crc32(body) & 0xFFFFFFFF)


def frame(body: bytes) -> bytes:
    """``body`` as a protocol line: CRC appended, newline ended."""
    return body + b" " + crc_hex(body) + b"\n"


def unframe(line: bytes) -> list[bytes] | None:
    """The words of a gateway line after ``SC1`` (CRC checked), or None if it is not one."""
    line = line.rstrip(b"\r\n")
    if not line.startswith(PREFIX):
        return None
    cut = line.rfind(b" ")
    if cut < 0 or crc_hex(line[:cut]) != line[cut + 1 :]:
        return None
    return line[len(PREFIX) : cut].split(b" ")


class SerialUplink:
    """``run()`` is the task; ``heartbeat`` (ticks) shows it is alive; counters for status."""

    def __init__(self, cfg: Config, ring: RingBuffer, clock: Clock, node: Node) -> None:
        self.cfg = cfg
        self.ring = ring
        self.clock = clock
        self.node = node
        self.inp = sys.stdin.buffer
        self.out = sys.stdout.buffer
        self.writer = payload.Writer()
        self.status_topic = payload.topic(cfg.node_id, "status").encode()
        # By the ring's record kind: 0 air, 1 noise.
        self.topics = (
            payload.topic(cfg.node_id, "air").encode(),
            payload.topic(cfg.node_id, "noise").encode(),
        )
        self.hello = frame(PREFIX + b"HELLO " + cfg.node_id.encode() + b" " + cfg.fw.encode())
        self.awaiting = -1  # record number sent and not yet acknowledged
        self.acked = -1  # the last record number the gateway acknowledged
        self.wait_ms = FIRST_WAIT_MS
        self.connected = False
        self.sent = 0
        self.resent = 0
        self.refused = 0
        self.failures = 0
        self.bad_lines = 0
        self.heartbeat = time.ticks_ms()
        self.last_error = ""
        self.reader: asyncio.Task[None] | None = None

    def _send(self, n: int, topic: bytes, data: bytes | memoryview) -> None:
        body = PREFIX + b"MSG " + str(n).encode() + b" " + topic + b" " + bytes(data)
        self.out.write(frame(body))

    def answer(self, line: bytes) -> None:
        """One line from the gateway."""
        words = unframe(line)
        if words is None or len(words) < 2:
            self.bad_lines += 1
            return
        self.connected = True
        verb = words[0]
        try:
            number = int(words[1])
        except ValueError:
            self.bad_lines += 1
            return
        if verb == b"ACK":
            if number == self.awaiting:
                self.acked = number
        elif verb == b"NAK":
            if number == self.awaiting:
                self.refused += 1
                self.last_error = "refused: " + b" ".join(words[2:]).decode()
                print("serial uplink:", self.last_error)
        elif verb == b"TIME":
            if set_clock(self.clock, number):
                print("serial uplink: clock set by the gateway")
        else:
            self.bad_lines += 1

    async def _read(self) -> None:
        reader = asyncio.StreamReader(self.inp)
        while True:
            try:
                line = await reader.readline()
            except OSError:  # nobody at the other end (a pty without its gateway)
                line = b""
            if line:
                self.answer(line)
            else:
                await asyncio.sleep_ms(_READ_PAUSE_MS)

    async def run(self) -> None:
        self.reader = asyncio.create_task(self._read())
        ring = self.ring
        status_ms = self.cfg.status_s * 1000
        now = time.ticks_ms()
        last_status = time.ticks_add(now, -status_ms)
        hello_at = time.ticks_add(now, -_HELLO_RETRY_MS)
        sent_at = now
        while True:
            now = time.ticks_ms()
            self.heartbeat = now
            if self.clock.due() and time.ticks_diff(now, hello_at) >= _HELLO_RETRY_MS:
                self.out.write(self.hello)
                hello_at = now
            n = self.awaiting
            if n >= 0 and self.acked == n:
                ring.ack(n)
                self.sent += 1
                self.awaiting = -1
                self.wait_ms = FIRST_WAIT_MS
            elif n >= 0 and time.ticks_diff(now, sent_at) >= self.wait_ms:
                # No answer (or a NAK): send it again now, and wait longer for the answer.
                self.failures += 1
                self.resent += 1
                self.connected = False
                self.wait_ms = min(self.wait_ms * 2, MAX_WAIT_MS)
                self.awaiting = -1
            if self.awaiting < 0:
                data = ring.peek()
                if data is not None:
                    n = ring.peeked
                    if ring.kind < len(self.topics):
                        self._send(n, self.topics[ring.kind], data)
                        self.awaiting = n
                        sent_at = now
                    else:  # written by a newer firmware: no topic here; counted as dropped
                        ring.dropped += 1
                        ring.ack(n)
            if time.ticks_diff(now, last_status) >= status_ms:
                msg = payload.status(self.writer, self.node.status(), self.clock.now(), self.cfg.fw)
                self._send(0, self.status_topic, msg)
                last_status = now
                gc.collect()
            await asyncio.sleep_ms(_POLL_MS)


def start(cfg: Config, ring: RingBuffer, clock: Clock, node: Node) -> SerialUplink:
    """The node's uplink in this mode (``node.py`` loads this module by a run-time name)."""
    return SerialUplink(cfg, ring, clock, node)
