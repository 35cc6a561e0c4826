"""The uplink task: Wi-Fi, broker, NTP, and draining the flash ring in order at QoS 1.

Each record goes to its kind's topic (``commons/v1/<id>/air`` or ``/noise``).

One loop owns the connection. Every failure (Wi-Fi down, broker gone,
refused credentials, a missing PUBACK) ends the session and comes back here,
to wait with exponential backoff (1 s doubling to ``MAX_BACKOFF_MS``) and try
again. A reading leaves the ring only when its PUBACK arrived; readings go
one at a time, oldest first, so they arrive in the order they were taken.

On connecting, the node publishes a retained ``online`` status (the broker's
retained ``offline`` last will replaces it when the node vanishes), then a
status every ``status_s``.
"""

import asyncio
import gc
import time

import payload
from micropython import const
from mqtt import MQTTClient, MQTTError

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    import network
    from clock import Clock
    from config import Config
    from node import Node
    from ringbuf import RingBuffer

FIRST_BACKOFF_MS = const(1000)
MAX_BACKOFF_MS = const(60_000)
_WIFI_POLL_MS = const(200)
_IDLE_POLL_MS = const(1000)


class WifiUnavailable(OSError):
    """The station did not get connected to ``ssid`` within the wait."""

    def __init__(self, ssid: str) -> None:
        super().__init__("Wi-Fi: not connected to " + ssid)
        self.ssid = ssid


class Uplink:
    """``run()`` is the task; ``heartbeat`` (ticks) shows it is alive; counters for status."""

    def __init__(
        self,
        cfg: Config,
        ring: RingBuffer,
        clock: Clock,
        wlan: network.WLAN,
        ready: asyncio.Event,
        node: Node,
    ) -> None:
        self.cfg = cfg
        self.ring = ring
        self.clock = clock
        self.wlan = wlan
        self.ready = ready
        self.node = node
        self.writer = payload.Writer()
        self.air_topic = payload.topic(cfg.node_id, "air")
        self.status_topic = payload.topic(cfg.node_id, "status")
        # One client for every session: its buffers are allocated once.
        self.client = MQTTClient(
            cfg.node_id,
            cfg.broker_host,
            cfg.broker_port,
            cfg.broker_user,
            cfg.broker_password,
            cfg.keepalive_s,
            self.status_topic,
            payload.offline_will(),
        )
        self.backoff_ms = FIRST_BACKOFF_MS
        self.connected = False
        self.connects = 0
        self.failures = 0
        self.sent = 0
        self.heartbeat = time.ticks_ms()
        self.last_error = ""

    async def _wifi(self) -> None:
        wlan = self.wlan
        if wlan.isconnected():
            return
        wlan.active(True)
        wlan.connect(self.cfg.wifi_ssid, self.cfg.wifi_password or "")
        t0 = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) > self.cfg.wifi_timeout_s * 1000:
                raise WifiUnavailable(self.cfg.wifi_ssid)
            self.heartbeat = time.ticks_ms()
            await asyncio.sleep_ms(_WIFI_POLL_MS)
        print("wifi: connected to", self.cfg.wifi_ssid)

    async def _status(self, client: MQTTClient) -> None:
        msg = payload.status(self.writer, self.node.status(), self.clock.now(), self.cfg.fw)
        await client.publish(self.status_topic, msg, True)

    async def _session(self) -> None:
        cfg = self.cfg
        client = self.client
        await client.connect()
        self.connected = True
        self.connects += 1
        print(f"mqtt: connected to {cfg.broker_host}:{cfg.broker_port}")
        ring = self.ring
        status_ms = cfg.status_s * 1000
        # By the ring's record kind: 0 air, 1 noise.
        topics = (self.air_topic, payload.topic(cfg.node_id, "noise"))
        try:
            await self._status(client)
            # Only a connection that carried a message resets the backoff: one that
            # drops right after CONNACK keeps backing off.
            self.backoff_ms = FIRST_BACKOFF_MS
            last_status = time.ticks_ms()
            while True:
                self.heartbeat = time.ticks_ms()
                data = ring.peek()
                if data is not None:
                    n = ring.peeked
                    kind = ring.kind
                    if kind < len(topics):
                        await client.publish(topics[kind], data)
                        self.sent += 1
                    else:  # written by a newer firmware: no topic here; counted as dropped
                        ring.dropped += 1
                    ring.ack(n)
                if time.ticks_diff(time.ticks_ms(), last_status) >= status_ms:
                    await self._status(client)
                    last_status = time.ticks_ms()
                    if self.clock.due():
                        self.clock.sync()
                    gc.collect()
                if data is None:
                    self.ready.clear()
                    try:
                        await asyncio.wait_for_ms(self.ready.wait(), _IDLE_POLL_MS)
                    except asyncio.TimeoutError:  # noqa: UP041
                        pass
                client.check()
                if not self.wlan.isconnected():
                    raise WifiUnavailable(cfg.wifi_ssid)  # dropped: reconnect Wi-Fi first
        finally:
            self.connected = False
            await client.close()

    async def run(self) -> None:
        while True:
            try:
                await self._wifi()
                if self.clock.due():
                    self.clock.sync()
                await self._session()
            except (OSError, MQTTError) as exc:
                self.failures += 1
                self.last_error = repr(exc)
                print(f"uplink: {self.last_error}; retry in {self.backoff_ms} ms")
            # Wait out the backoff in short steps, so the heartbeat keeps beating.
            t0 = time.ticks_ms()
            while time.ticks_diff(time.ticks_ms(), t0) < self.backoff_ms:
                self.heartbeat = time.ticks_ms()
                await asyncio.sleep_ms(_IDLE_POLL_MS)
            self.backoff_ms = min(self.backoff_ms * 2, MAX_BACKOFF_MS)
