"""Board descriptions: the air node's board file passes, pin choices that break an ESP32 fail."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from commons.boards import BoardError, board_path, config_sections, load_board, parse_board

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
