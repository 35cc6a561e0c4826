"""Sensor drivers of the air-quality node.

Each chip module splits a pure part (bytes in, reading out, checked for header,
length and checksum) from a thin transport over the bus object it is given, so
the same code runs on the ESP32 and, against byte-level fakes, on the
MicroPython unix port.
"""
