"""``ntptime`` on the simulated node: the host's clock is the time server.

settime() sets the node's RTC to the simulated time (see sim_clock); with
``sim.json`` "ntp": {"fail": true} the server never answers.
"""

import errno

import sim_clock
import sim_config

host = "pool.ntp.org"
timeout = 1
NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01


def _ask():
    if sim_config.section("ntp").get("fail"):
        sim_clock.sleep_ms(timeout * 1000)
        raise OSError(errno.ETIMEDOUT)
    return sim_clock.now()


def time():
    """Seconds since the port's epoch (1970 on the unix port)."""
    return int(_ask())


def settime():
    _ask()
    sim_clock.set_synced()
