"""Reference values the dashboards draw, each with its source (shared/REFERENCE.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ingest import indicators as ind
from ingest.indicators.air import AQI_BREAKPOINTS


@dataclass(frozen=True)
class Band:
    """From ``lower`` (inclusive, None: from the lowest value) upwards, until the next band."""

    lower: float | None
    label: str
    color: str


# US EPA AQI, PM2.5 24-h breakpoints of the 2024 revision (TAD EPA-454/B-24-002, May 2024;
# REFERENCE.md §3.3) with AirNow's colours, from ingest.indicators. Concentrations are truncated
# to 0.1 µg/m³ before banding, so a band starts at its lower breakpoint (9.1, 35.5, ...) and a
# value of 9.05 is still "Good".
AQI_PM25_2024 = tuple(
    Band(None if i == 0 else float(low), category.name, category.colour)
    for i, (category, (low, _high)) in enumerate(
        zip(ind.AQI_CATEGORIES, AQI_BREAKPOINTS[ind.Pollutant.PM2_5], strict=True)
    )
)

# WHO Global Air Quality Guidelines 2021, 24-hour guideline levels (AQG) in µg/m³
# (REFERENCE.md §3.1). They apply to a day's mean, 99th percentile.
WHO_2021_PM25_24H = ind.WHO_2021_PM25_24H.value
WHO_2021_PM10_24H = ind.WHO_2021_PM10_24H.value

# Noise colours for the map: the EU Environmental Noise Directive's reporting bands for Lden
# (Annex VI, REFERENCE.md §2.1: 55-59, 60-64, 65-69, 70-74, >=75 dB). A short LAeq is not
# an Lden; the bands are a familiar scale, and the dashboards say so.
NOISE_BANDS = (
    Band(None, "below 55 dB", "green"),
    Band(55.0, "55-59 dB", "yellow"),
    Band(60.0, "60-64 dB", "orange"),
    Band(65.0, "65-69 dB", "red"),
    Band(70.0, "70-74 dB", "purple"),
    Band(75.0, "75 dB and above", "#7e0023"),
)


@dataclass(frozen=True)
class Period:
    name: str
    start: str  # local time HH:MM
    end: str
    color: str


# The EU Environmental Noise Directive's default day, evening and night periods
# (2002/49/EC Annex I, REFERENCE.md §2.1): 07-19, 19-23, 23-07 local time.
END_PERIODS = (
    Period("Day (07-19)", "07:00", "19:00", "rgba(255, 213, 79, 0.08)"),
    Period("Evening (19-23)", "19:00", "23:00", "rgba(255, 152, 0, 0.12)"),
    Period("Night (23-07)", "23:00", "07:00", "rgba(63, 81, 181, 0.15)"),
)

# A node's reporting interval when the registry does not know it: the firmware's default
# sample interval (firmware/config.py, intervals.sample_s).
DEFAULT_INTERVAL_S = 60.0
