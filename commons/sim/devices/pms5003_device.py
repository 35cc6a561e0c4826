"""A model of a PMS5003 behind the fake UART: passive/active mode, read,
sleep/wake with the acknowledgements real units send, and misbehaviour.

Frames are encoded here independently of the driver's builders.
"""

_LATENCY_MS = 20


def _sum16(data):
    total = sum(data) & 0xFFFF
    return bytes([total >> 8, total & 0xFF])


def data_frame(words):
    """A 32-byte frame from 13 words (missing ones are 0)."""
    words = list(words) + [0] * (13 - len(words))
    body = b"\x42\x4d\x00\x1c"
    for w in words:
        body += bytes([w >> 8, w & 0xFF])
    return body + _sum16(body)


def ack_frame(command, data):
    body = bytes([0x42, 0x4D, 0x00, 0x04, command, data])
    return body + _sum16(body)


class PMS5003Device:
    """Options (all optional):

    values: list of word lists (up to 13 words) served in turn (cycling)
    mode: 1 active (power-up default) / 0 passive; asleep
    wake_mode: the mode a unit is in after wake-up (default: the mode it had)
    period_ms: active-mode frame interval (default 1000)
    silent: never sends a byte; no_ack: never acknowledges (a clone)
    ignore_sleep: keeps running on a sleep command, no acknowledgement
    corrupt / truncate: indexes of data frames sent with a bad checksum / cut short
    garbage: hex bytes sent before every data frame
    record: keep the commands received in ``commands`` (default on)
    """

    def __init__(self, opts):
        self.values = opts.get("values", [[5, 10, 12, 5, 10, 12, 900, 300, 60, 10, 2, 1, 0x9700]])
        self.mode = opts.get("mode", 1)
        self.asleep = opts.get("asleep", False)
        self.wake_mode = opts.get("wake_mode", None)
        self.period_ms = opts.get("period_ms", 1000)
        self.silent = opts.get("silent", False)
        self.no_ack = opts.get("no_ack", False)
        self.ignore_sleep = opts.get("ignore_sleep", False)
        self.corrupt = opts.get("corrupt", [])
        self.truncate = opts.get("truncate", [])
        self.garbage = bytes.fromhex(opts.get("garbage", ""))
        self.record = opts.get("record", True)
        self.commands = []
        self.data_sent = 0
        self._inbox = b""
        self._events = []
        self._next_active_ms = None

    def _send(self, now, frame):
        if not self.silent:
            self._events.append([now + _LATENCY_MS, frame])

    def _next_data(self, now):
        index = self.data_sent
        self.data_sent += 1
        frame = data_frame(self.frame_values(index, now))
        fault = self.frame_fault(index)
        if fault == "corrupt":
            frame = frame[:31] + bytes([(frame[31] + 1) & 0xFF])
        elif fault == "truncate":
            frame = frame[:12]
        self._send(now, self.garbage + frame)

    def frame_values(self, index, now):
        """The words (up to 13) of data frame ``index`` (sent at ``now`` ms)."""
        return self.values[index % len(self.values)]

    def frame_fault(self, index):
        """None, "corrupt" (wrong checksum) or "truncate" (cut short) for frame ``index``."""
        if index in self.corrupt:
            return "corrupt"
        if index in self.truncate:
            return "truncate"
        return None

    def _ack(self, now, command, data):
        if not self.no_ack:
            self._send(now, ack_frame(command, data))

    def on_write(self, uart, data, now):
        if self._next_active_ms is None:
            self._next_active_ms = now + self.period_ms
        self.pump(uart, now)  # what was due before this command is already on the wire
        self._inbox += data
        while len(self._inbox) >= 7:
            start = self._inbox.find(b"\x42\x4d")
            if start < 0 or len(self._inbox) - start < 7:
                self._inbox = self._inbox[max(start, 0) :] if start >= 0 else b""
                return
            frame = self._inbox[start : start + 7]
            self._inbox = self._inbox[start + 7 :]
            if _sum16(frame[:5]) != frame[5:7]:
                continue
            self._command(now, frame[2], frame[4])

    def _command(self, now, command, data):
        if self.record:
            self.commands.append([command, data])
        if command == 0xE4:
            if data == 1:
                if self.asleep:
                    self.asleep = False
                    if self.wake_mode is not None:
                        self.mode = self.wake_mode
                    self._next_active_ms = now + self.period_ms
                return  # wake-up is not acknowledged
            if self.ignore_sleep:
                return
            self.asleep = True
            self._ack(now, 0xE4, 0)
            return
        if self.asleep:
            return
        if command == 0xE1:
            self.mode = data
            self._next_active_ms = now + self.period_ms
            self._ack(now, 0xE1, data)
        elif command == 0xE2 and self.mode == 0:
            self._next_data(now)

    def pump(self, uart, now):
        if self._next_active_ms is None:
            self._next_active_ms = now + self.period_ms
        if self.mode == 1 and not self.asleep:
            while self._next_active_ms <= now:
                self._next_data(self._next_active_ms - _LATENCY_MS)
                self._next_active_ms += self.period_ms
        due = [e for e in self._events if e[0] <= now]
        if due:
            self._events = [e for e in self._events if e[0] > now]
            for _, frame in due:
                uart.feed(frame)
