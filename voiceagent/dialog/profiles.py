"""Assistant profiles: who the assistant is on a given line.

One file (PROFILES_FILE, YAML or JSON) holds every profile; an inbound call picks the profile whose
``numbers`` contain the dialed number, an outbound call names its profile, anything else gets the
default.  Without a file the built-in default profile is used.  Validation is strict (unknown keys
are errors, so a typo is not silently ignored) and errors name the field, e.g.
``profiles[1].timezone: unknown time zone 'Europe/Pari'``.
"""
from __future__ import annotations

import json
import logging
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..zones import iana_zone

log = logging.getLogger(__name__)


class ProfileError(ValueError):
    """The profiles (or phrases) file is invalid; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Phrases(_Strict):
    thinking: List[str] = Field(default_factory=lambda: ["One moment.", "Let me check."],
                                description="Said before slow tools.")
    apology: str = Field(default="Sorry, I'm having trouble answering right now. Could you say that again?",
                         description="Said when the LLM fails.")
    goodbye: str = Field(default="Thank you for calling. Goodbye!", description="Said before the assistant hangs up.")
    failure_goodbye: str = Field(default="I'm sorry, I can't help right now. Please call again later. Goodbye.",
                                 description="Said before hanging up after repeated failures.")
    transfer: str = Field(default="Please hold while I transfer your call.", description="Said before a transfer.")
    still_there: str = Field(default="Are you still there?", description="Said after IDLE_REPROMPT_S of silence.")

    def pick_thinking(self, rng: Optional[random.Random] = None) -> str:
        """One of the thinking phrases (from ``rng`` when given, else the ``random`` module's)."""
        if not self.thinking:
            return ""
        return rng.choice(self.thinking) if rng is not None else random.choice(self.thinking)


class DtmfAction(_Strict):
    """What a keypad digit does.  In the file: ``{"action": "transfer", "target": "operator"}`` or the
    short forms ``"transfer:operator"``, ``"hangup"``, ``"say:Our hours are nine to five."``,
    ``"llm:The caller wants the opening hours."``."""

    action: Literal["transfer", "hangup", "say", "llm"]
    target: Optional[str] = None  # transfer: a name in transfer_targets or a raw destination
    text: Optional[str] = None  # say: spoken; llm: sent to the LLM as the caller's message

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        if isinstance(v, str):
            action, _, rest = v.partition(":")
            action = action.strip()
            if action == "transfer":
                return {"action": action, "target": rest.strip() or None}
            if action in ("say", "llm"):
                return {"action": action, "text": rest.strip()}
            return {"action": action}
        return v

    @model_validator(mode="after")
    def _complete(self) -> "DtmfAction":
        if self.action in ("say", "llm") and not self.text:
            raise ValueError(f"action '{self.action}' needs a text")
        return self


# Built from what is enabled ({capabilities} lists what the line's tools do), so the assistant knows
# what it can do and says so plainly when it cannot, instead of inventing a forecast or promising a timer.
_DEFAULT_PROMPT = (
    "You are a friendly, concise phone assistant. Answer in one to three short spoken sentences; "
    "no lists, no markdown, no emoji.\n"
    "With your tools you can: {capabilities}. That is all you can do. You have no access to the internet, "
    "news, weather, e-mail, messages, calendars, timers, reminders, bookings or orders unless a tool above "
    "does it.\n"
    "When the caller asks for something you cannot do, say plainly in one sentence that you cannot do it, "
    "naming what was asked (\"Sorry, I can't <what the caller asked for>.\"), then say what you can do. "
    "Never say you did, will do or can do something unless a tool does it, never make up facts such as "
    "weather, prices, news or appointments, and never mention tools or functions to the caller.\n"
    "When the caller says goodbye, say goodbye and use hang_up."
)
# Per-call facts go in a second system message: the first one (prompt + tool definitions) then stays
# identical across calls, so an LLM server's prefix cache (llama.cpp, vLLM) serves it warm.
_DEFAULT_CONTEXT = "It is {local_time} on {weekday}, {date} ({timezone}). The caller's number is {caller}."

PLACEHOLDERS = ("local_time", "date", "weekday", "timezone", "caller", "callee", "profile", "capabilities")


#: What a profile offers unless it lists its own ``tools``: every built-in (tools/).  One that cannot work on
#: a line (a transfer without targets, the weather without a station) is neither offered nor promised.
DEFAULT_TOOLS = ("get_datetime", "get_weather", "calculate", "set_timer", "schedule_callback", "schedule_briefing",
                 "list_scheduled", "cancel_scheduled", "tell_joke", "repeat_after_me", "hang_up", "transfer_call",
                 "home_assistant", "home_status", "home_control")


class Profile(_Strict):
    name: str = Field(min_length=1)
    prompt: str = Field(default=_DEFAULT_PROMPT, min_length=1,
                        description="System prompt; placeholders: " + ", ".join("{%s}" % p for p in PLACEHOLDERS))
    context: str = Field(default=_DEFAULT_CONTEXT,
                         description="Per-call facts sent as a second system message (same placeholders; "
                                     "empty = none). Keeping the time out of `prompt` keeps the prompt cacheable.")
    greeting: str = "Hello! How can I help you?"
    voice: str = Field(default="", description="TTS voice name (empty = the worker's default voice).")
    language: str = "en"
    timezone: str = "UTC"
    tools: List[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    transfer_targets: Dict[str, str] = Field(default_factory=dict, description="Name → destination (extension or "
                                                                             "dial string); the first is the default.")
    dtmf: Dict[str, DtmfAction] = Field(default_factory=dict)
    phrases: Phrases = Field(default_factory=Phrases)
    numbers: List[str] = Field(default_factory=list, description="Dialed numbers (inbound) this profile answers; "
                                                                 "a trailing '*' matches a prefix.")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return iana_zone(v, "Europe/Paris")

    @field_validator("dtmf")
    @classmethod
    def _digits(cls, v: Dict[str, DtmfAction]) -> Dict[str, DtmfAction]:
        for digit in v:
            if digit not in "0123456789*#ABCD" or len(digit) != 1:
                raise ValueError(f"DTMF key {digit!r} is not one of 0-9 * # A-D")
        return v

    @field_validator("prompt", "context")
    @classmethod
    def _placeholders(cls, v: str) -> str:
        unknown = sorted(set(re.findall(r"\{(\w+)\}", v)) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join('{%s}' % u for u in unknown)}; "
                             f"known: {', '.join(PLACEHOLDERS)}")
        return v

    @model_validator(mode="after")
    def _dtmf_targets(self) -> "Profile":
        for digit, act in self.dtmf.items():
            if act.action == "transfer" and not act.target and not self.transfer_targets:
                raise ValueError(f"dtmf '{digit}' transfers but no target is given and transfer_targets is empty")
        return self

    def transfer_destination(self, target: Optional[str]) -> Optional[str]:
        """A target name from transfer_targets (or a raw destination) → the dial destination."""
        if not target:
            return next(iter(self.transfer_targets.values()), None)
        return self.transfer_targets.get(target, target)

    def render_prompt(self, now: datetime, caller: str = "", callee: str = "", *, capabilities: str = "") -> str:
        return self._render(self.prompt, now, caller, callee, capabilities)

    def render_context(self, now: datetime, caller: str = "", callee: str = "") -> str:
        return self._render(self.context, now, caller, callee)

    def _render(self, template: str, now: datetime, caller: str, callee: str, capabilities: str = "") -> str:
        local = now.astimezone(ZoneInfo(self.timezone))
        values = {
            "local_time": local.strftime("%I:%M %p").lstrip("0"),
            "date": local.strftime("%B %d, %Y").replace(" 0", " "),
            "weekday": local.strftime("%A"),
            "timezone": self.timezone,
            "caller": caller or "unknown",
            "callee": callee or "unknown",
            "profile": self.name,
            "capabilities": capabilities or "only talk: you have no tools",
        }
        # Only known placeholders are replaced: other braces in a prompt stay as written.
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


DEFAULT_PROFILE = Profile(name="default")


def _digits(number: str) -> str:
    return re.sub(r"[^\d*]", "", number or "")


class ProfileSet(_Strict):
    default: Optional[str] = Field(default=None, description="Name of the fallback profile (default: the first).")
    profiles: List[Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "ProfileSet":
        seen: Dict[str, int] = {}
        for i, p in enumerate(self.profiles):
            if p.name in seen:
                raise ValueError(f"profiles[{i}].name: duplicate profile name {p.name!r} "
                                 f"(also profiles[{seen[p.name]}])")
            seen[p.name] = i
        if self.default is not None and self.default not in seen:
            raise ValueError(f"default: no profile named {self.default!r} (have: {', '.join(seen)})")
        owners: Dict[str, str] = {}
        for p in self.profiles:
            for n in p.numbers:
                key = _digits(n)
                if key in owners:
                    raise ValueError(f"number {n!r} is claimed by profiles {owners[key]!r} and {p.name!r}")
                owners[key] = p.name
        return self

    @property
    def default_profile(self) -> Profile:
        return self.named(self.default) if self.default else self.profiles[0]

    def named(self, name: Optional[str]) -> Profile:
        """For outbound calls; an unknown name falls back to the default (logged)."""
        if not name:
            return self.default_profile
        for p in self.profiles:
            if p.name == name:
                return p
        log.warning("no profile named %r, using the default %r", name, (self.default or self.profiles[0].name))
        return self.default_profile

    def for_number(self, dialed: Optional[str]) -> Profile:
        """For inbound calls: exact digits first, then the longest matching prefix pattern."""
        d = _digits(dialed or "")
        best, best_len = None, -1
        for p in self.profiles:
            for n in p.numbers:
                pat = _digits(n)
                if pat.endswith("*"):
                    stem = pat.rstrip("*")
                    if d.startswith(stem) and len(stem) > best_len:
                        best, best_len = p, len(stem)
                elif pat == d or (pat.lstrip("0") and pat.lstrip("0") == d.lstrip("0")):
                    return p
        return best or self.default_profile

    def select(self, dialed: Optional[str] = None, name: Optional[str] = None) -> Profile:
        """A named profile (outbound), else by dialed number (pass it for inbound calls only), else the default."""
        if name:
            return self.named(name)
        return self.for_number(dialed) if dialed else self.default_profile


def _read_data(path: Path) -> Any:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(raw)
        return json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError (below) both say where
        raise ProfileError(f"{path}: not valid JSON: {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise ProfileError(f"{path}: not valid YAML: {exc}") from None
        raise


def _format_errors(path: Path, exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ""
        for item in e["loc"]:
            loc += f"[{item}]" if isinstance(item, int) else (f".{item}" if loc else str(item))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc or '(top level)'}: {msg}")
    return f"{path}: " + "; ".join(parts)


def load_phrases(path: Union[str, Path]) -> Dict[str, Any]:
    path = Path(path)
    data = _read_data(path)
    try:
        return Phrases.model_validate(data or {}).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise ProfileError(_format_errors(path, exc)) from None


def load_profiles(path: Any = None, phrases_path: Union[str, Path, None] = None) -> ProfileSet:
    """Read and validate a profiles file; no path → the built-in default profile only.

    ``path`` may also be the Settings (PROFILES_FILE and PHRASES_FILE are used).
    The file is either ``{"default": ..., "profiles": [...]}`` or a bare list of profiles.
    Phrases from ``phrases_path`` are the defaults for every profile that does not set its own.
    """
    if hasattr(path, "profiles_file"):
        return load_profiles(path.profiles_file or None, path.phrases_file or None)
    base_phrases = load_phrases(phrases_path) if phrases_path else {}
    if not path:
        return ProfileSet(profiles=[Profile(name="default", phrases=Phrases(**base_phrases))])
    path = Path(path)
    data = _read_data(path)
    if isinstance(data, list):
        data = {"profiles": data}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping with 'profiles' (or a list of profiles), "
                           f"got {type(data).__name__}")
    if base_phrases and isinstance(data.get("profiles"), list):
        for p in data["profiles"]:
            if isinstance(p, dict) and isinstance(p.get("phrases", {}), dict):
                p["phrases"] = {**base_phrases, **p.get("phrases", {})}
    try:
        return ProfileSet.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_format_errors(path, exc)) from None


def profiles_from_settings(s) -> ProfileSet:
    return load_profiles(s)
