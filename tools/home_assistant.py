"""Built-in tools: the home through Home Assistant, over the phone ("turn on the porch light", "is the garage
door closed?", "set the thermostat to 68").

Two ways in, per profile (``HA_MODE``, overridden per profile by ``HA_PROFILE_MODES``):

- ``assist`` (default): ``home_assistant`` hands the caller's words to Assist and its answer is spoken as is;
  only entities the user exposed to Assist are reachable (Home Assistant's own permission model);
- ``direct``: ``home_status`` reads a state and ``home_control`` calls a service, both within the operator's
  allowlist (``HA_ALLOW_ENTITIES``/``_DOMAINS``/``_AREAS``), locks, alarms and covers after a spoken or keypad
  confirmation (and a PIN when ``HA_PIN`` is set).

Only the tools of a line's mode are offered; none without ``HA_URL`` and ``HA_TOKEN``.  Every failure is a
spoken sentence and the call goes on.  The code is in ``voiceagent/integrations/home_assistant/``.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import ToolContext, tool
from voiceagent.integrations.home_assistant.assist import ask
from voiceagent.integrations.home_assistant.client import NOT_SET_UP, HaClient
from voiceagent.integrations.home_assistant.control import control
from voiceagent.integrations.home_assistant.settings import HomeAssistantSettings
from voiceagent.integrations.home_assistant.status import status


def _settings(ctx: ToolContext) -> HomeAssistantSettings:
    return ctx.settings if isinstance(ctx.settings, HomeAssistantSettings) else HomeAssistantSettings()


def _not_set_up() -> ToolReply:
    return ToolReply(text="Home Assistant is not configured; nothing was done.", speak=NOT_SET_UP,
                     data={"error": "not configured: set HA_URL and HA_TOKEN"})


def _in_mode(mode: str):
    def check(profile) -> bool:
        s = home_assistant.config
        return isinstance(s, HomeAssistantSettings) and s.mode_for(profile) == mode
    return check


class AssistArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request: str = Field(min_length=1, max_length=300, description="What the caller wants, in their words: "
                         "'turn on the porch light', 'is the garage door closed?'.")


@tool("home_assistant", capability="control the home and answer questions about it through Home Assistant "
      "(lights, locks, doors, thermostat, sensors)", settings=HomeAssistantSettings, available=_in_mode("assist"))
def home_assistant(args: AssistArgs, ctx: ToolContext) -> ToolReply:
    """Send the caller's request about their home (lights, switches, locks, doors, covers, thermostat,
    sensors, scenes) to Home Assistant. Use it for anything about the home. Home Assistant's answer is read
    to the caller as is: do not repeat it. Follow-ups in the same call continue the same conversation."""
    s = _settings(ctx)
    if not s.ready():
        return _not_set_up()
    language = s.ha_language or getattr(ctx.profile, "language", "") or "en"
    return ask(HaClient(s, ctx.http), ctx, args.request.strip(), language)


class StatusArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=80, description="The device as the caller named it: 'garage door', "
                      "'living room temperature', 'thermostat'.")
    area: str = Field(default="", max_length=60, description="The room or area if the caller said one.")


@tool("home_status", capability="tell the state of devices and sensors in the home (doors, lights, temperature)",
      settings=HomeAssistantSettings, available=_in_mode("direct"))
def home_status(args: StatusArgs, ctx: ToolContext) -> ToolReply:
    """Read the current state of one device or sensor in the home (is the garage door closed, is the porch light
    on, what is the temperature inside, the weather forecast). The answer is read to the caller as is."""
    s = _settings(ctx)
    if not s.ready():
        return _not_set_up()
    return status(args.name, args.area, ctx, s)


class ControlArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=80, description="The device as the caller named it: 'porch light', "
                      "'front door', 'thermostat'.")
    area: str = Field(default="", max_length=60, description="The room or area if the caller said one.")
    action: Literal["turn_on", "turn_off", "toggle", "lock", "unlock", "open", "close", "set_temperature",
                    "set_brightness", "arm_away", "arm_home", "disarm"] = Field(description="What to do.")
    value: Optional[float] = Field(default=None, ge=0, le=150, description="Degrees for set_temperature, percent "
                                   "for set_brightness.")
    confirm: Optional[bool] = Field(default=None, description="Only after the caller was asked 'Are you sure?': "
                                    "true when they said yes, false when they said no.")
    pin: Optional[str] = Field(default=None, max_length=12, description="A PIN the caller said, if asked for one.")


@tool("home_control", capability="control devices in the home (lights, switches, locks, doors, thermostat)",
      settings=HomeAssistantSettings, available=_in_mode("direct"))
def home_control(args: ControlArgs, ctx: ToolContext) -> ToolReply:
    """Control one device in the home: turn lights and switches on or off, lock or unlock, open or close doors
    and covers, set the thermostat or a light's brightness, arm or disarm the alarm. Some actions ask the
    caller to confirm first; then call again with confirm. The result is read to the caller as is."""
    s = _settings(ctx)
    if not s.ready():
        return _not_set_up()
    return control(args, ctx, s)
