"""Speech to text with faster-whisper, tuned for short phone turns.

Decisions (measured on 2 cores, see the measurements in README.md): int8, 2 threads, greedy (beam 1),
language fixed (auto-detection adds ~0.5 s), no temperature fallback (retries on noise cost
seconds and only produce other hallucinations), vad_filter off because the Endpointer already cut
the turn.  Whisper invents text on silence and noise ("Thank you.", "you", subtitle credits); a
transcript that looks like that comes back as "" so it never starts a turn.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, List, Optional, Tuple

import numpy as np

from ..observability.metrics import HALLUCINATION_DROPS
from .audio import rms_dbfs
from .models import resolve_whisper

if TYPE_CHECKING:
    from .inference import InferencePool

__all__ = ["Transcript", "Transcriber", "resolve_device", "is_hallucination", "filtered_transcript", "is_silence",
           "WhisperSegment"]

log = logging.getLogger(__name__)

#: Below this level the audio is line noise; Whisper is not even asked.
SILENCE_DBFS = -55.0

# Things Whisper says over silence/noise (learnt from subtitle-heavy training data). Some are also
# real phone phrases ("Thank you.", "Bye."), so these are dropped only with a second signal.
_SUSPECT_PHRASES = {
    "you", "thank you", "thank you very much", "thanks", "thanks for watching", "thank you for watching",
    "thanks for listening", "thank you for listening", "bye", "bye bye", "goodbye", "okay", "oh", "so",
    "the end", "please subscribe", "like and subscribe", "hmm", "uh", "um", "i", "a", ".", "",
}
# Never said on a phone call: dropped whatever the scores say.
_ALWAYS_DROP = re.compile(
    r"(subtitles? (by|made by|created by)|amara\.org|transcri(bed|ption) by|captions? by|"
    r"www\.|\.com\b|subscribe to|^\W*(\[|\()[^\]\)]*(\]|\))\W*$|^[\W♪]*$)",
    re.IGNORECASE,
)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _segment_is_noise(text: str, no_speech_prob: float, avg_logprob: float) -> bool:
    return bool(_ALWAYS_DROP.search(text.strip())) or (no_speech_prob > 0.6 and avg_logprob < -0.5)


def is_hallucination(text: str, no_speech_prob: float, avg_logprob: float, level_dbfs: float) -> bool:
    """True when ``text`` is most likely Whisper inventing words over silence or noise."""
    if _ALWAYS_DROP.search(text.strip()):
        return True
    suspect = _normalise(text) in _SUSPECT_PHRASES
    if no_speech_prob > 0.6 and avg_logprob < -0.5:
        return True  # whisper's own "this was not speech" signal
    if suspect and (no_speech_prob > 0.2 or avg_logprob < -0.6 or level_dbfs < -45.0):
        return True
    return False


@dataclass
class Transcript:
    text: str  # "" when nothing was said (or only a hallucination)
    duration: float  # seconds of audio transcribed
    no_speech_prob: float = 1.0
    avg_logprob: float = 0.0
    elapsed: float = 0.0  # wall seconds spent in the model
    raw_text: str = ""  # what Whisper produced before the filter (for logs)
    segments: List[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.text)


@dataclass
class WhisperSegment:
    """One segment as Whisper produced it (before our hallucination filter)."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    start: float
    end: float
    tokens: List[int] = field(default_factory=list)


def is_silence(duration: float, level: float) -> bool:
    """Too short or too quiet to ask Whisper about (it would only invent words)."""
    return duration < 0.1 or level < SILENCE_DBFS


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # no CUDA runtime at all
        return "cpu"


class Transcriber:
    """One loaded Whisper model; thread-safe, share it across calls.

    ``transcribe`` blocks; pass ``pool`` to have it run in the inference thread pool so only the
    calling greenlet waits.
    """

    def __init__(
        self,
        model: str = "base",
        language: Optional[str] = "en",
        device: str = "auto",
        compute_type: str = "int8",
        threads: int = 2,
        beam_size: int = 1,
        *,
        cache_dir: Optional[str] = None,
        pool: "Optional[InferencePool]" = None,
    ):
        from faster_whisper import WhisperModel

        self.model_dir = resolve_whisper(model, cache_dir)
        self.name = str(model)
        self.language = language or None
        self.device = resolve_device(device)
        self.beam_size = beam_size
        self.pool = pool
        self.uses_pool = True  # speech/seams.py: transcribe_blocking runs the model in the calling thread
        t0 = time.perf_counter()
        self._model = WhisperModel(
            str(self.model_dir), device=self.device, compute_type=compute_type, cpu_threads=threads, num_workers=1,
            local_files_only=True,
        )
        if self._model.model.is_multilingual is False and self.language not in (None, "en"):
            raise ValueError(f"Whisper model {model!r} is English-only; STT_LANGUAGE={language!r} is not supported")
        self.load_s = time.perf_counter() - t0

    def transcribe(self, audio: np.ndarray, *, initial_prompt: Optional[str] = None) -> Transcript:
        """Transcribe float32 mono 16 kHz audio of one turn."""
        if self.pool is not None:
            return self.pool.run(self._transcribe, audio, initial_prompt, kind="stt")
        return self._transcribe(audio, initial_prompt)

    def transcribe_blocking(self, audio: np.ndarray, initial_prompt: Optional[str] = None) -> Transcript:
        """The model call itself, in the calling thread (for code that manages the pool itself)."""
        return self._transcribe(audio, initial_prompt)

    def _transcribe(self, audio: np.ndarray, initial_prompt: Optional[str]) -> Transcript:
        audio = np.asarray(audio, dtype=np.float32)
        duration, level = len(audio) / 16000.0, rms_dbfs(audio)
        if is_silence(duration, level):
            return Transcript("", duration)
        t0 = time.perf_counter()
        scored = [(seg.text, seg.no_speech_prob, seg.avg_logprob) for seg in self.raw_segments(audio, initial_prompt)]
        return filtered_transcript(scored, duration, level, time.perf_counter() - t0)

    def raw_segments(self, audio: np.ndarray, initial_prompt: Optional[str] = None, *, language: Optional[str] = None,
                     temperature: float = 0.0) -> List[WhisperSegment]:
        """What Whisper says, unfiltered (the speech server answers with this, as OpenAI does)."""
        segments, _info = self._model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=language or self.language,
            beam_size=self.beam_size,
            temperature=temperature,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=initial_prompt,
        )
        return [WhisperSegment(seg.text, seg.no_speech_prob, seg.avg_logprob, seg.start, seg.end, list(seg.tokens))
                for seg in segments]  # a generator: decoding happens while iterating


def filtered_transcript(segments: Iterable[Tuple[str, float, float]], duration: float, level: float,
                        elapsed: float = 0.0) -> Transcript:
    """A Transcript from Whisper's (text, no_speech_prob, avg_logprob) segments with the likely
    hallucinations dropped: the same rule whether Whisper ran here or on a speech server."""
    kept: List[str] = []
    raw: List[str] = []
    nsp: List[float] = []
    alp: List[float] = []
    for seg_text, no_speech, logprob in segments:
        text = seg_text.strip()
        raw.append(text)
        nsp.append(no_speech)
        alp.append(logprob)
        # per segment only the unconditional signs; the suspect-phrase rule applies to the whole
        # transcript below, so a real "Goodbye." after "Thanks for calling." is not dropped
        if text and not _segment_is_noise(text, no_speech, logprob):
            kept.append(text)
    raw_text = " ".join(raw).strip()
    text = " ".join(kept).strip()
    if text and is_hallucination(text, max(nsp), float(np.mean(alp)), level):
        text = ""
    if raw_text and not text:
        HALLUCINATION_DROPS.inc()
        log.debug("dropped likely hallucination %r (no_speech=%.2f logprob=%.2f level=%.1f dBFS)",
                  raw_text, max(nsp), float(np.mean(alp)), level)
    return Transcript(
        text=text,
        duration=duration,
        no_speech_prob=max(nsp) if nsp else 1.0,
        avg_logprob=float(np.mean(alp)) if alp else 0.0,
        elapsed=elapsed,
        raw_text=raw_text,
        segments=kept,
    )
