"""IANA time zone names, checked once the same way everywhere a user can give one."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def iana_zone(name: str, example: str = "Europe/Berlin") -> str:
    """``name`` if this system knows the zone, else a ValueError that pydantic reports on the field."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as {example})") from None
    return name
