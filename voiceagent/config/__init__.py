"""Every setting voiceagent reads, in one typed place, grouped by concern.

Each field is an environment variable of the same name in upper case (``ESL_NODES`` for
``esl_nodes``); the default and a one-line description sit next to it, in the module of its
section (``telephony``: ESL, fork, playback; ``calls``: calls, outbound, Redis, logging;
``dialog``: LLM, tools; ``speech``; ``speech_service``: remote speech, the speech server; ``jobs``: queue, schedules, webhooks).  ``Settings`` composes them all with flat attributes;
:func:`load_sections` builds only some.  ``voiceagent config`` prints the effective values by
section with secrets masked.  Validation happens at start-up, and a bad value fails with a
message that names the variable.
"""
from .base import RULE_BASED, ConfigError, Section, check_url, is_loopback_host, mask_url
from .calls import CallSettings, DialSettings, LoggingSettings, OutboundSettings, RecordsSettings, RedisSettings
from .dialog import LlmSettings, ToolsSettings
from .jobs import JobsSettings, ScheduleSettings, WebhookSettings
from .observability import TracingSettings
from .settings import (
    SECTIONS,
    ApiSettings,
    Settings,
    VoiceWorkerSettings,
    api_bind_problem,
    compose,
    load,
    load_sections,
    load_settings,
    settings,
)
from .speech import SpeechSettings
from .speech_service import SpeechBackendSettings, SpeechServerSettings
from .telephony import EslSettings, ForkSettings, PlaybackSettings, fork_edge_problem

__all__ = [
    "RULE_BASED", "ConfigError", "Section", "check_url", "is_loopback_host", "mask_url",
    "EslSettings", "ForkSettings", "PlaybackSettings", "fork_edge_problem",
    "CallSettings", "OutboundSettings", "DialSettings", "RedisSettings", "RecordsSettings", "LoggingSettings",
    "LlmSettings", "ToolsSettings", "SpeechSettings", "SpeechBackendSettings", "SpeechServerSettings", "ApiSettings",
    "api_bind_problem", "JobsSettings", "ScheduleSettings", "WebhookSettings", "TracingSettings",
    "Settings", "VoiceWorkerSettings", "SECTIONS", "compose", "load", "load_sections", "load_settings", "settings",
]
