"""Reading the home: one entity's state as a sentence ("The Garage Door is closed."), and for a weather entity
today's forecast from ``weather.get_forecasts`` (a service that returns data: ``?return_response``)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from voiceagent.dialog.tool_support import ToolReply

from .client import HaClient, State, Unavailable
from .control import _fail, _pick, allowed
from .entities import spoken_name, state_words
from .settings import HomeAssistantSettings


def status(name: str, area: str, ctx: Any, s: HomeAssistantSettings) -> ToolReply:
    client = HaClient(s, ctx.http)
    try:
        picked = _pick(client, name, area, None)
        if isinstance(picked, ToolReply):
            return picked
        if not allowed(picked, s):
            what = spoken_name(picked)
            return ToolReply(text=f"Not read: {picked.entity_id} is not on the Home Assistant allowlist.",
                             speak=f"Sorry, I'm not allowed to tell you about {what} by phone.",
                             data={"refused": picked.entity_id, "mode": "direct"})
        st = client.state(picked.entity_id)
        speak = state_words(st)
        data: Dict[str, Any] = {"mode": "direct", "entity_id": st.entity_id, "state": st.state}
        if st.domain == "weather":
            extra = forecast_words(client, st)
            if extra:
                speak += " " + extra
                data["forecast"] = extra
    except Unavailable as exc:
        return _fail(exc)
    return ToolReply(text=speak, speak=speak, data=data)


def forecast_words(client: HaClient, st: State) -> Optional[str]:
    """'Today: sunny, a high of 75 and a low of 58 degrees, 10 percent chance of rain.' (None without one)."""
    try:
        answer = client.call_service("weather", "get_forecasts", {"entity_id": st.entity_id, "type": "daily"},
                                     return_response=True)
    except Unavailable:
        return None
    resp = answer.get("service_response") if isinstance(answer, dict) else None
    days = ((resp or {}).get(st.entity_id) or {}).get("forecast") if isinstance(resp, dict) else None
    if not isinstance(days, list) or not days or not isinstance(days[0], dict):
        return None
    day = days[0]
    parts = [str(day.get("condition") or "").replace("partlycloudy", "partly cloudy").replace("-", " ")]
    if day.get("temperature") is not None:
        high = f"a high of {round(float(day['temperature']))}"
        if day.get("templow") is not None:
            high += f" and a low of {round(float(day['templow']))}"
        parts.append(high + " degrees")
    if day.get("precipitation_probability") is not None:
        parts.append(f"{round(float(day['precipitation_probability']))} percent chance of rain")
    return "Today: " + ", ".join(p for p in parts if p) + "."
