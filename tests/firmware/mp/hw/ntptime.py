"""Fake ``ntptime``: the unix port's clock is already right; settime can be made to fail."""

from hwconf import HW

host = "pool.ntp.org"


def settime():
    if HW.get("ntp_fail"):
        raise OSError(110)
    print(f"NTP settime host={host}")
