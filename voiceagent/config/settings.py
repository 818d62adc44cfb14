"""All sections composed into :class:`Settings`, and the loaders.

``Settings`` inherits every section, so ``settings.esl_command_timeout`` reads as it always did.
A process that reads only some concerns builds only those (:func:`load_sections`), so a bad
value of another concern's variable cannot stop it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Tuple, Type, TypeVar

from pydantic import ValidationError

from .base import Section, config_error
from .calls import CallSettings, LoggingSettings, OutboundSettings, RecordsSettings, RedisSettings
from .dialog import LlmSettings, ToolsSettings
from .speech import SpeechSettings
from .telephony import EslSettings, ForkSettings, PlaybackSettings


class ApiSettings(Section):
    """Room for the HTTP API process (``voiceagent/api/``): its bind address and auth go here."""

    title = "api: the HTTP API process (voiceagent/api/; no settings yet)"


class JobsSettings(Section):
    """Room for the job workers (``voiceagent/jobs/``, scheduled and queued outbound calls)."""

    title = "jobs: queued and scheduled work (voiceagent/jobs/; no settings yet)"


class Settings(EslSettings, ForkSettings, PlaybackSettings, CallSettings, OutboundSettings, RedisSettings,
               RecordsSettings, LlmSettings, ToolsSettings, SpeechSettings, LoggingSettings, ApiSettings, JobsSettings):
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
