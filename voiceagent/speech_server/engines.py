"""What the speech server has loaded: one Whisper (behind the batcher) and its voices, by the names
clients ask for (OpenAI's ``whisper-1``/``tts-1`` mean "the one loaded here")."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from ..speech.backends import local_stt
from ..speech.inference import InferencePool
from .batcher import TranscriptionBatcher

__all__ = ["SpeechEngines", "STT_ALIASES", "TTS_MODELS"]

log = logging.getLogger(__name__)

STT_ALIASES = ("whisper-1",)
TTS_MODELS = ("tts-1", "tts-1-hd", "piper", "xtts")


def batching(setting: str, stt: Any) -> bool:
    """SPEECH_SERVER_BATCH: 'auto' batches on a GPU only (on CPU one at a time costs less, measured)."""
    if setting != "auto":
        return setting == "on"
    return getattr(stt, "device", "cpu") == "cuda"


class SpeechEngines:
    def __init__(self, settings: Any, *, pool: Optional[InferencePool] = None, stt: Any = None,
                 voices: Optional[Dict[str, Any]] = None) -> None:
        s = settings
        self.pool = pool or InferencePool(s.inference_threads or None, model_threads=s.stt_threads)
        self.stt = stt if stt is not None else local_stt(s, self.pool)
        self.stt_models = [*STT_ALIASES, str(s.stt_model)]
        whisper = getattr(getattr(self.stt, "_model", None), "model", None)  # ctranslate2's, when loaded here
        self.english_only = whisper is not None and whisper.is_multilingual is False
        self.voices: Dict[str, Any] = voices if voices is not None else self._load_voices(s)
        self.batcher = TranscriptionBatcher(self.stt, self.pool, enabled=batching(s.speech_server_batch, self.stt),
                                            max_batch=s.speech_server_batch_max, wait_ms=s.speech_server_batch_wait_ms)

    def _load_voices(self, s: Any) -> Dict[str, Any]:
        from ..speech.tts import PiperTTS, make_tts

        voices: Dict[str, Any] = {}
        piper = PiperTTS(s.tts_voice, threads=s.tts_threads, pool=self.pool, length_scale=s.tts_length_scale,
                         noise_scale=s.tts_noise_scale, noise_w=s.tts_noise_w)
        voices[piper.voice_id.split(":", 1)[1]] = piper
        if s.tts_engine == "xtts":  # Coqui XTTS as well (the 'xtts' extra); its voice is the cloned speaker
            xtts = make_tts(s, self.pool)
            voices[xtts.voice_id] = xtts
        return voices

    def model_ids(self) -> List[str]:
        xtts = any(v.startswith("xtts:") for v in self.voices)
        return [*self.stt_models, *(m for m in TTS_MODELS if m != "xtts" or xtts)]

    def close(self) -> None:
        self.batcher.close()
        self.pool.close()
