"""The wiring diagram of a node, drawn from its board description (``board.toml``).

    python -m commons.wiring [--kind air] [--out hardware/air-node/wiring.svg]

Plain SVG, written without a plotting library: the ESP32 DevKit on the left with the pins in
use, each sensor on the right with its connector pins, one coloured wire per connection. The
same wire list (:func:`wires`) is the table in ASSEMBLY.md; a test keeps the committed SVG in
step with the board file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from html import escape
from pathlib import Path

from commons.boards import Board, board_path, load_board

POWER_5V = "#d62728"
POWER_3V3 = "#ff7f0e"
GROUND = "#222222"
TX = "#2ca02c"
RX = "#1f77b4"
SDA = "#9467bd"
SCL = "#8c564b"
I2S_SCK = "#e377c2"
I2S_WS = "#17becf"
I2S_SD = "#bcbd22"

# Connector pins of each part, in the order printed on it (datasheets; REFERENCE §8).
PART_PINS = {
    "sds011": ("5V", "GND", "RXD", "TXD"),
    "pms5003": ("VCC", "GND", "RXD", "TXD"),
    "bme280": ("VIN", "GND", "SCL", "SDA"),
    "inmp441": ("VDD", "GND", "SCK", "WS", "SD", "L/R"),
}
PART_TITLES = {
    "sds011": "Nova SDS011 (PM2.5/PM10)",
    "pms5003": "Plantower PMS5003 (PM1/2.5/10)",
    "bme280": "Bosch BME280 breakout (T/RH/p)",
    "inmp441": "INMP441 I2S microphone",
}


@dataclass(frozen=True)
class Wire:
    esp32: str  # DevKit pin label: "GPIO17", "VIN", "3V3", "GND"
    part: str  # sensor key
    part_pin: str
    colour: str
    note: str


def wires(board: Board) -> list[Wire]:
    out: list[Wire] = []
    for uart in board.uarts:
        vcc, gnd, rxd, txd = PART_PINS[uart.sensor]
        supply = "VIN" if uart.supply == "5V" else "3V3"
        out += [
            Wire(supply, uart.sensor, vcc, POWER_5V if supply == "VIN" else POWER_3V3,
                 f"{uart.supply} supply (fan and laser)"),
            Wire("GND", uart.sensor, gnd, GROUND, "ground"),
            Wire(f"GPIO{uart.tx}", uart.sensor, rxd, TX, f"UART{uart.bus} TX -> sensor RX"),
            Wire(f"GPIO{uart.rx}", uart.sensor, txd, RX, f"UART{uart.bus} RX <- sensor TX"),
        ]  # fmt: skip
    for bus in board.i2c:
        for dev in bus.devices:
            vin, gnd, scl, sda = PART_PINS[dev.sensor]
            out += [
                Wire("3V3", dev.sensor, vin, POWER_3V3, "3.3 V supply"),
                Wire("GND", dev.sensor, gnd, GROUND, "ground"),
                Wire(f"GPIO{bus.scl}", dev.sensor, scl, SCL, f"I2C{bus.bus} clock"),
                Wire(f"GPIO{bus.sda}", dev.sensor, sda, SDA,
                     f"I2C{bus.bus} data (address {dev.address:#04x})"),
            ]  # fmt: skip
    for mic in board.i2s:
        vdd, gnd, sck, ws, sd, lr = PART_PINS[mic.sensor]
        lr_pin = "GND" if mic.lr == "gnd" else "3V3"
        out += [
            Wire("3V3", mic.sensor, vdd, POWER_3V3, "3.3 V supply (never 5 V)"),
            Wire("GND", mic.sensor, gnd, GROUND, "ground"),
            Wire(f"GPIO{mic.sck}", mic.sensor, sck, I2S_SCK, f"I2S{mic.bus} bit clock"),
            Wire(f"GPIO{mic.ws}", mic.sensor, ws, I2S_WS, f"I2S{mic.bus} word select"),
            Wire(f"GPIO{mic.sd}", mic.sensor, sd, I2S_SD, f"I2S{mic.bus} data <- microphone"),
            Wire(lr_pin, mic.sensor, lr, GROUND if lr_pin == "GND" else POWER_3V3,
                 f"{mic.slot} slot (tie it, never leave it floating)"),
        ]  # fmt: skip
    return out


def _esp32_pins(board: Board, wire_list: list[Wire]) -> list[str]:
    order: list[str] = []
    for pin in ("VIN", "3V3", "GND"):
        if any(w.esp32 == pin for w in wire_list):
            order.append(pin)
    gpios = sorted(
        {w.esp32 for w in wire_list if w.esp32.startswith("GPIO")}, key=lambda p: int(p[4:])
    )
    return order + gpios + [f"GPIO{g.pin}" for g in board.gpio if f"GPIO{g.pin}" not in gpios]


def svg(board: Board) -> str:
    wire_list = wires(board)
    pins = _esp32_pins(board, wire_list)
    parts = list(dict.fromkeys(w.part for w in wire_list))
    row = 26
    esp_x, esp_w = 40, 250
    esp_top = 80
    esp_h = row * (len(pins) + 1) + 20
    part_x, part_w = 700, 240
    width = part_x + part_w + 40
    # Parts stacked on the right, each as tall as its pin list.
    part_boxes: dict[str, tuple[int, int]] = {}
    y = esp_top
    for part in parts:
        h = row * (len(PART_PINS[part]) + 1) + 20
        part_boxes[part] = (y, h)
        y += h + 40
    height = max(esp_top + esp_h, y) + 120
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="20" y="32" font-size="18" font-weight="bold">'
        f"{escape(board.name)}: wiring ({escape(board.module)})</text>",
        '<text x="20" y="54" fill="#555">Drawn from board.toml by '
        "python -m commons.wiring. Pins are ESP32 GPIO numbers.</text>",
        f'<rect x="{esp_x}" y="{esp_top}" width="{esp_w}" height="{esp_h}" rx="8" '
        'fill="#1b4f72" stroke="#0b2f42"/>',
        f'<text x="{esp_x + 12}" y="{esp_top + 22}" fill="white" font-weight="bold">'
        "ESP32 DevKit</text>",
    ]
    pin_y: dict[str, int] = {}
    for i, pin in enumerate(pins):
        py = esp_top + 20 + row * (i + 1)
        pin_y[pin] = py
        out.append(
            f'<circle cx="{esp_x + esp_w}" cy="{py}" r="4" fill="#f4d03f" stroke="#7d6608"/>'
        )
        label = pin
        for g in board.gpio:
            if pin == f"GPIO{g.pin}":
                label += f" ({g.name.replace('_', ' ')}, on board)"
        out.append(
            f'<text x="{esp_x + esp_w - 10}" y="{py + 4}" fill="white" '
            f'text-anchor="end">{escape(label)}</text>'
        )
    part_pin_y: dict[tuple[str, str], int] = {}
    for part in parts:
        top, h = part_boxes[part]
        out.append(
            f'<rect x="{part_x}" y="{top}" width="{part_w}" height="{h}" rx="8" '
            'fill="#eaf2f8" stroke="#5d6d7e"/>'
        )
        out.append(
            f'<text x="{part_x + 10}" y="{top + 22}" font-weight="bold">'
            f"{escape(PART_TITLES[part])}</text>"
        )
        for i, name in enumerate(PART_PINS[part]):
            py = top + 20 + row * (i + 1)
            part_pin_y[(part, name)] = py
            out.append(f'<circle cx="{part_x}" cy="{py}" r="4" fill="#f4d03f" stroke="#7d6608"/>')
            out.append(f'<text x="{part_x + 12}" y="{py + 4}">{escape(name)}</text>')
    for i, wire in enumerate(wire_list):
        y0 = pin_y[wire.esp32]
        y1 = part_pin_y[(wire.part, wire.part_pin)]
        # Each wire gets its own vertical lane so none overlap.
        lane = esp_x + esp_w + 40 + i * (part_x - esp_x - esp_w - 80) // max(1, len(wire_list) - 1)
        out.append(
            f'<polyline points="{esp_x + esp_w},{y0} {lane},{y0} {lane},{y1} {part_x},{y1}" '
            f'fill="none" stroke="{wire.colour}" stroke-width="2.5"/>'
        )
    legend_y = height - 80
    legend = [
        ("5 V", POWER_5V), ("3.3 V", POWER_3V3), ("GND", GROUND), ("TX", TX), ("RX", RX),
        ("SDA", SDA), ("SCL", SCL),
    ]  # fmt: skip
    if board.i2s:  # a microphone's board: its own wires, not the serial and I2C ones
        legend = [
            ("3.3 V", POWER_3V3), ("GND", GROUND), ("SCK", I2S_SCK), ("WS", I2S_WS),
            ("SD", I2S_SD),
        ]  # fmt: skip
    for i, (name, colour) in enumerate(legend):
        lx = 40 + i * 110
        out.append(
            f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 30}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{lx + 36}" y="{legend_y + 4}">{escape(name)}</text>')
    if board.uarts:
        out.append(
            f'<text x="40" y="{legend_y + 34}" fill="#555">Cross TX and RX: the ESP32 transmits '
            "on its TX pin into the sensor's RXD, and listens on RX to the sensor's TXD.</text>"
        )
    if board.i2s:
        out.append(
            f'<text x="40" y="{legend_y + 34}" fill="#555">Short wires (under 20 cm): SCK runs '
            "at 3 MHz. L/R picks the microphone's slot; the firmware checks both.</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def wiring_table(board: Board) -> str:
    """The wire list as a Markdown table (for ASSEMBLY.md)."""
    lines = ["| ESP32 pin | part | part pin | what |", "| --- | --- | --- | --- |"]
    for w in wires(board):
        lines.append(f"| {w.esp32} | {w.part.upper()} | {w.part_pin} | {w.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="air")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", action="store_true", help="print the wire list as Markdown")
    args = parser.parse_args(argv)
    source = board_path(args.kind)
    board = load_board(source)
    if args.table:
        print(wiring_table(board))
        return
    out = args.out or source.parent / "wiring.svg"
    out.write_text(svg(board))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
