"""HTML → PDF with headless Chromium (Debian's ``chromium``), in its own process group.

Chromium starts helper processes (zygote, GPU, renderer). It runs as the leader of a new
session, and the whole group is killed when it overruns its timeout or when it exits, so it
never leaves a process behind. Its profile is a fresh temporary folder, and every background
service that could reach the network is off: the report needs no network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PDF_TIMEOUT_S = 60.0
PDF_MAGIC = b"%PDF-"
# Chromium puts its singleton socket under $TMPDIR; a Unix socket path longer than 107 bytes
# makes it abort. Its temporary folder lives in the system's when $TMPDIR is longer than this.
MAX_TMP_BASE = 40
SHORT_TMP_BASE = "/tmp"


class PdfError(Exception):
    """The PDF could not be made; the message names the cause."""


class ChromiumMissingError(PdfError):
    def __init__(self) -> None:
        super().__init__(
            "no headless Chromium found (looked for "
            + ", ".join(CHROMIUM_NAMES)
            + "): install Debian's 'chromium' package (scripts/setup.sh does)"
        )


class ChromiumFailedError(PdfError):
    def __init__(self, reason: str, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-5:])
        super().__init__(f"Chromium {reason}" + (f":\n{tail}" if tail else ""))
        self.reason = reason
        self.output = output


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ChromiumMissingError()


def chromium_command(chromium: str, html: Path, pdf: Path, profile: Path) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        html.resolve().as_uri(),
    ]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def html_to_pdf(html: Path, pdf: Path, timeout: float = PDF_TIMEOUT_S) -> None:
    """Print ``html`` to ``pdf``; the file appears only when Chromium made a PDF."""
    chromium = find_chromium()
    pdf = pdf.resolve()
    partial = pdf.with_name(f".{pdf.name}.partial")
    base = tempfile.gettempdir()
    if len(base) > MAX_TMP_BASE:
        base = SHORT_TMP_BASE
    with tempfile.TemporaryDirectory(prefix="commons-chromium-", dir=base) as profile:
        process = subprocess.Popen(
            chromium_command(chromium, html, partial, Path(profile)),
            # Its own temporary files (the singleton socket among them) go with its profile.
            env={**os.environ, "TMPDIR": profile},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            partial.unlink(missing_ok=True)
            raise ChromiumFailedError(f"did not finish within {timeout:g} s", "") from None
        finally:
            # Helpers that outlive the browser process belong to its group: none may remain.
            _kill_group(process)
    text = output.decode("utf-8", "replace")
    if process.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ChromiumFailedError(f"exited with status {process.returncode}", text)
    try:
        with partial.open("rb") as made:
            magic = made.read(len(PDF_MAGIC))
    except FileNotFoundError:
        raise ChromiumFailedError("exited without writing a PDF", text) from None
    if magic != PDF_MAGIC:
        partial.unlink(missing_ok=True)
        raise ChromiumFailedError("wrote a file that is not a PDF", text)
    partial.replace(pdf)
