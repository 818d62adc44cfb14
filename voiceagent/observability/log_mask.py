"""Phone numbers out of log lines (LOG_MASK_NUMBERS): all but the last four digits become ``*``.

A number is a run of 7 to 15 digits, with an optional leading ``+``, that is not part of a longer
word: a call id (hex and dashes), a decimal (``1764610000.123``) or an identifier with digits in it
is left alone, so masking never hides what an operator correlates lines by.
"""
from __future__ import annotations

import re

_NUMBER = re.compile(r"(?<![\w.\-+])(\+?)(\d{3,11})(\d{4})(?![\w\-]|\.\d)")


def _masked(m: "re.Match[str]") -> str:
    head = m.group(2)
    if len(head) + len(m.group(3)) < 7:
        return m.group(0)
    return m.group(1) + "*" * len(head) + m.group(3)


def mask_numbers(text: str) -> str:
    """``text`` with phone numbers masked: ``+15551230001`` → ``+*******0001``."""
    if not any(c.isdigit() for c in text):
        return text
    return _NUMBER.sub(_masked, text)
