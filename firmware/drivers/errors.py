"""Errors raised by the sensor drivers; each carries the fields a caller needs.

``SensorMissing`` and its subclasses mean "no usable answer from the sensor":
the sampler catches that one class and flags the reading ``sensor_missing``.
A corrupted frame is not an error for the caller: the frame synchroniser counts
it and skips it.
"""


class SensorError(Exception):
    """Base class: talking to ``sensor`` (a short name such as "sds011") failed."""

    def __init__(self, sensor: str, message: str) -> None:
        super().__init__(sensor + ": " + message)
        self.sensor = sensor


class SensorMissing(SensorError):
    """The sensor gave no usable answer; ``detail`` says what was tried."""

    def __init__(self, sensor: str, detail: str) -> None:
        super().__init__(sensor, detail)
        self.detail = detail


class NoReply(SensorMissing):
    """A UART sensor sent no valid reply to ``command`` within ``waited_ms``."""

    def __init__(self, sensor: str, command: int, waited_ms: int) -> None:
        super().__init__(sensor, f"no reply to command 0x{command:02x} within {waited_ms} ms")
        self.command = command
        self.waited_ms = waited_ms


class BusError(SensorMissing):
    """The I2C transfer to ``address`` failed with OSError ``errno`` (19 = no ACK)."""

    def __init__(self, sensor: str, address: int, errno: int) -> None:
        super().__init__(sensor, f"I2C error {errno} at address 0x{address:02x}")
        self.address = address
        self.errno = errno


class ChipIdMismatch(SensorMissing):
    """The chip at ``address`` reports ``chip_id``, which this driver does not drive."""

    def __init__(self, sensor: str, address: int, chip_id: int) -> None:
        super().__init__(sensor, f"chip id 0x{chip_id:02x} at address 0x{address:02x}")
        self.address = address
        self.chip_id = chip_id


class MeasurementTimeout(SensorMissing):
    """The chip was still busy after ``polls`` reads of its status register."""

    def __init__(self, sensor: str, polls: int) -> None:
        super().__init__(sensor, f"still measuring after {polls} status polls")
        self.polls = polls


class FrameError(SensorError):
    """A frame failed a structural check; ``reason`` is a framesync.BAD_* code."""

    def __init__(self, sensor: str, reason: int, message: str) -> None:
        super().__init__(sensor, message)
        self.reason = reason


class ChecksumError(FrameError):
    """The checksum carried by a frame (``received``) differs from ``computed``."""

    def __init__(self, sensor: str, reason: int, computed: int, received: int) -> None:
        super().__init__(
            sensor, reason, f"checksum 0x{received:04x} received, 0x{computed:04x} computed"
        )
        self.computed = computed
        self.received = received


class UnexpectedReply(SensorError):
    """The reply to ``command`` carried ``value`` where ``expected`` was wanted."""

    def __init__(self, sensor: str, command: int, expected: int, value: int) -> None:
        super().__init__(sensor, f"reply to 0x{command:02x} carries {value}, expected {expected}")
        self.command = command
        self.expected = expected
        self.value = value


class InvalidMeasurement(SensorError):
    """The chip returned the reset value ``raw`` for ``quantity``: nothing was measured."""

    def __init__(self, sensor: str, quantity: str, raw: int) -> None:
        super().__init__(sensor, f"{quantity} not measured (raw 0x{raw:x})")
        self.quantity = quantity
        self.raw = raw
