"""Text to speech: Piper (default, CPU, ~0.05 x real time) and optional Coqui XTTS.

Engines return ``(pcm16 bytes, rate)``; ``rate=`` resamples to what the channel plays (8000/16000)
so FreeSWITCH does not resample every prompt again.  ``PhraseCache`` keeps fixed prompts (greeting,
filler, apology, goodbye) so they cost nothing after the first call.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from .audio import float_to_pcm16, resample

if TYPE_CHECKING:
    from .inference import InferencePool
    from .seams import TextToSpeech

__all__ = ["TTSUnavailable", "PiperTTS", "XttsTTS", "PhraseCache", "make_tts"]

log = logging.getLogger(__name__)


class TTSUnavailable(RuntimeError):
    """The selected TTS engine cannot run here (missing optional dependency or model)."""


class _Engine:
    voice_id: str = ""
    sample_rate: int = 0
    pool: "Optional[InferencePool]" = None

    def _synth_float(self, text: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def synthesize(self, text: str, rate: Optional[int] = None) -> Tuple[bytes, int]:
        """Speak ``text``; returns (PCM16 mono bytes, rate). ``rate`` resamples the output."""
        if self.pool is not None:
            return self.pool.run(self._synthesize, text, rate, kind="tts")
        return self._synthesize(text, rate)

    def _synthesize(self, text: str, rate: Optional[int]) -> Tuple[bytes, int]:
        audio = self._synth_float(text) if text.strip() else np.zeros(0, dtype=np.float32)
        out_rate = rate or self.sample_rate
        if out_rate != self.sample_rate:
            audio = resample(audio, self.sample_rate, out_rate)
        return float_to_pcm16(audio), out_rate


class PiperTTS(_Engine):
    """A Piper voice, loaded once; safe to share across calls and threads."""

    def __init__(self, voice: str = "en_US-joe-medium", *, threads: int = 1, pool: "Optional[InferencePool]" = None,
                 length_scale: Optional[float] = None, noise_scale: Optional[float] = None,
                 noise_w: Optional[float] = None, sentence_silence_s: float = 0.15):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        from .models import resolve_piper_voice

        onnx_path, cfg_path = resolve_piper_voice(voice)
        t0 = time.perf_counter()
        opts = onnxruntime.SessionOptions()
        # Piper.load would let onnxruntime take every core; the pool already runs calls side by side.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        with open(cfg_path, encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        self._voice = PiperVoice(session=session, config=config, download_dir=Path(onnx_path).parent)
        # None keeps the voice's own value; noise 0 makes the same text give the same samples (tests).
        self._syn = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w)
        self._gap = np.zeros(int(sentence_silence_s * config.sample_rate), dtype=np.float32)
        self._length_scale = float(config.length_scale or 1.0)
        self.voice_id = f"piper:{Path(onnx_path).stem}"
        self.sample_rate = config.sample_rate
        self.pool = pool
        self.load_s = time.perf_counter() - t0

    def stream(self, text: str, rate: Optional[int] = None, speed: float = 1.0) -> Iterator[bytes]:
        """PCM16 at ``rate`` (default: the voice's), one piece per sentence as each is synthesized: the
        speech server streams these (each sentence synthesized in the pool, the greenlet free between)."""
        from dataclasses import replace

        syn = self._syn
        if speed != 1.0:
            base = syn.length_scale if syn.length_scale is not None else self._length_scale
            syn = replace(syn, length_scale=base / speed)
        sentences = iter(self._voice.synthesize(text, syn_config=syn))
        out_rate = rate or self.sample_rate
        first = True
        while True:
            chunk = self.pool.run(next, sentences, None, kind="tts") if self.pool else next(iter(sentences), None)
            if chunk is None:
                return
            audio = chunk.audio_float_array if first else np.concatenate([self._gap, chunk.audio_float_array])
            first = False
            yield float_to_pcm16(resample(audio, self.sample_rate, out_rate))

    def _synth_float(self, text: str) -> np.ndarray:
        parts: List[np.ndarray] = []
        for chunk in self._voice.synthesize(text, syn_config=self._syn):
            if parts:
                parts.append(self._gap)
            parts.append(chunk.audio_float_array)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class XttsTTS(_Engine):
    """Coqui XTTS v2 (voice cloning, GPU recommended) behind the optional ``xtts`` extra.

    Not exercised in CI (the package and model are not installed there).
    """

    def __init__(self, model_dir: str, speaker_wav: str = "", *, language: str = "en", device: str = "auto",
                 pool: "Optional[InferencePool]" = None):
        try:
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as exc:
            raise TTSUnavailable(
                "TTS_ENGINE=xtts needs Coqui TTS: pip install 'voiceagent[xtts]' (or set TTS_ENGINE=piper)"
            ) from exc
        d = Path(model_dir or "").expanduser()
        if not model_dir or not (d / "config.json").is_file():
            raise TTSUnavailable(f"XTTS_MODEL_DIR={model_dir!r} does not hold an XTTS model (config.json + checkpoint)")
        if not speaker_wav or not Path(speaker_wav).is_file():
            raise TTSUnavailable(f"XTTS needs a reference voice: XTTS_SPEAKER_WAV={speaker_wav!r} is not a file")
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        config = XttsConfig()
        config.load_json(str(d / "config.json"))
        self._model = Xtts.init_from_config(config)
        self._model.load_checkpoint(config, checkpoint_dir=str(d), use_deepspeed=False)
        self._model.to(device)
        self._latent, self._speaker = self._model.get_conditioning_latents(audio_path=[speaker_wav])
        self._language = language
        self.sample_rate = int(getattr(config.audio, "output_sample_rate", 24000))
        self.voice_id = f"xtts:{d.name}:{Path(speaker_wav).name}"
        self.pool = pool

    def _synth_float(self, text: str) -> np.ndarray:
        out = self._model.inference(text, self._language, self._latent, self._speaker)
        return np.asarray(out["wav"], dtype=np.float32).reshape(-1)


def make_tts(settings: Any, pool: "Optional[InferencePool]" = None) -> _Engine:
    """The engine the settings select (TTS_ENGINE, TTS_VOICE / XTTS_MODEL_DIR)."""
    if settings.tts_engine == "xtts":
        return XttsTTS(settings.xtts_model_dir, settings.xtts_speaker_wav, language=settings.stt_language, pool=pool)
    return PiperTTS(settings.tts_voice, threads=settings.tts_threads, pool=pool, length_scale=settings.tts_length_scale,
                    noise_scale=settings.tts_noise_scale, noise_w=settings.tts_noise_w)


class PhraseCache:
    """Fixed prompts synthesized once per (voice, text, rate) and reused by every call."""

    def __init__(self, tts: "TextToSpeech"):
        self.tts = tts
        self._cache: Dict[Tuple[str, str, int], bytes] = {}

    def get(self, text: str, rate: Optional[int] = None) -> Tuple[bytes, int]:
        out_rate = rate or self.tts.sample_rate
        key = (self.tts.voice_id, text, out_rate)
        pcm = self._cache.get(key)
        if pcm is None:
            pcm, out_rate = self.tts.synthesize(text, out_rate)
            self._cache[key] = pcm
        return pcm, out_rate

    def cached(self, text: str, rate: Optional[int] = None) -> Optional[Tuple[bytes, int]]:
        """The phrase if it was synthesized before, without synthesizing it (None otherwise)."""
        out_rate = rate or self.tts.sample_rate
        pcm = self._cache.get((self.tts.voice_id, text, out_rate))
        return None if pcm is None else (pcm, out_rate)

    def warm(self, phrases: Iterable[str], rate: Optional[int] = None) -> None:
        for p in phrases:
            self.get(p, rate)

    def __contains__(self, item: object) -> bool:
        text, rate = item if isinstance(item, tuple) else (item, self.tts.sample_rate)
        return (self.tts.voice_id, text, rate) in self._cache

    def __len__(self) -> int:
        return len(self._cache)
