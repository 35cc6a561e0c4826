"""A simulated node's flash: its folder under ``$COMMONS_HOME/sim/<node>/``.

The folder is the device's filesystem root (the process's working directory): ``config.json``
as a resident would copy it (pins from the board description, broker and credentials from
``commons node add``'s provisioning file when there is one), ``sim.json`` for the emulated
hardware (commons/sim/mpy), ``env.bin``, the air the node sits in, and for a noise node fed
a recording, ``mic.raw`` (its I2S words). What the firmware keeps there itself (its flash
ring buffer) stays across runs, as on a real node.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.boards import Board, config_sections
from commons.home import StackInfo
from commons.sim import physics

SIM_SSID = "commons-sim"
SIM_WIFI_PASSWORD = "simulated"
ENV_FILE = "env.bin"
MIC_FILE = "mic.raw"
# How many times real time of audio an emulated microphone hands out at most while the node's
# clock runs faster (backfill): the CPU budget of a noise node (commons/sim/mpy/sim_i2s.py).
AUDIO_SPEED = 4
# Frames with a wrong checksum or cut short, per 1 Hz frame (about one in 500).
CORRUPT_RATE = 0.002
# Minimal PM warm-up plus sampling the firmware accepts for its sample interval.
LIVE_DAYS = 7


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    area: str
    traffic: float  # 0..1: park edge .. busy road
    seed: int
    pm_sensor: str = "sds011"
    # Injected faults for tests, e.g. {"i2c_hang_at_s": 60} (see commons/sim/mpy/machine.py).
    faults: tuple[tuple[str, float], ...] = ()
    # Wi-Fi outages: every ``[0]`` seconds of the node's time the link is down for ``[1]``.
    wifi_outages: tuple[int, int] | None = None
    # A noise node's microphone hears this recording (WAV, looped) instead of the street.
    mic_wav: Path | None = None


@dataclass(frozen=True)
class ClockPlan:
    """The node's clock: ``start`` (UTC s) at real time ``real_start``, ``speed`` times faster
    than real time until it has caught up."""

    start: float
    real_start: float
    speed: float

    @classmethod
    def live(cls, now: float) -> ClockPlan:
        return cls(now, now, 1.0)

    @classmethod
    def backfill(cls, now: float, hours: float, real_seconds: float) -> ClockPlan:
        """History of ``hours`` replayed in about ``real_seconds``, then live."""
        behind = hours * 3600.0
        if behind <= 0:
            return cls.live(now)
        # The clock catches up after t real seconds when speed * t = behind + t.
        speed = max(1.0, behind / max(real_seconds, 1.0) + 1.0)
        return cls(now - behind, now, speed)

    def caught_up_at(self) -> float:
        """Real time at which the node's clock reaches real time."""
        if self.speed <= 1.0:
            return self.real_start
        return self.real_start + (self.real_start - self.start) / (self.speed - 1.0)


def mac_for(node_id: str) -> str:
    """A stable, locally administered MAC address for a node id."""
    digest = hashlib.sha256(node_id.encode()).digest()
    return "26" + digest[:5].hex()


def device_config(
    spec: NodeSpec,
    board: Board,
    stack: StackInfo,
    base: dict[str, Any] | None,
    sample_s: int,
    status_s: int,
) -> dict[str, Any]:
    """The node's ``config.json`` (firmware/config.py)."""
    config: dict[str, Any] = dict(base or {})
    config["node_id"] = spec.node_id
    config["wifi"] = {"ssid": SIM_SSID, "password": SIM_WIFI_PASSWORD}
    broker = dict(config.get("broker") or {})
    broker.setdefault("host", stack.mqtt.host)
    broker.setdefault("port", stack.mqtt.port)
    broker["tls"] = False
    config["broker"] = broker
    config["ntp"] = {"host": stack.mqtt.host}
    config.update(config_sections(board, spec.pm_sensor))
    config["intervals"] = {"sample_s": sample_s, "status_s": status_s}
    if "noise" in config:  # the meter's period: the node's reading interval
        config["noise"] = {**config["noise"], "period_s": sample_s}
    return config


def sim_config(
    spec: NodeSpec, board: Board, clock: ClockPlan, env_start: int, env_count: int
) -> dict[str, Any]:
    """The emulated hardware (``sim.json``), wired as the board description says."""
    uarts = [
        {
            "tx": u.tx,
            "rx": u.rx,
            "baudrate": u.baudrate,
            "device": spec.pm_sensor if u.name == "pm" else u.sensor,
            "opts": {"corrupt_rate": CORRUPT_RATE},
        }
        for u in board.uarts
    ]
    buses = [
        {
            "scl": b.scl,
            "sda": b.sda,
            "devices": [
                {"address": d.address, "device": d.sensor, "opts": {"calibration": "typical"}}
                for d in b.devices
            ],
        }
        for b in board.i2c
    ]
    mic: dict[str, Any] = {}
    if board.i2s:  # the microphone: what it hears, and the CPU budget of its audio
        mic = {
            "mic": (
                {"source": "wav", "file": MIC_FILE}
                if spec.mic_wav is not None
                else {"source": "street", "traffic": spec.traffic, "seed": spec.seed}
            ),
            "audio_speed": AUDIO_SPEED,
        }
    return {
        "node": spec.node_id,
        "seed": spec.seed,
        "clock": {"start": clock.start, "real_start": clock.real_start, "speed": clock.speed},
        "uart": uarts,
        "i2c": buses,
        "wifi": {
            "ssid": SIM_SSID,
            "password": SIM_WIFI_PASSWORD,
            "mac": mac_for(spec.node_id),
            **(
                {"drop_every_s": spec.wifi_outages[0], "drop_for_s": spec.wifi_outages[1]}
                if spec.wifi_outages
                else {}
            ),
        },
        "env": {"file": ENV_FILE, "start": env_start, "step": physics.STEP_S, "count": env_count},
        "i2s": [{"sck": m.sck, "ws": m.ws, "sd": m.sd, "slot": m.slot} for m in board.i2s],
        **mic,
        "faults": dict(spec.faults),
    }


def write_mic(dest: Path, wav: Path) -> int:
    """The recording's left channel as INMP441 words in ``dest``; its rate (the firmware's).

    Raises ``commons.noise.NoiseInputError`` for a file the meter cannot take.
    """
    from commons.noise import wav_words

    info, chunks = wav_words(wav)
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    if tmp.stat().st_size < 4 * info.rate:
        tmp.unlink()
        from commons.noise import NoiseInputError

        raise NoiseInputError(wav, "shorter than a second")
    tmp.replace(dest)
    return info.rate


def provisioning_file(home: Path, node_id: str) -> dict[str, Any] | None:
    """What ``commons node add`` wrote for this node ($COMMONS_HOME/nodes/<id>.json), if any."""
    path = home / "nodes" / f"{node_id}.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def prepare(
    folder: Path,
    spec: NodeSpec,
    board: Board,
    stack: StackInfo,
    clock: ClockPlan,
    *,
    base: dict[str, Any] | None,
    sample_s: int,
    status_s: int,
    until: float,
) -> None:
    """Write the node's flash: config.json, sim.json and the timeline up to ``until`` (UTC s)."""
    folder.mkdir(parents=True, exist_ok=True)
    step = physics.STEP_S
    env_start = int(clock.start) // step * step - step
    end = max(until, time.time()) + 3600
    env_count = int(end - env_start) // step + 1
    physics.write_timeline(
        folder / ENV_FILE,
        physics.sim_node(spec.node_id, spec.area, spec.traffic, spec.seed),
        env_start,
        env_count,
    )
    config = device_config(spec, board, stack, base, sample_s, status_s)
    if spec.mic_wav is not None and board.i2s:
        config["noise"]["rate"] = write_mic(folder / MIC_FILE, spec.mic_wav)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "config.json").chmod(0o600)
    sim = sim_config(spec, board, clock, env_start, env_count)
    (folder / "sim.json").write_text(json.dumps(sim, indent=2) + "\n")
