"""Sensor Commons: shared kernel (message contract, local stack, settings, command line)."""

__version__ = "0.1.0"
