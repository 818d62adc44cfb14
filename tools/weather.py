"""Built-in tool: the current weather from a WeatherFlow Tempest station, said as one natural report.

The station's REST observations endpoint (``GET {base}/observations/station/{id}?token=...``) answers
with the latest ``obs[0]`` in SI units (degrees Celsius, metres per second, millimetres, kilometres)
whatever the station's display units are; this tool converts to the profile's choice itself.

The report is a :class:`ToolReply` whose ``speak`` is said word for word (a small LLM paraphrasing
numbers gets them wrong) and whose ``data`` keeps the numbers for the call record.  Every failure
(not configured, unreachable, an error answer, a timeout, junk) is a clear spoken sentence too: the
call goes on.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from typing import Any, ClassVar, Dict, List, Literal, Optional
from zoneinfo import ZoneInfo

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from voiceagent.config.base import check_url
from voiceagent.dialog.tool_support import ToolReply, ToolSettings
from voiceagent.dialog.tools import NoArgs, ToolContext, tool

log = logging.getLogger(__name__)

CALM_MPS = 0.9            # under ~2 mph the wind is "calm"
GUST_OVER_AVG_MPS = 4.5   # gusts ~10 mph above the average wind are worth a mention...
GUST_STRONG_MPS = 9.0     # ...and so is any gust of 20 mph or more
FOG_SPREAD_C = 1.0        # air temperature within a degree of the dew point...
FOG_HUMIDITY = 97.0       # ...or humidity this high: fog (with little wind)
NEARBY_LIGHTNING_KM = 16  # ten miles
UV_HIGH = 6.0
STALE_SECONDS = 3 * 3600  # an older reading is announced with its day


class TempestSettings(ToolSettings):
    """The station the weather tool reads (a personal-use token from tempestwx.com, Settings → Data
    Authorizations)."""

    title: ClassVar[str] = "Weather (WeatherFlow Tempest)"

    tempest_station_id: str = Field(default="", description="Tempest station id (digits); empty: the weather tool "
                                    "says it is not set up.")
    tempest_token: SecretStr = Field(default=SecretStr(""), description="Tempest personal access token.")
    tempest_base_url: str = Field(default="https://swd.weatherflow.com/swd/rest",
                                  description="Tempest REST API base URL (tests point it at a local server).")
    tempest_units: Literal["imperial", "metric"] = Field(default="imperial",
                                                         description="Units the report is spoken in.")
    tempest_location_name: str = Field(default="", max_length=60, description="Place name said in the report "
                                       "instead of the station's public name.")
    tempest_timeout: float = Field(default=4.0, gt=0, le=10, description="Seconds to wait for the station's answer.")

    def ready(self) -> bool:
        """Without a station and a token the tool is not offered (the assistant says it cannot tell the weather)."""
        return bool(self.tempest_station_id and self.tempest_token.get_secret_value())

    @field_validator("tempest_station_id")
    @classmethod
    def _digits(cls, v: str) -> str:
        v = v.strip()
        if v and not v.isdigit():
            raise ValueError(f"a station id is digits, got {v!r}")
        return v

    @field_validator("tempest_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v.strip().rstrip("/"), ("http", "https"), "https://swd.weatherflow.com/swd/rest")


# --- the station's answer ---------------------------------------------------------------------------

class Observation(BaseModel):
    """``obs[0]``: every reading may be null (a sensor out); the time may not."""

    model_config = ConfigDict(extra="ignore")
    timestamp: int = Field(gt=0)
    air_temperature: Optional[float] = None
    feels_like: Optional[float] = None
    dew_point: Optional[float] = None
    relative_humidity: Optional[float] = Field(default=None, ge=0, le=100)
    wind_avg: Optional[float] = Field(default=None, ge=0)
    wind_gust: Optional[float] = Field(default=None, ge=0)
    wind_direction: Optional[float] = None
    precip: Optional[float] = Field(default=None, ge=0)          # the last minute's, mm
    precip_accum_local_day: Optional[float] = Field(default=None, ge=0)
    precip_accum_local_yesterday: Optional[float] = Field(default=None, ge=0)
    lightning_strike_count_last_1hr: Optional[int] = Field(default=None, ge=0)
    lightning_strike_last_distance: Optional[float] = Field(default=None, ge=0)
    uv: Optional[float] = Field(default=None, ge=0)


class Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status_code: int = 0
    status_message: str = ""


class StationAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    station_name: str = ""
    public_name: str = ""
    status: Status = Field(default_factory=Status)
    obs: Optional[List[Observation]] = None


class Unavailable(Exception):
    """The report cannot be made; the message is what the caller hears."""


NOT_SET_UP = "Sorry, the weather station is not set up on this line, so I can't give you the weather."
UNREACHABLE = "Sorry, I can't reach the weather station right now. Please try again later."
NO_READINGS = "Sorry, the weather station has no current readings right now."


def fetch(settings: TempestSettings, ctx: ToolContext) -> StationAnswer:
    url = f"{settings.tempest_base_url}/observations/station/{settings.tempest_station_id}"
    try:
        r = ctx.http.get(url, params={"token": settings.tempest_token.get_secret_value()},
                         timeout=settings.tempest_timeout, headers={"Accept": "application/json"})
    except requests.Timeout:
        raise Unavailable(UNREACHABLE, "the station did not answer in time") from None
    except requests.RequestException as exc:
        raise Unavailable(UNREACHABLE, f"cannot reach the station: {type(exc).__name__}") from None
    if r.status_code in (401, 403):
        raise Unavailable("Sorry, the weather station refused my access, so I can't give you the weather.",
                          f"the station answered HTTP {r.status_code}: the token is not accepted")
    if r.status_code != 200:
        raise Unavailable(UNREACHABLE, f"the station answered HTTP {r.status_code}")
    try:
        answer = StationAnswer.model_validate_json(r.content)
    except ValidationError as exc:
        raise Unavailable(UNREACHABLE, f"the station's answer is not an observation ({exc.error_count()} "
                          "problem(s))") from None
    if answer.status.status_code != 0:
        raise Unavailable(UNREACHABLE, f"the station reported an error: {answer.status.status_message[:100]}")
    if not answer.obs or answer.obs[0].air_temperature is None:
        raise Unavailable(NO_READINGS, "the station has no current observation")
    return answer


# --- words -------------------------------------------------------------------------------------------

_POINTS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]


def compass(degrees: float) -> str:
    return _POINTS[int(((degrees % 360) + 22.5) // 45) % 8]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


_QUARTERS = {0.25: "a quarter", 0.5: "half", 0.75: "three quarters"}
_COUNT = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def rain_words(mm: float, units: str) -> str:
    """An amount of rain as a person says it: 'half an inch', 'an inch and a quarter', '4 millimeters'."""
    if units == "metric":
        if mm < 0.2:
            return "a trace"
        return _mm_words(mm)
    inches = mm / 25.4
    if inches < 0.01:
        return "a trace"
    if inches < 0.06:
        return "a few hundredths of an inch"
    if inches < 0.125:
        return "about a tenth of an inch"
    q = round(inches * 4) / 4
    whole, frac = int(q), q - int(q)
    if whole == 0:
        return f"{_QUARTERS[frac]} of an inch" if frac != 0.5 else "half an inch"
    if whole > 10:
        return f"{whole} inches"
    head = "an inch" if whole == 1 else f"{_COUNT[whole]} inches"
    if not frac:
        return head
    if whole == 1:
        return f"an inch and {'a half' if frac == 0.5 else _QUARTERS[frac]}"
    return f"{_COUNT[whole]} and {'a half' if frac == 0.5 else _QUARTERS[frac]} inches"


def _mm_words(mm: float) -> str:
    v = round(mm, 1) if mm < 10 else float(round(mm))
    text = f"{v:g}"
    return f"{text} millimeter" + ("" if text == "1" else "s")


def clock_words(at: datetime) -> str:
    """'9:30 pm' (the speech normaliser reads it 'nine thirty p.m.')."""
    return f"{at.hour % 12 or 12}:{at.minute:02d} {'am' if at.hour < 12 else 'pm'}"


def report(answer: StationAnswer, settings: TempestSettings, ctx: ToolContext) -> ToolReply:
    ob = answer.obs[0]  # type: ignore[index]  # fetch() checked it
    metric = settings.tempest_units == "metric"
    zone = ZoneInfo(ctx.timezone)
    at = datetime.fromtimestamp(ob.timestamp, timezone.utc).astimezone(zone)
    now = ctx.clock.now().astimezone(zone)

    def temp(c: float) -> int:
        return round(c if metric else c * 9 / 5 + 32)

    def speed(mps: float) -> int:
        return round(mps * 3.6 if metric else mps * 2.23694)

    def distance(km: float) -> int:
        return round(km if metric else km * 0.621371)

    speed_unit = "kilometers per hour" if metric else "miles per hour"
    dist_unit = "kilometers" if metric else "miles"
    place = settings.tempest_location_name.strip() or answer.public_name.strip() or answer.station_name.strip()
    when = clock_words(at)
    if at.date() != now.date() or (now - at).total_seconds() > STALE_SECONDS:
        when += f" on {at.strftime('%A')}"

    air = ob.air_temperature if ob.air_temperature is not None else math.nan
    wind = ob.wind_avg or 0.0
    foggy = wind < 3.0 and (
        (ob.dew_point is not None and air - ob.dew_point <= FOG_SPREAD_C)
        or (ob.relative_humidity is not None and ob.relative_humidity >= FOG_HUMIDITY))
    raining = (ob.precip or 0) > 0
    sky = " and raining" if raining else (" with foggy conditions" if foggy else "")
    lead = f"At {place}, as of {when}" if place else f"As of {when}"
    parts = [f"{lead}, it's {_plural(temp(air), 'degree', 'degrees')}{sky}."]
    if ob.feels_like is not None and abs(temp(ob.feels_like) - temp(air)) >= (3 if metric else 5):
        parts[0] = parts[0][:-1] + f", feeling like {temp(ob.feels_like)}."

    if wind < CALM_MPS:
        parts.append("The wind is calm.")
    else:
        origin = f" from the {compass(ob.wind_direction)}" if ob.wind_direction is not None else ""
        line = f"Wind{origin} at {speed(wind)} {speed_unit}"
        gust = ob.wind_gust or 0.0
        if gust >= wind + GUST_OVER_AVG_MPS or gust >= GUST_STRONG_MPS:
            line += f", gusting to {speed(gust)}"
        parts.append(line + ".")

    units = settings.tempest_units
    today, yesterday = ob.precip_accum_local_day or 0.0, ob.precip_accum_local_yesterday or 0.0
    if today >= 0.1:  # the rain gauge's noise floor
        parts.append(f"So far today there's been {rain_words(today, units)} of rain.")
    if yesterday >= 0.1:
        parts.append(f"Yesterday saw {rain_words(yesterday, units)} of rain.")

    strikes = ob.lightning_strike_count_last_1hr or 0
    if strikes:
        line = f"There's been lightning: {_plural(strikes, 'strike', 'strikes')} in the last hour"
        if ob.lightning_strike_last_distance is not None:
            near = " nearby," if ob.lightning_strike_last_distance <= NEARBY_LIGHTNING_KM else ","
            line += f"{near} the latest about {distance(ob.lightning_strike_last_distance)} {dist_unit} away"
        parts.append(line + ".")

    if ob.uv is not None and ob.uv >= UV_HIGH:
        level = "very high" if ob.uv >= 8 else "high"
        parts.append(f"The UV index is {level}, at {round(ob.uv)}: protect your skin if you go out.")

    speak = " ".join(parts)
    data: Dict[str, Any] = {
        "station": place, "observed_at": at.isoformat(timespec="seconds"), "units": units,
        "temperature": temp(air), "feels_like": temp(ob.feels_like) if ob.feels_like is not None else None,
        "humidity": ob.relative_humidity, "wind": speed(wind),
        "gust": speed(ob.wind_gust) if ob.wind_gust is not None else None, "wind_direction": ob.wind_direction,
        "rain_today_mm": round(today, 2), "rain_yesterday_mm": round(yesterday, 2), "lightning_last_hour": strikes,
        "lightning_distance": (distance(ob.lightning_strike_last_distance)
                               if ob.lightning_strike_last_distance is not None and strikes else None),
        "uv": ob.uv, "foggy": foggy,
    }
    return ToolReply(text=speak, speak=speak, data=data)


@tool("get_weather", capability="tell the current weather measured at the local weather station",
      settings=TempestSettings)
def get_weather(args: NoArgs, ctx: ToolContext) -> ToolReply:
    """Get the current weather (temperature, wind, rain, lightning, UV) from the local weather station.
    Use it when the caller asks about the weather, temperature, wind or rain right now. The report is
    read to the caller as is: do not repeat it."""
    settings = ctx.settings if isinstance(ctx.settings, TempestSettings) else TempestSettings()
    if not settings.tempest_station_id or not settings.tempest_token.get_secret_value():
        return ToolReply(text="The weather station is not configured; nothing was looked up.", speak=NOT_SET_UP,
                         data={"error": "not configured: set TEMPEST_STATION_ID and TEMPEST_TOKEN"})
    try:
        answer = fetch(settings, ctx)
    except Unavailable as exc:
        said, why = exc.args
        log.warning("weather: %s", why)
        return ToolReply(text=f"No weather report: {why}.", speak=said, data={"error": why})
    return report(answer, settings, ctx)
