"""Call uuids: the one check of what a FreeSWITCH channel uuid looks like.

A uuid reaches us from the fork URL, from inbox commands and from our own originate; it ends up
in ESL command lines and file names, so every path validates it here (``fullmatch``: a trailing
newline is not a uuid).
"""
from __future__ import annotations

import re
from typing import Any

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_RE = re.compile(UUID_PATTERN)


def is_call_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def call_uuid(value: Any) -> str:
    """``value`` if it is a channel uuid, else ``ValueError``."""
    if not is_call_uuid(value):
        raise ValueError(f"not a channel uuid: {value!r}")
    return value
