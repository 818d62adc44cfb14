"""The two speech seams a call is written against, whatever runs behind them.

``SpeechToText`` is the in-process Whisper (speech/stt.py) or a remote OpenAI-compatible server
(speech/remote_stt.py); ``TextToSpeech`` is Piper/XTTS (speech/tts.py) or a remote server
(speech/remote_tts.py); speech/fallback.py wraps a remote one with its local fallback.  Both are
called from greenlets: a local engine hops into the native inference pool itself, a remote one
waits on a (monkey-patched) socket.  When no engine can answer they raise ``SpeechUnavailable``,
and the call apologises and hangs up (calls/speech_failure.py) instead of dying mid-sentence.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, Tuple, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .stt import Transcript

__all__ = ["SpeechUnavailable", "SpeechToText", "TextToSpeech"]


class SpeechUnavailable(RuntimeError):
    """No engine could transcribe or synthesize (remote down after retries, no usable fallback)."""


@runtime_checkable
class SpeechToText(Protocol):
    name: str
    #: True when ``transcribe_blocking`` runs the model in the calling thread (a local engine: callers
    #: may run it in the inference pool themselves); False for a remote one (call ``transcribe``).
    uses_pool: bool

    def transcribe(self, audio: "np.ndarray", *, initial_prompt: Optional[str] = None) -> "Transcript":
        """Float32 mono 16 kHz audio of one turn -> its transcript; only the calling greenlet waits."""

    def transcribe_blocking(self, audio: "np.ndarray", initial_prompt: Optional[str] = None) -> "Transcript":
        """The same in the calling thread (for code that manages the pool itself)."""


@runtime_checkable
class TextToSpeech(Protocol):
    voice_id: str  # what the phrase cache keys on
    sample_rate: int  # the rate ``synthesize`` returns when no ``rate`` is asked for

    def synthesize(self, text: str, rate: Optional[int] = None) -> Tuple[bytes, int]:
        """Speak ``text``: (PCM16 mono bytes, rate), resampled to ``rate`` when given."""
