"""Times in exports: instants are UTC inside; RFC 3339 text with a ``Z`` for UTC."""

from __future__ import annotations

from datetime import UTC, datetime


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


# Zone names that are UTC itself: their times are written with a ``Z``.
UTC_NAMES = frozenset(("UTC", "Etc/UTC", "Z", "Etc/Zulu", "Zulu", "Universal", "Etc/Universal"))
