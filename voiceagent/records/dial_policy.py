"""One dial policy: which destinations and gateways a placed call may use.

Every way of placing a call (API, CLI, tools, webhooks) goes through
:meth:`client.CallClient.place`, which checks the request here before anything is queued, so a
refused number never reaches a voice worker.  Toll fraud is the risk it guards against: premium
and international numbers are refused unless the deployment allows them (``DIAL_*`` settings).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, FrozenSet, Optional, Tuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from .models import CallRequest

log = logging.getLogger(__name__)

#: Number types that cost the caller more than a call (or forward anywhere): refused by default.
PREMIUM_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN,
                           PhoneNumberType.PERSONAL_NUMBER})


class DialRefused(ValueError):
    """The policy refuses a request; ``field`` names the input at fault ("to" or "gateway")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def masked(number: str) -> str:
    """A destination fit for a log line: its last 4 characters only (not even its length)."""
    return "***" + number[-4:]


def _csv(v: Any) -> Tuple[str, ...]:
    items = v if isinstance(v, (list, tuple, set, frozenset)) else str(v or "").split(",")
    return tuple(x.strip() for x in items if str(x).strip())


@dataclass(frozen=True)
class DialPolicy:
    """The rules; the defaults of the dataclass are permissive (a client built without settings)."""

    default_region: str = "US"
    home_regions: FrozenSet[str] = frozenset({"US"})
    allow_international: bool = True
    allow_premium: bool = True
    validate_e164: bool = False
    extension_max_digits: int = 6
    allow_sip_uris: bool = True
    allowed_patterns: Tuple["re.Pattern[str]", ...] = ()
    allowed_gateways: FrozenSet[str] = frozenset()
    _home_codes: FrozenSet[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = frozenset(phonenumbers.country_code_for_region(r) for r in self.home_regions)
        object.__setattr__(self, "_home_codes", codes)

    @classmethod
    def permissive(cls) -> "DialPolicy":
        return cls()

    @classmethod
    def from_settings(cls, s: Any) -> "DialPolicy":
        """From the DIAL_* settings; a settings object without them gets DialSettings' defaults."""
        from ..config.calls import DialSettings

        def get(name: str) -> Any:
            return getattr(s, name, DialSettings.model_fields[name].default)

        region = str(get("dial_default_region")).upper()
        return cls(default_region=region,
                   home_regions=frozenset(r.upper() for r in _csv(get("dial_home_regions"))) or frozenset({region}),
                   allow_international=bool(get("dial_allow_international")),
                   allow_premium=bool(get("dial_allow_premium")),
                   validate_e164=bool(get("dial_validate_e164")),
                   extension_max_digits=int(get("dial_extension_max_digits")),
                   allow_sip_uris=bool(get("dial_allow_sip_uris")),
                   allowed_patterns=tuple(re.compile(p) for p in _csv(get("dial_allowed_patterns"))),
                   allowed_gateways=frozenset(_csv(get("dial_allowed_gateways"))))

    # ------------------------------------------------------------------ checking
    def check(self, request: CallRequest) -> None:
        """Raise :class:`DialRefused` if ``request`` may not be placed (logged once, number masked)."""
        try:
            self._check(request)
        except DialRefused as exc:
            log.warning("dial policy refused a call to %s: %s", masked(request.to), exc,
                        extra={"to": masked(request.to), "field": exc.field})
            raise

    def _check(self, req: CallRequest) -> None:
        to = req.to
        if self.allowed_patterns and not any(p.fullmatch(to) for p in self.allowed_patterns):
            raise DialRefused("to", "is not one of the destinations this deployment may dial (DIAL_ALLOWED_PATTERNS)")
        if req.gateway is not None and self.allowed_gateways and req.gateway not in self.allowed_gateways:
            raise DialRefused("gateway", f"{req.gateway!r} is not an allowed gateway (DIAL_ALLOWED_GATEWAYS)")
        if to.lower().startswith(("sip:", "sips:")):
            if not self.allow_sip_uris:
                raise DialRefused("to", "SIP URIs may not be dialed (DIAL_ALLOW_SIP_URIS is off)")
            return
        if not to.startswith("+") and len(to) <= self.extension_max_digits:
            return  # an internal extension or feature code: the dialplan decides
        if "*" in to or "#" in to:
            raise DialRefused("to", "a phone number may contain only digits (and a leading +)")
        self._check_number(to)

    def _check_number(self, to: str) -> None:
        try:
            num = phonenumbers.parse(to, None if to.startswith("+") else self.default_region)
        except NumberParseException:
            num = None
        valid = num is not None and phonenumbers.is_valid_number(num)
        if self.validate_e164 and not valid:
            raise DialRefused("to", f"is not a valid phone number (E.164, or national in {self.default_region})")
        if num is not None and valid and not self.allow_premium \
                and phonenumbers.number_type(num) in PREMIUM_TYPES:
            raise DialRefused("to", "is a premium-rate or shared-cost number (DIAL_ALLOW_PREMIUM is off)")
        if not self.allow_international and not self._domestic(num, valid):
            raise DialRefused("to", f"is outside the home regions {', '.join(sorted(self.home_regions))} "
                                    "(DIAL_ALLOW_INTERNATIONAL is off)")

    def _domestic(self, num: Optional[phonenumbers.PhoneNumber], valid: bool) -> bool:
        if num is None:
            return False
        if valid:  # +1 876 is Jamaica, not the US: a valid number's region decides
            return phonenumbers.region_code_for_number(num) in self.home_regions
        return num.country_code in self._home_codes  # unknown to phonenumbers: its country code decides
