"""PM sensors on the gateway's own serial ports (pyserial), into the same queue as MQTT.

Each configured sensor gets one :class:`SerialSensorReader` thread in the gateway's ingress
process, with its own :class:`DurableQueue` connection. It reads the sensor's 1 Hz frames
(active mode), and at the end of each ``interval`` (aligned to the gateway clock, so the
readings of a 60 s sensor fall on whole minutes) commits one reading to the queue as the
MQTT message a node would have sent: topic ``commons/v1/<node>/air``, a contract v1
payload with the trimmed mean of the window's frames (lowest and highest dropped, as the
node firmware and airrohr do), ``ts`` from the gateway clock and a persisted ``seq``.
From there the uplink validates and writes it like any other reading.

Flags: ``warmup`` when the window's only frames came within ``warmup`` seconds of the port
being (re)opened (a replugged sensor has just been powered up; frames of that period are
left out of the mean when later ones exist), ``sensor_missing`` when the window had no
valid frame at all (unplugged, silent, or only garbage): that reading carries no values;
``out_of_range`` at the SDS011's saturation, as the node firmware flags it.

Unplugging shows as a ``SerialException`` or ``OSError`` (EIO) on read: the port is closed
and reopened with backoff until the device is back (configure the port by its udev
``/dev/serial/by-id/…`` name, which follows the adapter to whatever ttyUSB it gets).
Garbage and corrupted frames are counted by the :class:`FrameParser` and skipped.

Readings count as ``received`` in the queue's counters, like messages from the broker:
``received`` is what entered the gateway, and the serial status says how many came this way.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import serial

from commons import __version__
from commons.contract import Flag, Kind, topic_for
from gateway.backoff import Backoff
from gateway.queue import DurableQueue, Message, QueueFullError
from gateway.serial_config import SerialNodeSettings, SerialSensorSettings, SerialSettings
from gateway.serial_frames import START_COMMANDS, FrameParser, PmFrame, SensorModel
from gateway.serial_port import PortCounters, PortKeeper

if TYPE_CHECKING:
    from gateway.serial_nodes import SerialNodeReader

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # longest a read blocks: bounds how late a stop or a window end is seen
READ_CHUNK = 4096
REOPEN_BASE_S = 0.2
REOPEN_CAP_S = 5.0
# Readings kept in memory while the queue refuses new work (a day at one a minute); older
# ones are dropped and counted.
HOLD_MAX = 1440
STOP_TIMEOUT_S = 10.0
# The SDS011 reads at most 999.9 µg/m³ (REFERENCE §4.3, §5.1): a mean there is saturated,
# flagged out_of_range as the node firmware does.
PM_SATURATED = 999.9
# Counters summed over the sensors in the gateway's status (``serial_<name>``).
STATUS_TOTALS = (
    "connected",
    "readings",
    "missing",
    "dropped",
    "reconnects",
    "frames",
    "bad_checksum",
    "bad_format",
    "garbage_bytes",
)

Opener = Callable[[SerialSensorSettings], serial.Serial]


def open_port(settings: SerialSensorSettings) -> serial.Serial:
    """The sensor's port, 8N1, exclusive (a second reader would steal half the bytes)."""
    return serial.Serial(
        str(settings.port), settings.baudrate, timeout=READ_TIMEOUT_S, exclusive=True
    )


def trimmed_mean(values: Sequence[float]) -> float:
    """Mean without the lowest and highest value when there are more than two."""
    if len(values) > 2:
        return (sum(values) - min(values) - max(values)) / (len(values) - 2)
    return sum(values) / len(values)


@dataclass
class SerialCounters(PortCounters):
    readings: int = 0  # readings committed to the queue
    missing: int = 0  # ... of which flagged sensor_missing
    dropped: int = 0  # readings lost because the queue refused them for too long


@dataclass
class _Window:
    end: int  # wall-clock second at which it closes: the reading's ts
    frames: list[PmFrame] = field(default_factory=list)
    warmup_frames: list[PmFrame] = field(default_factory=list)


class SeqStore:
    """The per-node ``seq`` counter in a small file, replaced atomically.

    The new value is on disk before the reading that carries it is committed, so a crash
    between the two leaves a gap in ``seq``, never a repeated number.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._next = int(path.read_text().strip() or 0)
        except FileNotFoundError:
            self._next = 0
        except ValueError:
            log.warning("%s: unreadable seq counter; starting again from 0", path)
            self._next = 0

    def take(self) -> int:
        seq = self._next
        self._next += 1
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w") as handle:
                handle.write(f"{self._next}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            # The reading is worth more than its counter: go on, counting in memory.
            log.error("%s: cannot save the seq counter (%s)", self.path, exc)
        return seq


class SerialSensorReader:
    """Reads one sensor until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        settings: SerialSensorSettings,
        queue: DurableQueue,
        seq_path: Path,
        on_commit: Callable[[], None] = lambda: None,
        opener: Opener = open_port,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.on_commit = on_commit
        self.parser = FrameParser(settings.sensor)
        self.counters = SerialCounters()
        self._clock = clock
        self._seq = SeqStore(seq_path)
        self._topic = topic_for(settings.node, Kind.AIR)
        self._fw = f"gateway-{__version__}/{settings.sensor.value}"
        self._held: deque[Message] = deque()
        self.link = PortKeeper(
            settings.node,
            str(settings.port),
            lambda: opener(settings),
            self.counters,
            Backoff(base=REOPEN_BASE_S, cap=REOPEN_CAP_S),
        )
        self._opened_at = 0.0

    def numbers(self) -> dict[str, int]:
        """Counters and frame counts (``connected`` as 0 or 1)."""
        counts = self.parser.counts()
        c = self.counters
        return {
            "connected": int(c.connected),
            "opened": c.opened,
            "reconnects": c.reconnects,
            "disconnects": c.disconnects,
            "open_failures": c.open_failures,
            "readings": c.readings,
            "missing": c.missing,
            "dropped": c.dropped,
            "held": len(self._held),
            "frames": counts.frames,
            "bad_checksum": counts.bad_checksum,
            "bad_format": counts.bad_format,
            "garbage_bytes": counts.garbage,
        }

    def status(self) -> dict[str, object]:
        return {
            "port": str(self.settings.port),
            "sensor": self.settings.sensor.value,
            "last_error": self.counters.last_error,
            **self.numbers(),
        }

    # -- the port ------------------------------------------------------------------------

    def _open(self, now: float) -> None:
        port = self.link.open(now)
        if port is None:
            return
        self._opened_at = now
        log.info("%s: reading %s on %s", self.settings.node, self.settings.sensor, port.port)
        try:
            port.write(START_COMMANDS[self.settings.sensor])
        except (serial.SerialException, OSError) as exc:
            self._lost(exc, now)

    def _lost(self, exc: BaseException, now: float) -> None:
        self.link.lost(exc, now)
        self.parser.reset()  # a frame cut by the unplug is garbage

    def _read(self, window: _Window) -> None:
        assert self.link.port is not None
        try:
            data = self.link.port.read(READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc, self._clock())
            return
        if not data:
            return
        now = self._clock()
        frames = self.parser.feed(data)
        if frames:
            # Only a port that delivers frames is back for good: a flapping one that opens
            # and fails at once keeps backing off.
            self.link.backoff.reset()
        if now - self._opened_at < self.settings.warmup:
            window.warmup_frames.extend(frames)
        else:
            window.frames.extend(frames)

    # -- readings ------------------------------------------------------------------------

    def _window_after(self, now: float) -> _Window:
        interval = self.settings.interval
        return _Window(end=(int(now) // interval + 1) * interval)

    def _payload(self, window: _Window, seq: int) -> dict[str, object]:
        frames, flags = window.frames, []
        if not frames and window.warmup_frames:
            frames, flags = window.warmup_frames, [Flag.WARMUP.value]
        payload: dict[str, object] = {"v": 1, "ts": window.end, "seq": seq, "fw": self._fw}
        if not frames:
            flags.append(Flag.SENSOR_MISSING.value)
            self.counters.missing += 1
        else:
            # One decimal, as the node firmware sends them (firmware/payload.py).
            if self.settings.sensor is SensorModel.PMS5003:
                payload["pm1"] = round(trimmed_mean([f.pm1 or 0.0 for f in frames]), 1)
            pm2_5 = payload["pm2_5"] = round(trimmed_mean([f.pm2_5 for f in frames]), 1)
            pm10 = payload["pm10"] = round(trimmed_mean([f.pm10 for f in frames]), 1)
            if max(pm2_5, pm10) >= PM_SATURATED:
                flags.append(Flag.OUT_OF_RANGE.value)
        payload["flags"] = flags
        return payload

    def _emit(self, window: _Window) -> None:
        payload = self._payload(window, self._seq.take())
        body = json.dumps(payload, separators=(",", ":")).encode()
        if len(self._held) >= HOLD_MAX:
            self._held.popleft()
            self.counters.dropped += 1
            log.error("%s: queue full for too long; dropped the oldest reading", self.settings.node)
        self._held.append(Message(self._topic, body, self._clock()))
        self._commit_held()

    def _commit_held(self) -> None:
        if not self._held:
            return
        try:
            self.queue.commit(list(self._held))
        except (QueueFullError, sqlite3.Error) as exc:
            # Kept and tried again with the next reading: there is no broker to hold them.
            log.error("%s: %s; holding %d readings", self.settings.node, exc, len(self._held))
            return
        self.counters.readings += len(self._held)
        self._held.clear()
        self.on_commit()

    # -- main loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read and emit until ``stop`` is set; never raises for a sensor or port fault."""
        window = self._window_after(self._clock())
        try:
            while not stop.is_set():
                now = self._clock()
                if now >= window.end:
                    self._emit(window)
                    window = self._window_after(now)
                    continue
                if window.end - now > self.settings.interval:
                    # The clock was set back: start the window again from the new time.
                    window.end = self._window_after(now).end
                if self.link.port is None and now >= self.link.next_open:
                    self._open(now)
                if self.link.port is not None:
                    self._read(window)
                else:
                    stop.wait(max(0.0, min(window.end, self.link.next_open) - now))
        finally:
            self.link.close()
            self.counters.connected = False
            self._commit_held()


class SerialSensors:
    """The gateway's serial readers: one thread and one queue connection each.

    PM sensors are read here; nodes in USB-serial mode by gateway/serial_nodes.py.
    """

    def __init__(
        self,
        sensors: Sequence[SerialSettings],
        queue_path: Path,
        queue_max_bytes: int | None,
        on_commit: Callable[[], None],
    ) -> None:
        self._stop = threading.Event()
        self.readers: list[SerialSensorReader | SerialNodeReader] = []
        for s in sensors:
            queue = DurableQueue(queue_path, queue_max_bytes)
            if isinstance(s, SerialNodeSettings):
                from gateway.serial_nodes import SerialNodeReader

                self.readers.append(SerialNodeReader(s, queue, on_commit))
            else:
                seq_path = queue_path.parent / "serial" / f"{s.node}.seq"
                self.readers.append(SerialSensorReader(s, queue, seq_path, on_commit))
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for reader in self.readers:
            thread = threading.Thread(
                target=reader.run,
                args=(self._stop,),
                name=f"serial-{reader.settings.node}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def status(self) -> dict[str, dict[str, object]]:
        """Per sensor (by node id): its port, counters and frame counts."""
        return {r.settings.node: r.status() for r in self.readers}

    def last_seen(self) -> dict[str, float]:
        """When each node on a serial port last sent a message (PM sensors are not nodes)."""
        return {
            r.settings.node: r.last_seen
            for r in self.readers
            if not isinstance(r, SerialSensorReader) and r.last_seen is not None
        }

    def status_fields(self) -> dict[str, int]:
        """Totals over all sensors for the gateway's status (flat: they become fields)."""
        if not self.readers:
            return {}
        totals = dict.fromkeys(STATUS_TOTALS, 0)
        for reader in self.readers:
            numbers = reader.numbers()
            for name, value in numbers.items():
                # A node's port adds its own counters (rejected lines by reason, …).
                if name in totals or not isinstance(reader, SerialSensorReader):
                    totals[name] = totals.get(name, 0) + value
        return {f"serial_{name}": value for name, value in totals.items()}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                log.error("%s did not stop within %.0f s", thread.name, STOP_TIMEOUT_S)
        self._threads.clear()
        for reader in self.readers:
            reader.queue.close()
