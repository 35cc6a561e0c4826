"""Times in exports: instants are UTC inside, written in the export's time zone with an offset."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (fractions of a second only when there are some)."""
    moment = as_utc(moment)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(pattern)


UTC_NAMES = frozenset(("UTC", "Etc/UTC", "Z", "Etc/Zulu", "Zulu", "Universal", "Etc/Universal"))


def iso_local(moment: datetime, tz: tzinfo) -> str:
    """RFC 3339 in ``tz`` with its offset at that instant (``Z`` when the zone is UTC)."""
    if str(tz) in UTC_NAMES:
        return iso_utc(moment)
    return as_utc(moment).astimezone(tz).isoformat()
