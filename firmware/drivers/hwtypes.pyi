"""What the drivers need from the hardware, for the type checker only.

Nothing imports this at run time: the drivers import it under ``TYPE_CHECKING``
(a ``const(False)`` that MicroPython's compiler folds away). ``machine.UART``,
``machine.I2C`` and the ``time`` module satisfy these protocols; so do the
byte-level fakes in tests/firmware.
"""

from typing import Any, Protocol

class Clock(Protocol):
    """The three functions of MicroPython's ``time`` module that the drivers use."""

    def ticks_ms(self) -> Any: ...
    def ticks_diff(self, ticks1: Any, ticks2: Any, /) -> int: ...
    def sleep_ms(self, ms: int, /) -> None: ...

class UartLike(Protocol):
    """The part of ``machine.UART`` a UART sensor driver uses."""

    def any(self) -> int: ...
    def read(self, nbytes: int, /) -> bytes | None: ...
    def readinto(self, buf: bytearray, nbytes: int, /) -> int | None: ...
    def write(self, buf: bytes | bytearray, /) -> int | None: ...

class I2CLike(Protocol):
    """The part of ``machine.I2C`` (or ``SoftI2C``) the BME280 transport uses."""

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: bytearray, /) -> None: ...
    def writeto_mem(self, addr: int, memaddr: int, buf: bytearray, /) -> None: ...
