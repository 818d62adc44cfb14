"""Built-in tool: the current date and time where the caller's profile lives, or in a named zone or city."""
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, Field, field_validator

from voiceagent.dialog.tools import ToolContext, tool

# Cities a caller names more often than their zone; anything else is an IANA name ("Europe/Lisbon").
CITIES = {
    "new york": "America/New_York", "boston": "America/New_York", "washington": "America/New_York",
    "miami": "America/New_York", "toronto": "America/Toronto", "chicago": "America/Chicago",
    "dallas": "America/Chicago", "houston": "America/Chicago", "denver": "America/Denver",
    "phoenix": "America/Phoenix", "los angeles": "America/Los_Angeles", "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles", "vancouver": "America/Vancouver", "anchorage": "America/Anchorage",
    "honolulu": "Pacific/Honolulu", "mexico city": "America/Mexico_City", "sao paulo": "America/Sao_Paulo",
    "london": "Europe/London", "dublin": "Europe/Dublin", "lisbon": "Europe/Lisbon", "paris": "Europe/Paris",
    "berlin": "Europe/Berlin", "madrid": "Europe/Madrid", "rome": "Europe/Rome", "amsterdam": "Europe/Amsterdam",
    "athens": "Europe/Athens", "moscow": "Europe/Moscow", "istanbul": "Europe/Istanbul", "dubai": "Asia/Dubai",
    "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata", "singapore": "Asia/Singapore", "hong kong": "Asia/Hong_Kong",
    "beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai", "tokyo": "Asia/Tokyo", "seoul": "Asia/Seoul",
    "sydney": "Australia/Sydney", "melbourne": "Australia/Melbourne", "auckland": "Pacific/Auckland",
    "johannesburg": "Africa/Johannesburg", "cairo": "Africa/Cairo", "lagos": "Africa/Lagos", "utc": "UTC",
}
_ZONES = {z.lower(): z for z in available_timezones()}


class DateTimeArgs(BaseModel):
    timezone: Optional[str] = Field(default=None, max_length=64, description=(
        "Only when the caller asks about another place: an IANA time zone ('Europe/Paris') or a major city "
        "('Tokyo'). Omit it for the local time."))

    @field_validator("timezone")
    @classmethod
    def _known(cls, v: Optional[str]) -> Optional[str]:
        if v is None or not v.strip():
            return None
        key = " ".join(v.strip().lower().replace("_", " ").split())
        zone = CITIES.get(key) or _ZONES.get(v.strip().lower()) or _ZONES.get(key.replace(" ", "_"))
        if zone is None:
            raise ValueError(f"unknown time zone or city {v.strip()[:64]!r}: give an IANA zone such as "
                             "'America/New_York' or a major city")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time zone {zone!r} is not installed on this system") from None
        return zone


@tool("get_datetime", capability="tell the current date, time and weekday, here or in another time zone or city")
def get_datetime(args: DateTimeArgs, ctx: ToolContext) -> dict:
    """Get the current local date, time and weekday, or those of another time zone or major city. Use it whenever
    the caller asks about the time or date."""
    zone = args.timezone or ctx.timezone
    now = ctx.clock.now().astimezone(ZoneInfo(zone))
    return {
        "date": now.strftime("%B %d, %Y").replace(" 0", " "),
        "time": now.strftime("%I:%M %p").lstrip("0"),
        "weekday": now.strftime("%A"),
        "timezone": zone,
        "iso": now.isoformat(timespec="seconds"),
    }
