"""The serial link protocol, version 1: the gateway's half (the node's: firmware/serial_uplink.py).

A node in USB-serial mode writes its messages on its console, between the console's own
lines; the gateway answers on the same port. ASCII, one message per line, each ending in a
space and the CRC-32 of everything before that space as 8 lowercase hex digits::

    node → gateway   SC1 HELLO <node_id> <fw> <crc>          asks for the time
                     SC1 MSG <n> <topic> <payload> <crc>     a message of contract v1
    gateway → node   SC1 TIME <unix seconds> <crc>
                     SC1 ACK <n> <crc>                       committed to the queue
                     SC1 NAK <n> <reason> <crc>              not taken: the node sends it again

``n`` is the reading's record number in the node's flash ring (0: a status, not kept).
Pure functions on bytes: :func:`parse_line` raises :class:`LinkError` with a short
``reason`` (the name it is counted under) for a line that is not a valid message.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

PREFIX = b"SC1 "
# Longest line taken: a ring slot holds at most 250 bytes of payload (firmware/ringbuf.py),
# the topic and the framing add less than 100.
LINE_MAX = 1024

# Reasons a line is refused, as counted (``rejected_<reason>``) in the gateway's status.
GARBAGE = "garbage"  # not text: line noise, a wrong baud rate, a half-powered adapter
BAD_CRC = "bad_crc"
BAD_FRAME = "bad_frame"
TOO_LONG = "too_long"
WRONG_NODE = "wrong_node"  # the message names another node than the port's
REASONS = (GARBAGE, BAD_CRC, BAD_FRAME, TOO_LONG, WRONG_NODE)


class LinkError(ValueError):
    """A line that is not a valid protocol message; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Hello:
    node: str
    fw: str


@dataclass(frozen=True)
class NodeMessage:
    number: int  # record number in the node's ring; 0 for a status
    topic: str
    payload: bytes


def crc_hex(body: bytes) -> bytes:
    return b"%08x" % (binascii.crc32(body) & 0xFFFFFFFF)


def frame(body: bytes) -> bytes:
    return body + b" " + crc_hex(body) + b"\n"


def is_protocol(line: bytes) -> bool:
    return line.startswith(PREFIX)


def is_text(line: bytes) -> bool:
    """Printable ASCII (a console line of the node), tabs allowed."""
    return all(32 <= b < 127 or b == 9 for b in line)


def parse_line(line: bytes) -> Hello | NodeMessage:
    """One line from the node (without its newline); raises :class:`LinkError`."""
    line = line.rstrip(b"\r")
    if not is_text(line):
        raise LinkError(GARBAGE, "not printable ASCII")
    cut = line.rfind(b" ")
    if cut < 0 or crc_hex(line[:cut]) != line[cut + 1 :]:
        raise LinkError(BAD_CRC, "checksum does not match")
    words = line[len(PREFIX) : cut].split(b" ", 3)
    verb = words[0]
    if verb == b"HELLO" and len(words) == 3:
        return Hello(words[1].decode(), words[2].decode())
    if verb == b"MSG" and len(words) == 4:
        try:
            number = int(words[1])
        except ValueError:
            raise LinkError(BAD_FRAME, f"record number {words[1]!r}") from None
        if number < 0:
            raise LinkError(BAD_FRAME, f"record number {number}")
        return NodeMessage(number, words[2].decode(), words[3])
    raise LinkError(BAD_FRAME, f"{verb.decode()!r} with {len(words) - 1} words")


def time_line(unix: int) -> bytes:
    return frame(PREFIX + b"TIME %d" % unix)


def ack_line(number: int) -> bytes:
    return frame(PREFIX + b"ACK %d" % number)


def nak_line(number: int, reason: str) -> bytes:
    return frame(PREFIX + b"NAK %d " % number + reason.encode())
