"""Board descriptions: the air node's board file passes, pin choices that break an ESP32 fail."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from commons.boards import BoardError, board_path, config_sections, load_board, parse_board
from commons.micropython import REPO

AIR = board_path("air")


def _raw() -> dict[str, Any]:
    with AIR.open("rb") as f:
        return tomllib.load(f)


def _with(path: str, value: Any, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(raw or _raw())
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


def test_air_node_board_is_valid() -> None:
    board = load_board(AIR)
    pm = board.uart("pm")
    assert pm is not None and pm.sensor in ("sds011", "pms5003") and pm.bus in (1, 2)
    assert board.i2c_device("bme280") is not None


def test_config_sections_match_the_firmware_keys() -> None:
    sections = config_sections(load_board(AIR))
    assert sections["pm"] == {"sensor": "sds011", "uart": 2, "tx": 17, "rx": 16}
    assert sections["bme280"]["scl"] == 22 and sections["bme280"]["sda"] == 21
    assert sections["bme280"]["address"] == 0x76
    assert config_sections(load_board(AIR), "pms5003")["pm"]["sensor"] == "pms5003"


@pytest.mark.parametrize(
    ("key", "pin", "reason"),
    [
        ("uart.pm.tx", 6, "SPI flash"),
        ("uart.pm.rx", 11, "SPI flash"),
        ("i2c.env.sda", 9, "SPI flash"),
        ("uart.pm.tx", 34, "input only"),
        ("i2c.env.scl", 39, "input only"),
        ("gpio.status_led.pin", 35, "input only"),
        ("uart.pm.rx", 12, "strapping"),
        ("uart.pm.rx", 0, "strapping"),
        ("i2c.env.sda", 15, "strapping"),
        ("i2c.env.scl", 5, "strapping"),
        ("uart.pm.tx", 1, "UART0"),
        ("uart.pm.rx", 3, "UART0"),
        ("uart.pm.rx", 20, "does not exist"),
        ("i2c.env.scl", 16, "already used by uart.pm.rx"),
    ],
)
def test_pins_that_break_an_esp32_are_rejected(key: str, pin: int, reason: str) -> None:
    with pytest.raises(BoardError) as err:
        parse_board(_with(key, pin))
    assert err.value.key == key
    assert err.value.pin == pin
    assert reason in str(err.value)


def test_adc2_pin_rejected_with_wifi_accepted_without() -> None:
    raw = _with("gpio.battery", {"pin": 25, "mode": "adc"})
    with pytest.raises(BoardError, match="ADC2") as err:
        parse_board(raw)
    assert err.value.key == "gpio.battery.pin"
    parse_board(_with("board.wifi", False, raw))
    parse_board(_with("gpio.battery", {"pin": 33, "mode": "adc"}))  # ADC1 is fine


def test_strapping_pin_is_fine_as_a_plain_output() -> None:
    board = parse_board(_with("gpio.status_led", {"pin": 2, "mode": "out"}))
    assert board.gpio[0].pin == 2


def test_psram_pins_rejected_on_wrover() -> None:
    with pytest.raises(BoardError, match="PSRAM"):
        parse_board(_with("board.module", "ESP32-WROVER-E"))


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("uart.pm.sensor", "sps30", "not one of"),
        ("uart.pm.bus", 0, "UART0"),
        ("uart.pm.tx", "17", "expected a GPIO number"),
    ],
)
def test_bad_values_name_their_key(key: str, value: Any, reason: str) -> None:
    with pytest.raises(BoardError, match=reason) as err:
        parse_board(_with(key, value))
    assert err.value.key == key


def test_bad_i2c_address_is_rejected() -> None:
    raw = _raw()
    raw["i2c"]["env"]["devices"][0]["address"] = 0x40
    with pytest.raises(BoardError, match="not a bme280 address") as err:
        parse_board(raw)
    assert err.value.key == "i2c.env.devices[0].address"


def test_wiring_diagram_and_guide_follow_the_board_file() -> None:
    from commons.wiring import svg, wiring_table

    board = load_board(AIR)
    committed = (AIR.parent / "wiring.svg").read_text()
    assert committed == svg(board), "run: python -m commons.wiring"
    guide = (AIR.parent / "ASSEMBLY.md").read_text()
    assert wiring_table(board) in guide, "paste: python -m commons.wiring --table"


def test_bill_of_materials_has_the_parts_of_the_board() -> None:
    import csv

    with (AIR.parent / "bom.csv").open(newline="") as f:
        parts = list(csv.DictReader(f))
    assert {"part", "quantity", "example source", "price (EUR each)"} <= set(parts[0])
    names = " ".join(p["part"] for p in parts)
    for needed in ("ESP32", "SDS011", "BME280"):
        assert needed in names
    assert all(int(p["quantity"]) >= 0 and float(p["price (EUR each)"]) > 0 for p in parts)


NOISE = board_path("noise")


def _noise_raw() -> dict[str, Any]:
    with NOISE.open("rb") as f:
        return tomllib.load(f)


def test_noise_node_board_is_valid_and_gives_the_firmware_its_pins() -> None:
    board = load_board(NOISE)
    mic = board.microphone()
    assert mic is not None and mic.sensor == "inmp441" and mic.slot == "left"
    assert not board.uarts and not board.i2c
    sections = config_sections(board)
    assert sections["pm"] == {"sensor": "none"} and sections["bme280"] == {"enabled": False}
    assert sections["noise"] == {"i2s": 0, "sck": 32, "ws": 25, "sd": 33}
    # The same pins as the firmware's defaults (firmware/noise/node.py _PINS).
    source = (REPO / "firmware" / "noise" / "node.py").read_text()
    assert '(("sck", 32, True), ("ws", 25, True), ("sd", 33, False))' in source


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("i2s.mic.sck", 34, "input only"),
        ("i2s.mic.ws", 36, "input only"),
        ("i2s.mic.sd", 12, "strapping"),
        ("i2s.mic.sd", 7, "SPI flash"),
        ("i2s.mic.ws", 32, "already used by i2s.mic.sck"),
        ("i2s.mic.lr", "floating", "not one of"),
        ("i2s.mic.sensor", "sph0645", "not one of"),
        ("i2s.mic.bus", 2, "I2S0 and I2S1"),
    ],
)
def test_microphone_choices_that_break_the_node_are_rejected(
    key: str, value: Any, reason: str
) -> None:
    with pytest.raises(BoardError, match=reason) as err:
        parse_board(_with(key, value, _noise_raw()))
    assert err.value.key == key


def test_an_sd_line_on_an_input_only_pin_is_fine() -> None:
    board = parse_board(_with("i2s.mic.sd", 34, _noise_raw()))
    mic = board.microphone()
    assert mic is not None and mic.sd == 34


def test_noise_node_wiring_diagram_guide_and_parts_follow_the_board_file() -> None:
    import csv

    from commons.wiring import svg, wiring_table

    board = load_board(NOISE)
    assert (NOISE.parent / "wiring.svg").read_text() == svg(board), (
        "run: python -m commons.wiring --kind noise"
    )
    guide = (NOISE.parent / "ASSEMBLY.md").read_text()
    assert wiring_table(board) in guide, "paste: python -m commons.wiring --kind noise --table"
    assert "docs/noise-calibration.md" in guide
    with (NOISE.parent / "bom.csv").open(newline="") as f:
        parts = list(csv.DictReader(f))
    names = " ".join(p["part"] for p in parts)
    assert "ESP32" in names and "INMP441" in names
    assert all(int(p["quantity"]) >= 0 and float(p["price (EUR each)"]) > 0 for p in parts)
