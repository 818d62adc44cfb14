"""Who a voice-made schedule belongs to: the caller's number, written one way.

The same person calls as ``+1 555 123 0001`` once and ``5551230001`` the next time (or is called
back at ``+15551230001``); every form must name the same owner, or their timers would be
invisible to them and, worse, two spellings could be two owners.  Numbers phonenumbers can
parse become E.164 (a national number in DIAL_DEFAULT_REGION); extensions and SIP URIs are kept
as written, without spaces.  No number (anonymous, withheld) is no owner: nothing is scheduled.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

import phonenumbers
from phonenumbers import NumberParseException

_NOT_A_NUMBER = {"", "anonymous", "unknown", "private", "restricted", "unavailable", "0000000000"}
_SPACES = re.compile(r"[\s().-]")


def normalise(number: str, region: str = "US") -> Optional[str]:
    """The owner a number names, or None when it names nobody."""
    raw = (number or "").strip()
    if raw.lower() in _NOT_A_NUMBER:
        return None
    if raw.lower().startswith(("sip:", "sips:")):
        return raw.lower()[:64]
    compact = _SPACES.sub("", raw)
    if not compact or len(compact) > 32:
        return None
    digits = compact.lstrip("+")
    if not digits.isdigit():
        return None
    if len(digits) <= 6 and not compact.startswith("+"):
        return digits  # an internal extension: no country to add
    try:
        num = phonenumbers.parse(compact, None if compact.startswith("+") else region)
    except NumberParseException:
        return compact
    if not phonenumbers.is_possible_number(num):
        return compact
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def person_of(call: Mapping[str, str]) -> str:
    """The number of the person on a live call's record (calls/inbox.py): who called in, or who was called."""
    return call.get("callee", "") if call.get("direction") == "outbound" else call.get("caller", "")
