"""Redis replies as text.

Our clients run without ``decode_responses`` (audio and JSON go through as bytes), so redis-py types
every reply as ``bytes | str``; ids and field names are decoded here, in one place, not at each call.
"""
from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A reply value (bytes from our clients, str from a decoding one, or a number) as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode()
    return str(value)
