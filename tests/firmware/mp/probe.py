"""Which files the firmware modules were loaded from, and the runtime's .mpy version."""

import sys


def modules(args):
    out = {}
    for name in args["modules"]:
        module = __import__(name, None, None, ["__name__"])
        out[name] = module.__file__
    return {"files": out, "mpy": sys.implementation._mpy}
