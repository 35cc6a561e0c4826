"""MQTT → durable queue, with manual acknowledgement.

One thread owns the MQTT client. Messages are held as they arrive, not yet acknowledged,
until a group commit writes them to the queue (every ``FLUSH_MAX`` messages or
``FLUSH_AFTER_S``); only then are their PUBACKs sent. A crash before the commit means the
broker still holds them and redelivers them to the persistent session. Validation happens
downstream, in the uplink, so taking in a message costs only its share of one commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from commons.contract import NODE_ID_PATTERN, SUBSCRIPTION, gateway_status_topic
from gateway.backoff import Backoff
from gateway.config import GatewaySettings
from gateway.queue import DurableQueue, Message, QueueFullError
from gateway.ratelimit import NodeRateLimiter, grace_after
from gateway.stamps import ArrivalStamps
from gateway.stopflag import StopFlag

FLUSH_MAX = 1000
FLUSH_AFTER_S = 0.02
LOOP_TIMEOUT_S = 0.01
STATUS_SEND_TIMEOUT_S = 2.0
# At most one dead-letter sample per minute of a node over its rate.
RATE_SAMPLE_EVERY_S = 60.0

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    generation: int
    mid: int
    qos: int
    message: Message | None  # None: refused by the rate limit, acknowledged all the same


def node_of(topic: str) -> str | None:
    """The node id of a reading topic ``commons/v1/<node>/<kind>`` (unvalidated)."""
    parts = topic.split("/", 4)
    return parts[2] if len(parts) == 4 and parts[0] == "commons" else None


class Ingress:
    """Subscribes at QoS 1 with a persistent session and feeds the durable queue."""

    def __init__(
        self,
        settings: GatewaySettings,
        queue: DurableQueue,
        on_commit: Callable[[], None],
        status: Callable[[], dict[str, object]],
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.on_commit = on_commit
        self.status = status
        self.alarm: str | None = None
        self._pending: list[_Pending] = []
        self._first_pending = 0.0
        self._generation = 0
        self._connected = False
        self._status_topic = gateway_status_topic(settings.gateway_id)
        self.limiter = NodeRateLimiter(settings.node_rate, settings.node_burst)
        self.last_seen: dict[str, float] = {}
        self.stamps = ArrivalStamps()
        self._disconnected_at: float | None = None
        self._limited = 0
        self._samples: list[tuple[Message, str]] = []
        self._last_sample: dict[str, float] = {}
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.settings.mqtt
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls_ca is not None:
            client.tls_set(ca_certs=str(cfg.tls_ca))
        client.will_set(
            gateway_status_topic(self.settings.gateway_id),
            json.dumps({"v": 1, "state": "offline"}),
            qos=1,
            retain=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -- callbacks (run inside client.loop, on this thread) ---------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the connection: %s", rc)
            return
        self._generation += 1
        self._connected = True
        if getattr(flags, "session_present", False):
            # The broker kept our session, and with it what arrived while we were away.
            now = time.time()
            away = now - (self._disconnected_at or self.queue.alive_at() or now)
            grace = grace_after(away)
            self.limiter.suspend(now + grace)
            log.info("away %.0f s: per-node rate limit suspended for %.0f s", away, grace)
        client.subscribe(SUBSCRIPTION, qos=1)
        log.info(
            "connected to mqtt://%s:%d as %s (session present: %s)",
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            self.settings.mqtt.client_id,
            getattr(flags, "session_present", "?"),
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: object, props: object
    ) -> None:
        log.info("subscribed to %s", SUBSCRIPTION)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        self._connected = False
        self._disconnected_at = time.time()
        log.warning("disconnected from the broker: %s", rc)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if not self._connected:
            return  # refusing work: unacknowledged, the broker delivers it again later
        if not self._pending:
            self._first_pending = time.monotonic()
        now = time.time()
        payload = bytes(msg.payload)
        received = Message(msg.topic, payload, now)
        message: Message | None = received
        node = node_of(msg.topic)
        # Only well-formed ids are tracked: anything else is dead-lettered downstream, and
        # hostile topics must not grow these tables.
        if node is not None and NODE_ID_PATTERN.match(node):
            self.last_seen[node] = now
            stamp = self.stamps.received(node, payload, now)
            if stamp != now:
                received = message = Message(msg.topic, payload, stamp)
            if not self.limiter.allow(node, now):
                self._refuse(node, received, now)
                message = None
        self._pending.append(_Pending(self._generation, msg.mid, msg.qos, message))
        if len(self._pending) >= FLUSH_MAX:
            self.flush()

    def _refuse(self, node: str, message: Message, now: float) -> None:
        """Count a message over its node's rate; keep one sample a minute per node."""
        self._limited += 1
        if now - self._last_sample.get(node, 0.0) < RATE_SAMPLE_EVERY_S:
            return
        self._last_sample[node] = now
        refused = self.limiter.take_limited(node)
        reason = (
            f"rate limited: node {node} exceeded {self.settings.node_rate:g} messages/s "
            f"(burst {self.settings.node_burst:g}); {refused} refused since the last sample"
        )
        log.warning("%s", reason)
        self._samples.append((message, reason))

    # -- queue ------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit what is held, then acknowledge it (if its connection is still the same)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        limited, self._limited = self._limited, 0
        samples, self._samples = self._samples, []
        try:
            self.queue.commit(
                [p.message for p in pending if p.message is not None],
                rate_limited=limited,
                samples=samples,
            )
        except QueueFullError as exc:
            # Nothing was stored and nothing is acknowledged: leave the broker holding the
            # messages, and stop taking more until the uplink has made room.
            if self.alarm is None:
                log.error("%s; disconnecting until the queue has room", exc)
            self.alarm = str(exc)
            return
        self.alarm = None
        for p in pending:
            # A message id belongs to one connection: after a reconnect the broker
            # redelivers what was not acknowledged, and the old id may name a new message.
            if p.qos > 0 and p.generation == self._generation and self._connected:
                self._client.ack(p.mid, p.qos)
        self.on_commit()

    def _stop_taking_work(self) -> None:
        """The queue is full: say so on the status topic, then leave the broker the rest."""
        self._connected = False  # from here on, messages are left unacknowledged
        self._send_status_before_leaving(final=False)
        self._client.disconnect()

    def _send_status_before_leaving(self, final: bool) -> None:
        """Publish the status and run the network loop until the broker has it (bounded)."""
        sent = self.publish_status(final=final, force=True)
        deadline = time.monotonic() + STATUS_SEND_TIMEOUT_S
        while sent is not None and not sent.is_published() and time.monotonic() < deadline:
            self._client.loop(timeout=LOOP_TIMEOUT_S)

    def publish_status(
        self, final: bool = False, force: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish the gateway's status (retained) and queue it for InfluxDB.

        ``final``: the gateway is stopping; the status says ``offline``, as the last will
        would have if it had died.
        """
        status = self.status()
        if final:
            status["state"] = "offline"
        payload = json.dumps(status, separators=(",", ":")).encode()
        try:
            self.queue.commit(
                [Message(self._status_topic, payload, time.time())], from_broker=False
            )
            self.on_commit()
        except QueueFullError as exc:
            self.alarm = str(exc)
        if self._connected or force:
            return self._client.publish(self._status_topic, payload, qos=1, retain=True)
        return None

    # -- main loop --------------------------------------------------------------------

    def _connect(self, stop: StopFlag) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        cfg = self.settings.mqtt
        while not stop.is_set():
            if self.alarm is not None:
                if self.queue.refusal() is not None:
                    stop.wait(1.0)
                    continue
                log.info("the queue has room again; taking messages")
                self.alarm = None
            try:
                self._client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive)
                return
            except OSError as exc:
                delay = backoff.next()
                log.warning("broker mqtt://%s:%d unreachable (%s)", cfg.host, cfg.port, exc)
                stop.wait(delay)

    def run(self, stop: StopFlag, tick: Callable[[], None]) -> None:
        """Receive until ``stop`` is set; ``tick`` runs about every loop iteration."""
        self._connect(stop)
        try:
            while not stop.is_set():
                rc = self._client.loop(timeout=LOOP_TIMEOUT_S)
                if self._pending and (
                    time.monotonic() - self._first_pending >= FLUSH_AFTER_S
                    or rc != MQTTErrorCode.MQTT_ERR_SUCCESS
                ):
                    self.flush()
                tick()
                if self.alarm is not None and self._connected:
                    self._stop_taking_work()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._connected = False
                    self._connect(stop)
        finally:
            self.flush()
            if self._connected:
                self._connected = False
                self._send_status_before_leaving(final=True)
            self._client.disconnect()
