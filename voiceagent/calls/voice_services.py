"""The shared, loaded-once half of the voice pipeline: one ``VoiceServices`` per worker holds the
speech engines (local models or remote clients: speech/backends.py), the inference pool, the LLM
client, tools, profiles and the phrase cache; each call's ``VoiceDialog`` (calls/voice_dialog.py)
borrows them."""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List

log = logging.getLogger(__name__)


class VoiceServices:
    """Shared, loaded-once parts of the voice pipeline."""

    def __init__(self, settings, *, kit=None, transcriber=None, tts=None, pool=None, turn_model=None) -> None:
        from ..dialog.conversation import DialogKit
        from ..speech.backends import make_stt, make_tts_backend
        from ..speech.inference import InferencePool
        from ..speech.tts import PhraseCache

        self.settings = settings
        self.pool = pool or InferencePool(settings.inference_threads or None, model_threads=settings.stt_threads)
        # speech/seams.py: in process or on a speech server (STT_BACKEND, TTS_ENGINE), as the settings say
        self.transcriber = transcriber or make_stt(settings, self.pool)
        self.tts = tts or make_tts_backend(settings, self.pool)
        self.phrases = PhraseCache(self.tts)
        self.turn_model = turn_model if turn_model is not None or not self.smart_turn else self._load_turn_model()
        self.kit = kit or DialogKit.from_settings(settings)
        if self.kit.live.settings is None:  # a kit built in code reloads from these settings
            self.kit.live.settings = settings
        from ..schedules.caller import SchedulerHook

        self.kit.context_hooks.append(SchedulerHook(settings))  # ctx.scheduler: the caller's timers, callbacks
        self.listeners: List[Callable[[str, Any, Any], None]] = []
        self.tool_watcher: Any = None  # a ToolWatcher once watch_tools() ran
        self.vad_batcher: Any = None  # the process's batched Silero runner (VAD_BATCH), from the first call on

    def watch_tools(self, client=None):
        """Follow the tools generation in Redis (POST /tools/reload): a started ToolWatcher."""
        from ..dialog.tool_reload import ToolWatcher
        from ..records.keys import Keys
        from .inbox import make_redis

        s = self.settings
        client = client or make_redis(s.redis_url, socket_timeout=s.redis_socket_timeout)
        self.tool_watcher = ToolWatcher(self.kit.live, client, Keys(s.redis_prefix),
                                        interval=s.tools_reload_check_seconds).start()
        return self.tool_watcher

    def warm(self) -> Dict[str, Any]:
        """One synthetic turn through every path a call uses (calls/warmup.py), so the first call is
        as fast as the tenth; returns the milliseconds each stage cost."""
        from ..speech.seams import SpeechUnavailable
        from .warmup import warm_up

        try:
            return warm_up(self)
        except SpeechUnavailable as exc:  # a speech server not up yet: calls try it (and their fallback) again
            log.warning("warm start incomplete, speech unavailable: %s", exc)
            return {}

    @property
    def smart_turn(self) -> bool:
        """Semantic end-of-turn is on (SMART_TURN, and PAUSE_MS gives it a pause to decide at)."""
        return bool(self.settings.smart_turn and self.settings.pause_ms)

    def _load_turn_model(self):
        """The smart-turn model, at start-up: a missing file is a clear error now, not at the first pause."""
        from ..speech.turn_model import TurnModel, smart_turn_path

        return TurnModel(smart_turn_path(self.settings.smart_turn_model), pool=self.pool)

    def turn_ender(self, endpointer, call):
        """One call's end-of-turn decisions (speech/end_of_turn.py), or None when SMART_TURN is off."""
        if not self.smart_turn or self.turn_model is None:
            return None
        from ..speech.end_of_turn import EndOfTurnPolicy, TurnEnder

        s = self.settings
        return TurnEnder(EndOfTurnPolicy.from_settings(s), self.turn_model, endpointer, call.spawn,
                         emit=lambda decision: self.emit(call, "end_of_turn", decision), fallback_ms=s.end_of_turn_ms)

    def endpointer(self, sample_rate: int):
        """Turn detection for one call's audio, as the settings say (calls and the warm start).  With
        smart-turn on, SMART_TURN_MAX_WAIT_MS is the silence that ends a turn no decision shortened."""
        from ..speech.vad import Endpointer

        s = self.settings
        eot = max(s.end_of_turn_ms, s.smart_turn_max_wait_ms) if self.smart_turn else s.end_of_turn_ms
        return Endpointer(sample_rate, end_of_turn_ms=eot, min_speech_ms=s.min_speech_ms,
                          max_utterance_s=s.max_utterance_s, pause_ms=s.pause_ms, threshold=s.vad_threshold,
                          engine=s.vad_engine, preroll_ms=s.speech_preroll_ms, vad=self._batched_vad())

    def _batched_vad(self):
        """A call's Silero VAD on the worker's batcher (VAD_BATCH=on), or None (the call runs its own)."""
        s = self.settings
        if not (s.vad_batch and s.vad_engine == "silero"):
            return None
        if self.vad_batcher is None:
            from ..speech.vad_batch import shared_batcher

            self.vad_batcher = shared_batcher(s.vad_batch_window_ms)
        return self.vad_batcher.vad()

    @property
    def warms_llm_prefix(self) -> bool:
        """Whether to warm the LLM's prompt cache (LLM_WARM_PREFIX): by default only for a server on this
        machine, where it is free (on a paid API it is a billed request)."""
        from urllib.parse import urlparse

        from ..dialog.llm import LlmClient

        mode = self.settings.llm_warm_prefix
        if mode != "auto" or self.kit.demo_server is not None:
            return mode == "on" and self.kit.demo_server is None
        llm = self.kit.llm  # the litellm client here (a ChatModel as such has no URL)
        host = (urlparse(llm.base_url).hostname or "") if isinstance(llm, LlmClient) else ""
        return host in ("127.0.0.1", "localhost", "::1")

    def warm_llm_prefix(self, conv=None) -> None:
        """Have a local LLM server evaluate a conversation's prompt so far (system prompt + tool
        definitions, and for a live call its context message and greeting) while nobody waits for it:
        llama.cpp reads only ~30-100 prompt tokens a second on 2 busy cores, and it reuses the longest
        prefix it already holds, so the caller's first question then costs only its own tokens."""
        if not self.warms_llm_prefix:
            return
        if conv is None:
            conv = self.kit.conversation()
            conv.greeting()
        try:
            stream = self.kit.llm.stream(conv.messages(), self.kit.tools.specs(conv.tool_names) or None)
            for _ in stream:
                break
            stream.cancel()
        except Exception as exc:  # a cold first call is slower, not broken
            log.warning("LLM warm-up failed: %s", exc)

    def overloaded(self) -> bool:
        """Admission control: the inference queue's expected wait is past ADMISSION_MAX_WAIT_S."""
        return self.pool.saturated(self.settings.admission_max_wait_s)

    def dialog(self, call):
        """The dialog factory a worker takes: one VoiceDialog per call."""
        from .voice_dialog import VoiceDialog

        return VoiceDialog(self, call)

    def emit(self, call, kind: str, data: Any) -> None:
        """Hooks for the demo, the benchmark and tests: ('turn', Turn), ('greeting', text), ..."""
        for fn in list(self.listeners):
            try:
                fn(kind, call, data)
            except Exception:
                log.exception("listener failed")
