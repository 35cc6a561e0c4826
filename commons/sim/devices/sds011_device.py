"""A model of an SDS011 behind the fake UART: it answers commands the way the
Nova protocol V1.3 describes, streams in active mode, and can misbehave.

Frames are encoded here independently of the driver's builders.
"""

_LATENCY_MS = 20  # from the end of a command to its reply


def encode(kind, d, device_id):
    """A 10-byte frame AA kind d0..d3 ID1 ID2 CS AB."""
    body = bytes([d[0], d[1], d[2], d[3], device_id >> 8, device_id & 0xFF])
    return b"\xaa" + bytes([kind]) + body + bytes([sum(body) & 0xFF]) + b"\xab"


def data_frame(pm2_5_tenths, pm10_tenths, device_id=0xA160):
    d = (pm2_5_tenths & 0xFF, pm2_5_tenths >> 8, pm10_tenths & 0xFF, pm10_tenths >> 8)
    return encode(0xC0, d, device_id)


class SDS011Device:
    """Options (all optional):

    values: list of [pm2_5_tenths, pm10_tenths], served in turn (cycling)
    mode: 0 active (default after power-up) / 1 query; asleep; period (minutes)
    silent: never sends a byte
    ignore_commands: number of first commands lost (e.g. the first wake-up)
    no_data: answers commands but sends no data frames (laser dead)
    ignore_sleep: never confirms a sleep command (keeps running)
    corrupt: indexes of data frames sent with a wrong checksum
    truncate: indexes of data frames cut after 5 bytes
    garbage: bytes sent before every data frame
    record: keep the commands received in ``commands`` (default on)
    """

    def __init__(self, opts):
        self.values = opts.get("values", [[123, 456]])
        self.mode = opts.get("mode", 0)
        self.asleep = opts.get("asleep", False)
        self.period = opts.get("period", 0)
        self.device_id = opts.get("device_id", 0xA160)
        self.firmware = opts.get("firmware", [15, 7, 10])
        self.silent = opts.get("silent", False)
        self.ignore_commands = opts.get("ignore_commands", 0)
        self.no_data = opts.get("no_data", False)
        self.ignore_sleep = opts.get("ignore_sleep", False)
        self.corrupt = opts.get("corrupt", [])
        self.truncate = opts.get("truncate", [])
        self.garbage = bytes.fromhex(opts.get("garbage", ""))
        self.record = opts.get("record", True)
        self.commands = []  # [command, d1, d2] as received
        self.data_sent = 0
        self._inbox = b""
        self._events = []  # [due_ms, bytes]
        self._next_active_ms = None

    def _send(self, now, frame):
        if not self.silent:
            self._events.append([now + _LATENCY_MS, frame])

    def _next_data(self, now):
        if self.no_data:
            return
        index = self.data_sent
        self.data_sent += 1
        pm2_5, pm10 = self.frame_values(index, now)
        frame = data_frame(pm2_5, pm10, self.device_id)
        fault = self.frame_fault(index)
        if fault == "corrupt":
            frame = frame[:8] + bytes([(frame[8] + 1) & 0xFF]) + frame[9:]
        elif fault == "truncate":
            frame = frame[:5]
        self._send(now, self.garbage + frame)

    def frame_values(self, index, now):
        """[pm2_5_tenths, pm10_tenths] of data frame ``index`` (sent at ``now`` ms)."""
        return self.values[index % len(self.values)]

    def frame_fault(self, index):
        """None, "corrupt" (wrong checksum) or "truncate" (cut short) for frame ``index``."""
        if index in self.corrupt:
            return "corrupt"
        if index in self.truncate:
            return "truncate"
        return None

    def _reply(self, now, command, d1, d2=0, d3=0):
        self._send(now, encode(0xC5, (command, d1, d2, d3), self.device_id))

    def on_write(self, uart, data, now):
        if self._next_active_ms is None:
            self._next_active_ms = now + 1000
        self.pump(uart, now)  # what was due before this command is already on the wire
        self._inbox += data
        while len(self._inbox) >= 19:
            start = self._inbox.find(b"\xaa\xb4")
            if start < 0:
                self._inbox = b""
                return
            frame = self._inbox[start : start + 19]
            if len(frame) < 19:
                self._inbox = self._inbox[start:]
                return
            self._inbox = self._inbox[start + 19 :]
            if frame[18] != 0xAB or sum(frame[2:17]) & 0xFF != frame[17]:
                continue  # the real sensor ignores a bad command
            self._command(now, frame)

    def _command(self, now, frame):
        command, d1, d2 = frame[2], frame[3], frame[4]
        if self.record:
            self.commands.append([command, d1, d2])
        if self.ignore_commands:
            self.ignore_commands -= 1
            return
        if self.asleep and not (command == 0x06 and d1 == 1 and d2 == 1):
            return  # asleep: everything but wake-up is ignored
        if command == 0x06:
            if d1 == 1:
                if d2 == 0 and self.ignore_sleep:
                    return
                self.asleep = d2 == 0
                self._next_active_ms = now + 1000
            self._reply(now, 0x06, d1, 0 if self.asleep else 1)
        elif command == 0x02:
            if d1 == 1:
                self.mode = d2
            self._reply(now, 0x02, d1, self.mode)
        elif command == 0x08:
            if d1 == 1:
                self.period = d2
            self._reply(now, 0x08, d1, self.period)
        elif command == 0x07:
            self._reply(now, 0x07, self.firmware[0], self.firmware[1], self.firmware[2])
        elif command == 0x04:
            self._next_data(now)

    def pump(self, uart, now):
        if self._next_active_ms is None:
            self._next_active_ms = now + 1000
        if self.mode == 0 and not self.asleep:
            while self._next_active_ms <= now:
                self._next_data(self._next_active_ms - _LATENCY_MS)
                self._next_active_ms += 1000
        due = [e for e in self._events if e[0] <= now]
        if due:
            self._events = [e for e in self._events if e[0] > now]
            for _, frame in due:
                uart.feed(frame)
