"""A small asyncio MQTT 3.1.1 client: CONNECT with last will, QoS 1 PUBLISH, keep-alive.

Why not a library: the node needs an asyncio client (publishing must never
block sampling) that tells the caller which PUBLISH its PUBACK confirms, so a
reading leaves the flash ring only then. What PyPI offers for MicroPython:

- ``micropython-umqtt.simple`` 1.3.4 (micropython-lib): blocking sockets, a
  QoS 1 publish that blocks in ``wait_msg`` until the PUBACK, no keep-alive
  pings; it would stall the sampler for every publish and every connect.
- ``micropython-mqtt`` 0.7b4 (2020, tve's fork of mqtt_as): asyncio, but it
  fails on current MicroPython (it hands ``asyncio.open_connection`` a raw
  sockaddr: "can't convert 'int' object to str" on 1.2x), drives Wi-Fi itself
  and reconnects every second without backoff, dropping Wi-Fi each time.

peterhinch's ``mqtt_as`` itself is not on PyPI (it installs with ``mip`` from
GitHub, which the build machines cannot reach). So this module keeps to the
protocol subset the node uses and leaves reconnecting (with backoff), Wi-Fi
and buffering to ``uplink``, which owns them. Every transport failure ends
as ``ConnectionLost``: one path back to reconnecting.

RAM: one preallocated packet buffer (``MAX_PACKET``), one reader task and
one pinger task per connection.
"""

import asyncio
import time

from micropython import const

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_QOS1 = const(0x02)
_RETAIN = const(0x01)
_DUP = const(0x08)
MAX_PACKET = const(640)
CONNACK_REASONS = (
    "accepted",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorised",
)


class MQTTError(Exception):
    """Base class of the client's errors."""


class ConnectRefused(MQTTError):
    """The broker answered CONNECT with return code ``rc`` (5: not authorised)."""

    def __init__(self, rc: int) -> None:
        reason = CONNACK_REASONS[rc] if rc < len(CONNACK_REASONS) else "unknown"
        super().__init__(f"broker refused the connection: {rc} ({reason})")
        self.rc = rc


class ConnectionLost(MQTTError):
    """The connection failed: ``reason`` says where (connect, read, write, keep-alive, ack)."""

    def __init__(self, reason: str) -> None:
        super().__init__("connection lost: " + reason)
        self.reason = reason


def _put_str(buf: bytearray, i: int, data: bytes | bytearray | memoryview) -> int:
    n = len(data)
    buf[i] = n >> 8
    buf[i + 1] = n & 0xFF
    buf[i + 2 : i + 2 + n] = data
    return i + 2 + n


def _put_length(buf: bytearray, i: int, n: int) -> int:
    while True:
        b = n & 0x7F
        n >>= 7
        buf[i] = b | (0x80 if n else 0)
        i += 1
        if not n:
            return i


class MQTTClient:
    """A connection to the broker; ``connect`` again after a failure (same buffers).

    ``publish`` sends QoS 1 and returns once the matching PUBACK arrived, or
    raises ConnectionLost after ``ack_timeout_ms``. The will is published by
    the broker, retained at QoS 1, when the node vanishes (keep-alive missed).
    """

    def __init__(
        self,
        client_id: str,
        host: str,
        port: int,
        user: str | None = None,
        password: str | None = None,
        keepalive_s: int = 60,
        will_topic: str | None = None,
        will_payload: bytes = b"",
        timeout_ms: int = 10_000,
    ) -> None:
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive_s = keepalive_s
        self.will_topic = will_topic
        self.will_payload = will_payload
        self.timeout_ms = timeout_ms
        self._client_id = client_id.encode()
        self._will_topic = None if will_topic is None else will_topic.encode()
        self._user = None if user is None else user.encode()
        self._password = None if password is None else password.encode()
        self._buf = bytearray(MAX_PACKET)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task] = []  # type: ignore[type-arg]
        self._acked = asyncio.Event()
        self._pid = 0
        self._ack_pid = -1
        self._last_rx = time.ticks_ms()
        self.error: ConnectionLost | None = None
        self.published = 0

    # -- connection -----------------------------------------------------------

    async def connect(self) -> None:
        """TCP connect, CONNECT (clean session), await CONNACK; raises on failure.

        The same client reconnects: its buffers are allocated once, in the constructor,
        so a long outage with many attempts does not fragment a small heap.
        """
        self.error = None
        self._ack_pid = -1
        try:
            self._reader, self._writer = await asyncio.wait_for_ms(
                asyncio.open_connection(self.host, self.port), self.timeout_ms
            )
        except asyncio.TimeoutError:  # noqa: UP041 (MicroPython has no builtin TimeoutError)
            raise ConnectionLost("connect timed out") from None
        try:
            await self._send(memoryview(self._buf)[: self._connect_packet()])
            try:
                head: bytes = await asyncio.wait_for_ms(self._read_exactly(4), self.timeout_ms)
            except asyncio.TimeoutError:  # noqa: UP041
                raise ConnectionLost("no CONNACK") from None
            except (OSError, EOFError) as exc:
                raise ConnectionLost("CONNACK: " + repr(exc)) from None
            if head[0] != _CONNACK or head[1] != 2:
                raise ConnectionLost("bad CONNACK")
            if head[3] != 0:
                raise ConnectRefused(head[3])
        except MQTTError:
            await self.close()
            raise
        self._last_rx = time.ticks_ms()
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._ping())]

    def _connect_packet(self) -> int:
        # CONNECT into the packet buffer; returns its length.
        flags = 0x02  # clean session: the node's state is its flash ring, not the broker's
        size = 10 + 2 + len(self._client_id)
        if self._will_topic is not None:
            flags |= 0x04 | (_QOS1 << 2) | 0x20  # will, will QoS 1, will retain
            size += 2 + len(self._will_topic) + 2 + len(self.will_payload)
        if self._user is not None:
            flags |= 0x80
            size += 2 + len(self._user)
        if self._password is not None:
            flags |= 0x40
            size += 2 + len(self._password)
        if size + 5 > MAX_PACKET:
            raise ValueError(f"CONNECT of {size} bytes, at most {MAX_PACKET - 5}")
        buf = self._buf
        buf[0] = _CONNECT
        i = _put_length(buf, 1, size)
        i = _put_str(buf, i, b"MQTT")
        buf[i] = 4  # protocol level: 3.1.1
        buf[i + 1] = flags
        buf[i + 2] = self.keepalive_s >> 8
        buf[i + 3] = self.keepalive_s & 0xFF
        i = _put_str(buf, i + 4, self._client_id)
        if self._will_topic is not None:
            i = _put_str(buf, i, self._will_topic)
            i = _put_str(buf, i, self.will_payload)
        if self._user is not None:
            i = _put_str(buf, i, self._user)
        if self._password is not None:
            i = _put_str(buf, i, self._password)
        return i

    async def close(self, disconnect: bool = False) -> None:
        """Close the socket; with ``disconnect`` say goodbye first (the will is then not sent)."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        writer = self._writer
        self._writer = None
        if writer is None:
            return
        if disconnect and self.error is None:
            try:
                writer.write(b"\xe0\x00")
                await writer.drain()
            except OSError:
                pass
        try:
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass

    def check(self) -> None:
        """Raise the ConnectionLost the reader or pinger saw, if any."""
        if self.error is not None:
            raise self.error

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = ConnectionLost(reason)
        self._acked.set()  # wake a publisher waiting for its PUBACK

    # -- I/O ------------------------------------------------------------------

    async def _send(self, data: bytes | bytearray | memoryview) -> None:
        writer = self._writer
        if writer is None:
            raise ConnectionLost("not connected")
        try:
            writer.write(data)
            await asyncio.wait_for_ms(writer.drain(), self.timeout_ms)
        except (OSError, asyncio.TimeoutError) as exc:  # noqa: UP041
            self._fail("write: " + repr(exc))
            raise ConnectionLost("write: " + repr(exc)) from None

    async def _read_exactly(self, n: int) -> bytes:
        reader = self._reader
        if reader is None:
            raise ConnectionLost("not connected")
        data = await reader.readexactly(n)
        if len(data) < n:
            raise ConnectionLost("closed by the broker")
        return data

    async def _read_loop(self) -> None:
        try:
            while True:
                first = (await self._read_exactly(1))[0]
                n = 0
                shift = 0
                while True:
                    b = (await self._read_exactly(1))[0]
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                body = await self._read_exactly(n) if n else b""
                self._last_rx = time.ticks_ms()
                kind = first & 0xF0
                if kind == _PUBACK and n == 2:
                    self._ack_pid = (body[0] << 8) | body[1]
                    self._acked.set()
                elif kind == _PINGRESP:
                    pass
                # Nothing else is expected: the node subscribes to nothing.
        except (OSError, EOFError, ConnectionLost) as exc:
            self._fail("read: " + repr(exc))

    async def _ping(self) -> None:
        # PINGREQ every half keep-alive; no packet at all for 1.5 keep-alives is a dead link.
        half_ms = self.keepalive_s * 500
        try:
            while self.error is None:
                await asyncio.sleep_ms(half_ms)
                if time.ticks_diff(time.ticks_ms(), self._last_rx) > 3 * half_ms:
                    self._fail("keep-alive: no answer from the broker")
                    return
                await self._send(b"\xc0\x00")
        except ConnectionLost:
            pass

    # -- publishing -----------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes | bytearray | memoryview, retain: bool = False
    ) -> None:
        """QoS 1 publish; returns after its PUBACK. Raises ConnectionLost."""
        self.check()
        self._pid = self._pid % 0xFFFF + 1
        pid = self._pid
        buf = self._buf
        t = topic.encode()
        remaining = 2 + len(t) + 2 + len(payload)
        if remaining + 5 > MAX_PACKET:
            raise ValueError(f"message of {remaining} bytes, at most {MAX_PACKET - 5}")
        buf[0] = _PUBLISH | _QOS1 | (_RETAIN if retain else 0)
        i = _put_length(buf, 1, remaining)
        i = _put_str(buf, i, t)
        buf[i] = pid >> 8
        buf[i + 1] = pid & 0xFF
        i += 2
        buf[i : i + len(payload)] = payload  # copied before any await: the caller may reuse it
        i += len(payload)
        self._acked.clear()
        await self._send(memoryview(buf)[:i])
        t0 = time.ticks_ms()
        while self._ack_pid != pid:
            self.check()
            left = self.timeout_ms - time.ticks_diff(time.ticks_ms(), t0)
            if left <= 0:
                self._fail(f"no PUBACK for packet {pid}")
                self.check()
            try:
                await asyncio.wait_for_ms(self._acked.wait(), left)
            except asyncio.TimeoutError:  # noqa: UP041
                pass
            self._acked.clear()
        self.published += 1
