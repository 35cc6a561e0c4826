"""Store-and-forward on the node: a bounded ring of readings in flash.

Every reading goes through here: the sampler appends, the uplink reads the
oldest, publishes it and removes it only after its PUBACK. The ring survives a
reboot and hands readings out in the order they were taken, each still
carrying its original ``ts``. When it is full the oldest reading is dropped,
and counted (``dropped``); nothing else is ever lost.

Layout, in ``folder`` (the device's flash filesystem):

- ``ring.bin``: ``slots`` fixed slots of ``SLOT`` bytes. A slot holds a record
  number (u32, little-endian, 0 = never written), a u16 (little-endian) whose low
  12 bits are the payload length and high 4 bits the message's kind (0 air,
  1 noise: the uplink's topics; a ring written before kinds existed reads as air),
  and the payload. Record ``n`` lives in slot ``n % slots``; numbers only grow.
- ``ring.state``: ``first dropped`` as text: the oldest record not yet
  acknowledged and the drop count, replaced atomically (write, then rename).

At boot the highest record number in ``ring.bin`` gives the next one, so the
records written since the last saved ``first`` are all found again. A crash
between a PUBACK and saving ``first`` resends that reading once: a duplicate
the storage side absorbs (same node, seq and ts), never a loss. The record
number is the reading's ``seq``, so it keeps counting across reboots; air and
noise readings share it (``seq`` is per node), each record keeping its kind so the
uplink publishes it on its own topic.
"""

import os
import struct

from micropython import const

SLOT = const(256)
_HEADER = const(6)
MAX_PAYLOAD = const(SLOT - _HEADER)
_SIZE_MASK = const(0x0FFF)
_KIND_SHIFT = const(12)
_DATA = "ring.bin"
_STATE = "ring.state"


class PayloadTooLarge(ValueError):
    """A payload of ``size`` bytes does not fit a slot (MAX_PAYLOAD)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"payload of {size} bytes, at most {MAX_PAYLOAD}")
        self.size = size


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class RingBuffer:
    """Bounded FIFO of byte payloads in ``folder``; counts added, acked and dropped."""

    def __init__(self, folder: str, slots: int) -> None:
        self.slots = slots
        self._folder = folder
        self._data_path = folder + "/" + _DATA
        self._state_path = folder + "/" + _STATE
        # Separate buffers for reading and writing: what ``peek`` handed out stays intact
        # while the sampler appends.
        self._slot = bytearray(SLOT)
        self._view = memoryview(self._slot)
        self._wslot = bytearray(SLOT)
        self._wview = memoryview(self._wslot)
        self.added = 0
        self.acked = 0
        self.dropped = 0
        self.first = 1
        self.next = 1
        self.peeked = 0
        self.kind = 0
        if not _exists(folder):
            os.mkdir(folder)
        self._layout()
        self._file = open(self._data_path, "r+b")  # noqa: SIM115 (open for the node's life)
        self._recover()

    def _layout(self) -> None:
        size = self.slots * SLOT
        if _exists(self._data_path) and os.stat(self._data_path)[6] == size:
            return
        # New (or a different size): lay out empty slots.
        with open(self._data_path, "wb") as f:
            zeros = bytearray(SLOT)
            for _ in range(self.slots):
                f.write(zeros)
        if _exists(self._state_path):
            os.remove(self._state_path)

    def _recover(self) -> None:
        first = 1
        try:
            with open(self._state_path) as f:
                parts = f.read().split()
            first = int(parts[0])
            self.dropped = int(parts[1])
        except (OSError, ValueError, IndexError):
            pass  # no state yet (or torn): every record found is still pending
        top = 0
        f = self._file
        head = self._slot
        for i in range(self.slots):
            f.seek(i * SLOT)
            f.readinto(self._view[:4])
            n = struct.unpack_from("<I", head, 0)[0]
            if n > top:
                top = n
        self.next = top + 1
        lowest = self.next - self.slots
        if first < lowest:
            first = lowest
        if first < 1:
            first = 1
        if first > self.next:
            first = self.next
        self.first = first

    def _save_state(self) -> None:
        tmp = self._state_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.first} {self.dropped}\n")
        os.rename(tmp, self._state_path)

    def __len__(self) -> int:
        return self.next - self.first

    def next_seq(self) -> int:
        """The record number (and ``seq``) the next ``append`` will get."""
        return self.next

    def append(self, payload: bytes | bytearray | memoryview, kind: int = 0) -> int:
        """Store one payload of ``kind`` (0 air, 1 noise); returns its record number.

        Drops (and counts) the oldest when full.
        """
        size = len(payload)
        if size > MAX_PAYLOAD:
            raise PayloadTooLarge(size)
        if not 0 <= kind < 16:  # 4 bits
            raise ValueError(kind)
        n = self.next
        if n - self.first >= self.slots:
            self.first += 1
            self.dropped += 1
            self._save_state()
        slot = self._wslot
        struct.pack_into("<IH", slot, 0, n, size | (kind << _KIND_SHIFT))
        slot[_HEADER : _HEADER + size] = payload
        f = self._file
        f.seek((n % self.slots) * SLOT)
        f.write(self._wview[: _HEADER + size])
        f.flush()
        self.next = n + 1
        self.added += 1
        return n

    def peek(self) -> memoryview | None:
        """The oldest payload (valid until the next call), or None when empty.

        Its record number is left in ``peeked``, for ``ack``, and its kind in ``kind``.
        """
        while self.first < self.next:
            n = self.first
            f = self._file
            f.seek((n % self.slots) * SLOT)
            f.readinto(self._slot)
            number, field = struct.unpack_from("<IH", self._slot, 0)
            size = field & _SIZE_MASK
            if number == n and size <= MAX_PAYLOAD:
                self.peeked = n
                self.kind = field >> _KIND_SHIFT
                return self._view[_HEADER : _HEADER + size]
            # A slot torn by a power cut mid-write: counted as dropped, skipped.
            self.first += 1
            self.dropped += 1
            self._save_state()
        return None

    def ack(self, n: int) -> bool:
        """Record ``n`` was acknowledged (PUBACK): remove it; False if it had been dropped.

        Naming the record keeps a drop that happened while ``n`` was in flight
        (the ring filled up meanwhile) from removing the wrong reading.
        """
        if n != self.first or n >= self.next:
            return False
        self.first += 1
        self.acked += 1
        self._save_state()
        return True

    def close(self) -> None:
        self._file.close()
