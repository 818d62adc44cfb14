"""All sections composed into :class:`Settings`, and the loaders.

``Settings`` inherits every section, so ``settings.esl_command_timeout`` reads as it always did.
A process that reads only some concerns builds only those (:func:`load_sections`), so a bad
value of another concern's variable cannot stop it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional, Tuple, Type, TypeVar

from pydantic import Field, SecretStr, ValidationError

from .base import Section, config_error, is_loopback_host
from .calls import CallSettings, DialSettings, LoggingSettings, OutboundSettings, RecordsSettings, RedisSettings
from .dialog import LlmSettings, ToolsSettings, TurnFlowSettings
from .jobs import JobsSettings, ScheduleSettings, WebhookSettings
from .observability import TracingSettings
from .speech import SpeechSettings
from .speech_service import SpeechBackendSettings, SpeechServerSettings
from .telephony import EslSettings, ForkSettings, PlaybackSettings


class ApiSettings(Section):
    """The HTTP API process (``voiceagent api``): where it listens, its bearer token, its body limit.

    A non-loopback ``API_HOST`` without ``API_TOKEN`` is refused when the server starts
    (:func:`api_bind_problem`), not here: other processes read every section and must not fail on it."""

    title = "api: the HTTP API process (voiceagent/api/, voiceagent api)"

    api_host: str = Field(default="127.0.0.1", description="Address the API binds (a non-loopback address needs API_TOKEN).")
    api_port: int = Field(default=8080, ge=0, le=65535, description="Port of the API (0 = pick one).")
    api_token: SecretStr = Field(default=SecretStr(""), description="Bearer token every endpoint but /health requires (Authorization: Bearer ...); empty = no auth, allowed on a loopback API_HOST only.")
    api_max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024, description="Largest request body the API reads; larger ones get 413.")
    api_session_secret: SecretStr = Field(default=SecretStr(""), description="Key that signs the call pages' login cookie (/ui); empty = derived from API_TOKEN, so a new token logs every browser out.")
    api_session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="How long a login to the call pages (/ui) lasts.")


def api_bind_problem(s: ApiSettings) -> Optional[Tuple[str, str]]:
    """(variable, message) when the API would listen beyond this machine without a token."""
    if not s.api_token.get_secret_value() and not is_loopback_host(s.api_host):
        return "API_TOKEN", (f"is required when API_HOST ({s.api_host!r}) is not a loopback address: anyone "
                             "who reaches the port could place calls")
    return None


class Settings(EslSettings, ForkSettings, PlaybackSettings, CallSettings, OutboundSettings, DialSettings,
               RedisSettings, RecordsSettings, LlmSettings, ToolsSettings, TurnFlowSettings, SpeechSettings, SpeechBackendSettings,
               LoggingSettings, TracingSettings, ApiSettings, JobsSettings, ScheduleSettings, WebhookSettings,
               SpeechServerSettings):
    """Every section: what the voice worker and ``voiceagent config`` read."""


#: The voice worker reads every section (ESL, fork, playback, calls, dialog, speech, Redis, logs).
VoiceWorkerSettings = Settings

#: Every section, in the order ``voiceagent config`` prints them.
SECTIONS: Tuple[Type[Section], ...] = tuple(Settings.sections())

S = TypeVar("S", bound=Section)


def load(cls: Type[S], **overrides: Any) -> S:
    """Build ``cls`` (a section, a class composed of some, or Settings) from the environment plus
    ``overrides``; raise ConfigError naming the variable."""
    unknown = sorted(set(overrides) - set(cls.model_fields))
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting {', '.join(unknown)}")
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise config_error(exc) from None


@lru_cache(maxsize=None)
def compose(*sections: Type[Section]) -> Type[Section]:
    """One class made of ``sections`` (flat attributes, each section's validators)."""
    if not sections or not all(isinstance(c, type) and issubclass(c, Section) for c in sections):
        raise TypeError("compose() takes one or more settings sections")
    if len(sections) == 1:
        return sections[0]
    name = "Settings[" + ",".join(c.__name__.removesuffix("Settings") for c in sections) + "]"
    composed: Type[Section] = type(name, tuple(sections), {"__module__": __name__})
    return composed


def load_sections(*sections: Type[Section], **overrides: Any) -> Section:
    """Only ``sections`` of the environment, e.g. ``load_sections(EslSettings, RedisSettings)``."""
    return load(compose(*sections), **overrides)


def load_settings(**overrides: Any) -> Settings:
    """Every section, from the environment (plus explicit overrides); raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise config_error(exc) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
