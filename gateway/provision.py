"""``commons node provision``: write a node's config file onto its ESP32 over USB serial.

The node runs MicroPython; its REPL on the USB serial port has a *raw* mode made for
programs (the one ``mpremote`` uses): Ctrl-C stops whatever runs, Ctrl-A enters raw mode
(the board answers ``raw REPL; CTRL-B to exit`` and a ``>`` prompt), then each command is
sent as source text ended by Ctrl-D; the board answers ``OK``, the command's output, ``\\x04``,
its error output (a traceback), ``\\x04`` and the next ``>``. Ctrl-B leaves raw mode.

Every command sent here is shorter than :data:`MAX_COMMAND`, so the board's UART receive
buffer never overflows while it is busy and no pacing is needed: each ``OK`` is the flow
control. The file is written as ``<path>.new`` in base64 chunks and renamed over ``<path>``
only when complete, so a cable pulled halfway never leaves a truncated config behind. Then it
is read back, and both the bytes and the board's own SHA-256 of them must match.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import serial

from commons.contract import NODE_ID_PATTERN
from commons.home import commons_home

CTRL_A = b"\x01"  # enter raw REPL
CTRL_B = b"\x02"  # leave raw REPL
CTRL_C = b"\x03"  # interrupt
CTRL_D = b"\x04"  # execute (raw REPL); end-of-output marker in answers
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
MAX_COMMAND = 256  # bytes of source per command: within any port's UART receive buffer
CHUNK = 120  # file bytes per write command (160 characters of base64)
MAX_CONFIG_BYTES = 16 * 1024
DEFAULT_REMOTE_PATH = "config.json"
DEFAULT_TIMEOUT_S = 10.0
ENTER_ATTEMPTS = 3
READ_POLL_S = 0.05
EXIT_DEVICE = 1
EXIT_USAGE = 2


class ProvisionError(Exception):
    """Provisioning failed; ``port`` names the device."""

    def __init__(self, port: str, message: str) -> None:
        super().__init__(f"{port}: {message}")
        self.port = port


class DeviceNotFoundError(ProvisionError):
    def __init__(self, port: str, reason: str) -> None:
        super().__init__(port, f"cannot open the serial device ({reason})")
        self.reason = reason


class NotMicroPythonError(ProvisionError):
    """The device did not answer like a MicroPython REPL; ``received`` is what it sent."""

    def __init__(self, port: str, received: bytes) -> None:
        shown = received[-200:].decode("utf-8", "replace")
        super().__init__(
            port,
            f"no MicroPython raw REPL (is it a node running MicroPython, and is nothing "
            f"else using the port?); it answered {shown!r}",
        )
        self.received = received


class RemoteError(ProvisionError):
    """A command failed on the board; ``traceback`` is its error output."""

    def __init__(self, port: str, command: str, traceback: str) -> None:
        super().__init__(port, f"the board failed to run {command!r}:\n{traceback.strip()}")
        self.command = command
        self.traceback = traceback


class VerifyMismatchError(ProvisionError):
    """What the board holds after writing is not what was sent."""

    def __init__(self, port: str, path: str, expected: str, actual: str, what: str) -> None:
        super().__init__(
            port, f"{path} read back differs ({what}): sha256 {actual}, expected {expected}"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class ConfigFileError(Exception):
    """The config file to provision is missing or not a node config."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RawRepl:
    """MicroPython's raw REPL over an open serial port."""

    def __init__(self, port: serial.Serial, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.port = port
        self.name = str(port.port)
        self.timeout = timeout
        self._pending = bytearray()

    def _read_until(self, marker: bytes, timeout: float) -> tuple[bytes, bool]:
        """Bytes up to and including ``marker``; (what came, False) at the deadline.

        What came after the marker is kept for the next call.
        """
        deadline = time.monotonic() + timeout
        while (end := self._pending.find(marker)) < 0:
            if time.monotonic() >= deadline:
                data, self._pending = bytes(self._pending), bytearray()
                return data, False
            try:
                self._pending += self.port.read(max(1, min(self.port.in_waiting, 4096)))
            except serial.SerialException as exc:
                raise ProvisionError(self.name, f"the device went away ({exc})") from None
        end += len(marker)
        data = bytes(self._pending[:end])
        del self._pending[:end]
        return data, True

    def enter(self) -> None:
        """Interrupt the running program and enter raw mode; NotMicroPythonError if not."""
        seen = b""
        for _ in range(ENTER_ATTEMPTS):
            # Ctrl-C twice: a program may catch the first KeyboardInterrupt.
            self.port.write(b"\r" + CTRL_C + CTRL_C)
            self.port.write(b"\r" + CTRL_A)
            data, ok = self._read_until(RAW_BANNER, self.timeout / ENTER_ATTEMPTS)
            seen += data
            if ok:
                break
        else:
            raise NotMicroPythonError(self.name, seen)
        self._prompt()

    def _prompt(self) -> None:
        data, ok = self._read_until(b">", self.timeout)
        if not ok:
            raise NotMicroPythonError(self.name, data)

    def exec(self, code: str) -> bytes:
        """Run ``code`` on the board; its standard output, or RemoteError with its traceback."""
        source = code.encode()
        if len(source) >= MAX_COMMAND:
            raise ValueError(f"command of {len(source)} bytes, at most {MAX_COMMAND - 1}")
        self.port.write(source + CTRL_D)
        answer, ok = self._read_until(b"OK", self.timeout)
        if not ok or answer != b"OK":
            raise NotMicroPythonError(self.name, answer)
        out, ok = self._read_until(CTRL_D, self.timeout)
        err, ok2 = self._read_until(CTRL_D, self.timeout)
        if not (ok and ok2):
            raise ProvisionError(self.name, f"no end of output for {code!r} (got {out + err!r})")
        self._prompt()
        if err[:-1]:
            raise RemoteError(self.name, code, err[:-1].decode("utf-8", "replace"))
        return out[:-1]

    def leave(self) -> None:
        self.port.write(b"\r" + CTRL_B)


@dataclass(frozen=True)
class Provisioned:
    port: str
    path: str
    size: int
    sha256: str


def write_file(repl: RawRepl, path: str, content: bytes) -> None:
    """Write ``content`` to ``path`` on the board: to ``path.new``, then renamed over it."""
    tmp = path + ".new"
    repl.exec(f"import os, binascii\n_f = open({tmp!r}, 'wb')")
    for start in range(0, len(content), CHUNK):
        chunk = binascii.b2a_base64(content[start : start + CHUNK], newline=False).decode()
        repl.exec(f"_f.write(binascii.a2b_base64({chunk!r}))")
    repl.exec(f"_f.close()\nos.rename({tmp!r}, {path!r})\ndel _f")


def read_file(repl: RawRepl, path: str) -> tuple[bytes, str | None]:
    """The bytes of ``path`` on the board and the board's SHA-256 of them (None without hashlib)."""
    repl.exec(f"_f = open({path!r}, 'rb')\n_d = _f.read()\n_f.close()\ndel _f")
    data = bytearray()
    offset = 0
    while True:
        line = repl.exec(
            f"print(binascii.b2a_base64(_d[{offset}:{offset + CHUNK}]).decode().strip())"
        )
        chunk = binascii.a2b_base64(line.strip())
        if not chunk:
            break
        data += chunk
        offset += len(chunk)
    digest = repl.exec(
        "try:\n import hashlib\n print(binascii.hexlify(hashlib.sha256(_d).digest()).decode())\n"
        "except ImportError:\n print('-')\ndel _d"
    ).strip()
    return bytes(data), None if digest == b"-" else digest.decode()


def provision(
    port_name: str,
    content: bytes,
    remote_path: str = DEFAULT_REMOTE_PATH,
    baudrate: int = 115200,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Provisioned:
    """Write ``content`` to ``remote_path`` on the MicroPython board at ``port_name``, verified."""
    try:
        port = serial.Serial(port_name, baudrate, timeout=READ_POLL_S, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise DeviceNotFoundError(port_name, str(exc)) from None
    try:
        repl = RawRepl(port, timeout)
        repl.enter()
        try:
            write_file(repl, remote_path, content)
            back, board_digest = read_file(repl, remote_path)
        finally:
            repl.leave()
    finally:
        port.close()
    expected = hashlib.sha256(content).hexdigest()
    actual = hashlib.sha256(back).hexdigest()
    if actual != expected:
        raise VerifyMismatchError(port_name, remote_path, expected, actual, "bytes")
    if board_digest is not None and board_digest != expected:
        raise VerifyMismatchError(port_name, remote_path, expected, board_digest, "board hash")
    return Provisioned(port_name, remote_path, len(content), expected)


def load_node_config(node_id: str, path: Path | None) -> tuple[Path, bytes]:
    """The config file for ``node_id``: ``path``, else ``$COMMONS_HOME/nodes/<id>.json``."""
    if path is None:
        path = commons_home() / "nodes" / f"{node_id}.json"
        if not path.exists():
            raise ConfigFileError(
                path, f"no config for {node_id}: run 'commons node add {node_id}' or pass --config"
            )
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(path, f"cannot read it ({exc.strerror})") from None
    if len(content) > MAX_CONFIG_BYTES:
        raise ConfigFileError(path, f"{len(content)} bytes, more than {MAX_CONFIG_BYTES}")
    try:
        config = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigFileError(path, f"not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigFileError(path, "expected a JSON object")
    named = config.get("node_id")  # the firmware's key (firmware/config.py)
    if named is not None and named != node_id:
        raise ConfigFileError(path, f"node_id is {named!r}, not {node_id!r}")
    return path, content


def provision_command(node_id: str, port: str, config_path: Path | None, baudrate: int) -> None:
    """The body of ``commons node provision`` (exit 2: bad input, 1: device failure)."""
    if not NODE_ID_PATTERN.match(node_id):
        click.echo(f"commons: node id {node_id!r} is not [a-z0-9-]{{3,32}}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        source, content = load_node_config(node_id, config_path)
    except ConfigFileError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        done = provision(port, content, baudrate=baudrate)
    except ProvisionError as exc:
        click.echo(f"commons: {exc}", err=True)
        sys.exit(EXIT_DEVICE)
    click.echo(
        json.dumps(
            {
                "node": node_id,
                "config": str(source),
                "port": done.port,
                "path": done.path,
                "bytes": done.size,
                "sha256": done.sha256,
                "verified": True,
            }
        )
    )
    click.echo("reset the node (or power-cycle it) to start with the new configuration", err=True)
