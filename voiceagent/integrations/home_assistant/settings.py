"""The Home Assistant plugin's settings (``HA_*``): where it is, the token, which way in, and what it may touch.

The mode is ``HA_MODE`` for every line, with ``HA_PROFILE_MODES`` (``kitchen=direct,frontdesk=assist``) as the
per-profile override: profiles are strict (unknown keys are errors) and a plugin keeps its settings to itself.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, FrozenSet, Literal

from pydantic import Field, SecretStr, field_validator

from voiceagent.config.base import check_url
from voiceagent.dialog.tool_support import ToolSettings

Mode = Literal["assist", "direct"]


def _names(text: str) -> FrozenSet[str]:
    return frozenset(p.strip().lower() for p in text.split(",") if p.strip())


class HomeAssistantSettings(ToolSettings):
    """Home Assistant over its REST API: a long-lived access token (profile page → Security)."""

    title: ClassVar[str] = "Home Assistant"

    ha_url: str = Field(default="", description="Home Assistant base URL (http://homeassistant.local:8123); empty: "
                        "the home tools are not offered.")
    ha_token: SecretStr = Field(default=SecretStr(""), description="Long-lived access token of a Home Assistant user.")
    ha_timeout: float = Field(default=5.0, gt=0, le=15, description="Seconds to wait for each Home Assistant answer.")
    ha_mode: Mode = Field(default="assist", description="assist: the caller's words go to Assist (only entities "
                          "exposed to Assist); direct: states and services over REST, within the allowlist.")
    ha_profile_modes: str = Field(default="", description="Per-profile mode override, 'profile=mode' comma "
                                  "separated (kitchen=direct,frontdesk=assist).")
    ha_agent_id: str = Field(default="", description="Assist conversation agent id (empty: the default agent).")
    ha_language: str = Field(default="", description="Language sent to Assist (empty: the profile's language).")
    ha_allow_entities: str = Field(default="", description="Direct mode: entity ids that may be controlled and "
                                   "read, comma separated.")
    ha_allow_domains: str = Field(default="", description="Direct mode: whole domains allowed (light,switch,climate).")
    ha_allow_areas: str = Field(default="", description="Direct mode: areas whose entities are allowed (area ids or "
                                "names: kitchen,garage).")
    ha_allow_services: str = Field(default="", description="Direct mode: if set, only these services "
                                   "(lock.lock,light.turn_on); empty: every service the tool knows.")
    ha_confirm_domains: str = Field(default="lock,alarm_control_panel,cover", description="Domains whose actions "
                                    "need the caller's spoken or keypad confirmation (cover includes garage doors).")
    ha_pin: SecretStr = Field(default=SecretStr(""), description="If set, a confirmed action also needs this PIN "
                              "entered on the keypad (digits, then #).")
    ha_confirm_seconds: float = Field(default=30.0, gt=0, le=300, description="How long a confirmation question "
                                      "stays open.")
    ha_cache_seconds: float = Field(default=10.0, ge=0, le=600, description="How long the entity list (names, "
                                    "areas) is reused before it is fetched again.")

    def ready(self) -> bool:
        """Without a URL and a token the home tools are neither offered nor promised."""
        return bool(self.ha_url and self.ha_token.get_secret_value())

    @field_validator("ha_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v.endswith("/api"):
            v = v[:-4]
        return check_url(v, ("http", "https"), "http://homeassistant.local:8123")

    @field_validator("ha_pin")
    @classmethod
    def _pin(cls, v: SecretStr) -> SecretStr:
        pin = v.get_secret_value().strip()
        if pin and (not pin.isdigit() or not 3 <= len(pin) <= 12):
            raise ValueError("a PIN is 3 to 12 digits")
        return SecretStr(pin)

    @field_validator("ha_profile_modes")
    @classmethod
    def _modes(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            name, _, mode = part.partition("=")
            if not name.strip() or mode.strip() not in ("assist", "direct"):
                raise ValueError(f"expected profile=assist or profile=direct, got {part!r}")
        return v

    def mode_for(self, profile: Any) -> Mode:
        """The profile's mode: its ``HA_PROFILE_MODES`` entry, else ``HA_MODE``."""
        name = getattr(profile, "name", None)
        overrides: Dict[str, str] = {}
        for part in filter(None, (p.strip() for p in self.ha_profile_modes.split(","))):
            key, _, mode = part.partition("=")
            overrides[key.strip()] = mode.strip()
        mode = overrides.get(name or "", self.ha_mode)
        return "direct" if mode == "direct" else "assist"

    @property
    def allowed_entities(self) -> FrozenSet[str]:
        return _names(self.ha_allow_entities)

    @property
    def allowed_domains(self) -> FrozenSet[str]:
        return _names(self.ha_allow_domains)

    @property
    def allowed_areas(self) -> FrozenSet[str]:
        return _names(self.ha_allow_areas)

    @property
    def allowed_services(self) -> FrozenSet[str]:
        return _names(self.ha_allow_services)

    @property
    def confirm_domains(self) -> FrozenSet[str]:
        return _names(self.ha_confirm_domains)
