"""Voice activity detection and turn endpointing on the audio clock.

Engines (measured by bench/speech_models.py on this 2-core machine; numbers below):

=================  ====================================  =====================================
(frame = 32/30 ms)  Silero v6 (onnxruntime, 1 thread)     webrtcvad, aggressiveness 3
=================  ====================================  =====================================
time per frame     0.083 ms                              0.007 ms
clean Piper speech recall 99.2 %, 0 % false in pauses    recall 100 %, 0 % false in pauses
same via 8 kHz     recall 99.2 %, 0 %                    recall 100 %, 0 %
+white noise 10 dB recall 78 %, 0 % false in pauses      recall 100 %, 100 % false in pauses
noise only, -20    0 % of frames (white, pink, 50 Hz     100 % of frames (all three kinds)
dBFS, 10 s each    hum)
noise only, -40    0 %                                   0.9 %
=================  ====================================  =====================================

(aggressiveness 1 is worse: 1.5-2 % false at -40 dBFS.)  webrtcvad calls any steady noise above
~-30 dBFS speech, so on a noisy line it would never end a turn; Silero loses some quiet syllables
in heavy noise but never invents a turn.

Silero is the default: it rejects noise far better, and at ~0.1 ms per 32 ms chunk it costs about
0.3 % of a core per call.  Inline in the call's greenlet (VAD_BATCH=off) a hop per chunk would cost
more than the inference; with many calls the runs add up on the event loop, so by default one
batcher runs every call's chunk in one ONNX run off the loop (speech/vad_batch.py, passed in as
``vad``).  webrtcvad stays selectable (VAD_ENGINE=webrtc) for very dense workers.

Times in events are on the audio clock (16 kHz samples processed / 16000), never wall time, so
feeding a recording faster than real time, or in any chunk size, produces identical events.
"""
from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, List, Optional, Union

import numpy as np

from .audio import StreamResampler, float_to_pcm16, pcm16_to_float

__all__ = [
    "SileroVAD",
    "WebRtcVAD",
    "make_vad",
    "chunk_rows",
    "Endpointer",
    "SpeechStart",
    "Pause",
    "Resume",
    "EndOfTurn",
    "Event",
    "RATE",
]

RATE = 16000  # the models' rate; input at other rates is resampled to it


def silero_session(model: Union[str, bytes]) -> Any:
    """A Silero session (``model``: a path or the serialized graph) on one thread, quiet, without an arena."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def _silero_session():
    """One ONNX session shared by all calls (state is passed explicitly, so this is safe)."""
    from .models import silero_vad_path

    return silero_session(str(silero_vad_path()))


class SileroVAD:
    """Silero VAD v6, streaming: 512-sample chunks, 64 samples of context and the LSTM state carried."""

    frame_samples = 512
    _context = 64

    def __init__(self):
        self._session = _silero_session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._ctx = np.zeros(self._context, dtype=np.float32)

    def prob(self, frame: np.ndarray) -> float:
        return self.probs([frame])[0]

    def probs(self, frames: List[np.ndarray]) -> List[float]:
        """Consecutive chunks in one run: the graph streams its input rows through the LSTM in order."""
        if not frames:
            return []
        x = chunk_rows(self._ctx, frames, self._context)
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._ctx = frames[-1][-self._context:].astype(np.float32, copy=True)
        return [float(p) for p in out.reshape(-1)]


def chunk_rows(ctx: np.ndarray, frames: List[np.ndarray], context: int) -> np.ndarray:
    """Silero's input rows for consecutive chunks: each with the ``context`` samples before it."""
    seq = np.concatenate([ctx, *frames]).astype(np.float32, copy=False)
    size = len(frames[0])
    return np.stack([seq[i * size:i * size + size + context] for i in range(len(frames))])


class WebRtcVAD:
    """Google's WebRTC GMM VAD on 30 ms frames; returns 0.0 or 1.0."""

    frame_samples = 480

    def __init__(self, aggressiveness: int = 3):
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def reset(self) -> None:
        pass

    def prob(self, frame: np.ndarray) -> float:
        return 1.0 if self._vad.is_speech(float_to_pcm16(frame), RATE) else 0.0

    def probs(self, frames: List[np.ndarray]) -> List[float]:
        return [self.prob(f) for f in frames]


def make_vad(engine: str = "silero") -> Union[SileroVAD, WebRtcVAD]:
    if engine == "silero":
        return SileroVAD()
    if engine == "webrtc":
        return WebRtcVAD()
    raise ValueError(f"VAD_ENGINE must be 'silero' or 'webrtc', not {engine!r}")


# --- events -------------------------------------------------------------------------


@dataclass
class SpeechStart:
    """Speech confirmed (lasted min_speech_ms); ``t`` is when it began."""
    t: float


@dataclass
class Pause:
    """A short silence inside the turn: transcribe ``audio`` speculatively."""
    t: float
    audio: np.ndarray = field(repr=False)


@dataclass
class Resume:
    """The caller carried on after a Pause: discard the speculative transcript."""
    t: float


@dataclass
class EndOfTurn:
    """The caller finished.  ``audio`` is float32 16 kHz from just before speech began to
    ``tail`` after it ended; equal to the last Pause's audio when no Resume came in between."""
    t: float
    audio: np.ndarray = field(repr=False)
    start: float = 0.0
    speech_ms: float = 0.0
    reason: str = "silence"  # "silence" | "max_length" | "flush"
    silence_ms: float = 0.0  # the silence after the last word that ended it (hold_ms or end_of_turn_ms)


Event = Union[SpeechStart, Pause, Resume, EndOfTurn]

_IDLE, _CANDIDATE, _SPEECH = 0, 1, 2


class Endpointer:
    """Turn detection for one call's inbound audio.

    Feed PCM16 frames of any size; get events.  ``speech_ms`` (speech in the current burst) lets
    the session demand BARGE_IN_MIN_MS before interrupting the agent.
    """

    def __init__(
        self,
        sample_rate_in: int = 16000,
        *,
        end_of_turn_ms: int = 600,
        min_speech_ms: int = 250,
        max_utterance_s: float = 30.0,
        pause_ms: int = 200,
        threshold: float = 0.5,
        engine: str = "silero",
        preroll_ms: int = 200,
        tail_ms: Optional[int] = None,
        vad: Optional[Union[SileroVAD, WebRtcVAD, Any]] = None,
    ):
        if pause_ms and pause_ms >= end_of_turn_ms:
            raise ValueError("pause_ms must be shorter than end_of_turn_ms")
        self.rate_in = sample_rate_in
        self.end_of_turn_ms = end_of_turn_ms
        self.min_speech_ms = min_speech_ms
        self.max_utterance_s = max_utterance_s
        self.pause_ms = pause_ms
        self.threshold = threshold
        self.neg_threshold = max(0.05, threshold - 0.15)  # hysteresis: harder to leave speech than enter it
        # Trailing silence kept in the turn's audio; equal to pause_ms so EndOfTurn.audio == Pause.audio.
        self.tail_ms = tail_ms if tail_ms is not None else (pause_ms or 200)
        self.vad = vad if vad is not None else make_vad(engine)  # a batched Silero (vad_batch.py) or our own
        self.frame = self.vad.frame_samples
        self.frame_ms = 1000.0 * self.frame / RATE
        self._preroll_frames = max(1, int(round(preroll_ms / self.frame_ms)))
        self._resampler = StreamResampler(sample_rate_in, RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        self._odd = b""
        self.samples = 0  # 16 kHz samples run through the VAD: the audio clock
        self.last_prob = 0.0
        self.pause_index = 0  # counts Pause events: a decision for an earlier pause is stale
        self._reset_turn()

    # --- public ---------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Audio clock: seconds of (16 kHz) audio processed so far."""
        return self.samples / RATE

    @property
    def speaking(self) -> bool:
        """The caller is mid-burst (speech in the last frames)."""
        return self._state != _IDLE and self._silence_ms < self.frame_ms * 2

    @property
    def in_turn(self) -> bool:
        return self._state == _SPEECH

    def reset(self) -> None:
        """Forget any partial turn and the VAD state (e.g. after the agent was interrupted).
        The audio clock keeps running."""
        self.vad.reset()
        self._reset_turn()

    def feed(self, pcm: bytes) -> List[Event]:
        if self._odd:
            pcm = self._odd + pcm
            self._odd = b""
        if len(pcm) % 2:
            pcm, self._odd = pcm[:-1], pcm[-1:]
        x = self._resampler.process(pcm16_to_float(pcm))
        if self._pending.size:
            x = np.concatenate([self._pending, x])
        n = (len(x) // self.frame) * self.frame
        self._pending = x[n:].copy()
        events: List[Event] = []
        frames = [x[i:i + self.frame] for i in range(0, n, self.frame)]
        # the VAD's numbers depend on the audio alone, so a feed's chunks go to it at once (one run)
        for frame, p in zip(frames, self.vad.probs(frames), strict=True):
            self._step(frame, p, events)
        return events

    def flush(self) -> List[Event]:
        """End of stream: close a turn in progress."""
        events: List[Event] = []
        if self._state == _SPEECH:
            events.append(self._end("flush"))
        self._reset_turn()
        return events

    # --- internals --------------------------------------------------------------------
    def _reset_turn(self) -> None:
        self._state = _IDLE
        self._preroll: Deque[np.ndarray] = deque(maxlen=self._preroll_frames)
        self._buf: List[np.ndarray] = []
        self._buf_samples = 0
        self._onset = 0.0
        self._silence_ms = 0.0
        self._turn_speech_ms = 0.0
        self.speech_ms = 0.0  # speech in the current burst (reset by a silence of pause_ms)
        self._paused = False
        self.hold_ms: Optional[float] = None  # this pause's end-of-turn silence (speech/end_of_turn.py)
        self._last_speech_len = 0  # buffer length (samples) at the end of the last speech frame

    def _step(self, frame: np.ndarray, p: float, events: List[Event]) -> None:
        self.last_prob = p
        self.samples += len(frame)
        now = self.samples / RATE
        fms = self.frame_ms
        if self._state == _IDLE:
            if p >= self.threshold:
                self._state = _CANDIDATE
                self._onset = now - fms / 1000.0
                self._buf = list(self._preroll)
                self._buf_samples = sum(len(f) for f in self._buf)
                self._append(frame)
                self._last_speech_len = self._buf_samples
                self._turn_speech_ms = self.speech_ms = fms
                self._silence_ms = 0.0
                self._maybe_confirm(events)
            else:
                self._preroll.append(frame)
            return

        self._append(frame)
        if p >= (self.neg_threshold if self._state == _SPEECH else self.threshold):
            if self._paused:
                events.append(Resume(now - fms / 1000.0))
                self._paused = False
                self.hold_ms = None  # the decision was for the pause the caller talked through
            self._silence_ms = 0.0
            self._turn_speech_ms += fms
            self.speech_ms += fms
            self._last_speech_len = self._buf_samples
            if self._state == _CANDIDATE:
                self._maybe_confirm(events)
        else:
            self._silence_ms += fms
            if self._silence_ms >= max(self.pause_ms, 200):
                self.speech_ms = 0.0  # the burst is over
            if self._state == _CANDIDATE:
                # A click or cough that never reached min_speech_ms: forget it.
                if self._silence_ms >= min(self.end_of_turn_ms, 300):
                    self._drop_candidate()
                return
            if self.pause_ms and not self._paused and self._silence_ms >= self.pause_ms:
                self._paused = True
                self.pause_index += 1
                events.append(Pause(now, self._turn_audio()))
            if self._silence_ms >= (self.end_of_turn_ms if self.hold_ms is None else self.hold_ms):
                events.append(self._end("silence"))
                self._reset_turn()
                return
        if self._state == _SPEECH and now - self._onset >= self.max_utterance_s:
            events.append(self._end("max_length"))
            self._reset_turn()

    def _append(self, frame: np.ndarray) -> None:
        self._buf.append(frame)
        self._buf_samples += len(frame)

    def _maybe_confirm(self, events: List[Event]) -> None:
        if self._turn_speech_ms >= self.min_speech_ms:
            self._state = _SPEECH
            events.append(SpeechStart(self._onset))

    def _drop_candidate(self) -> None:
        keep = self._buf[-self._preroll_frames:]
        self._reset_turn()
        self._preroll.extend(keep)

    def _turn_audio(self) -> np.ndarray:
        audio = np.concatenate(self._buf) if self._buf else np.zeros(0, dtype=np.float32)
        end = min(len(audio), self._last_speech_len + int(self.tail_ms * RATE / 1000))
        return audio[:end]

    @property
    def paused(self) -> bool:
        """In a pause of the current turn (a Pause was emitted and no Resume since)."""
        return self._state == _SPEECH and self._paused

    def _end(self, reason: str) -> EndOfTurn:
        return EndOfTurn(self.samples / RATE, self._turn_audio(), self._onset, self._turn_speech_ms, reason,
                         self._silence_ms if reason == "silence" else 0.0)
