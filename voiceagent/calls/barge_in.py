"""Barge-in that stops at once and resumes after a false alarm.

Caller speech over the agent is accumulated over a short window (BARGE_IN_WINDOW_MS; short pauses
between words do not reset it, so "Wait, stop, I have another question" counts from "Wait"). At
BARGE_IN_PAUSE_MS of it the playback is *paused* (``uuid_fileman pause``: FreeSWITCH holds the file
where it is, no events). Then what the caller said is transcribed - as soon as they fall silent, at
the latest BARGE_IN_CONFIRM_MS after the pause:

- words (not only backchannels) → stop: ``uuid_break all`` + ``killAudio``, the reply cancelled, and
  the caller's turn is heard as before (``VoiceDialog._barge_in``);
- nothing Whisper keeps (a cough, noise) or only backchannels (BACKCHANNEL_WORDS: "mm-hm", "yeah",
  "okay"; calls/backchannel.py) → resume: the second ``uuid_fileman pause`` plays on where it paused
  (LiveKit's "false interruption resume"); the speech is not a turn.

BARGE_IN_STOP_MS of speech stops without waiting for the transcript. The decisions run on the turn
loop's greenlet (at the next audio chunk), the ESL round trips and the transcription in their own.
BARGE_IN_MODE=stop keeps the old rule: BARGE_IN_MIN_MS of one burst stops the agent.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple

import gevent.lock
import numpy as np

from .backchannel import is_false_alarm

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)

_KEEP_S = 3.0  # caller audio kept before the pause (the transcript needs the whole onset)


class BargeIn:
    """One call's barge-in state: fed every caller audio chunk by the turn loop."""

    def __init__(self, dialog: "VoiceDialog") -> None:
        self.d = dialog
        self.s = dialog.s
        self._speech: Deque[Tuple[float, float]] = deque()  # (audio t, ms) of chunks with speech over the agent
        self._audio: Deque[Tuple[float, bytes]] = deque()   # (audio t at its end, pcm) recent caller audio
        self._toggle = gevent.lock.Semaphore()  # pause/resume are toggles: never two in flight
        self._reset_episode()
        self.false_alarm = False  # the current caller speech was judged a false alarm (not a turn)
        self.resumes = 0          # false-interruption resumes in this call

    def _reset_episode(self) -> None:
        self.state = "idle"  # idle | paused (deciding) | stopped
        self.onset_t: Optional[float] = None
        self.paused_t: Optional[float] = None
        self.paused_ok = False
        self._since_onset_ms = 0.0
        self._silent_ms = 0.0
        self._stt: Optional[Any] = None
        self.decision: Optional[str] = None  # set by the transcription: "stop" | "resume"
        self.heard = ""
        self.timing: Dict[str, float] = {}

    # ------------------------------------------------------------------ the turn loop's hook
    def feed(self, ep, pcm: bytes, agent_talking: bool) -> bool:
        """After ``ep.feed(pcm)``. True when it stopped the agent (the turn is then a real barge-in)."""
        s = self.s
        t = ep.t
        chunk_ms = len(pcm) / 2 / self.d.call.sample_rate * 1000
        self._audio.append((t, pcm))
        while self._audio and self._audio[0][0] < t - _KEEP_S - s.barge_in_confirm_ms / 1000:
            self._audio.popleft()
        if self.state == "stopped":
            if not ep.speaking and not ep.in_turn:
                self._reset_episode()  # that interruption is over
            return False
        if s.barge_in_mode == "stop":
            if agent_talking and ep.speaking and ep.speech_ms >= s.barge_in_min_ms:
                self.state = "stopped"
                self.d._barge_in(ep)
                return True
            return False
        if self.state == "paused":
            return self._deciding(ep, t, chunk_ms)
        if not agent_talking:
            self._speech.clear()
            return False
        if ep.speaking:
            self._speech.append((t, chunk_ms))
        while self._speech and self._speech[0][0] < t - s.barge_in_window_ms / 1000:
            self._speech.popleft()
        if sum(ms for _, ms in self._speech) >= s.barge_in_pause_ms:
            self._pause(t)
        return False

    def is_turn(self, ep, speech_ms: float, overlapped: bool, barged: bool) -> bool:
        """At the caller's EndOfTurn: whether it is a turn to answer. A decision still pending is settled
        first; a false alarm is not a turn, an interruption is; short speech over the agent is not."""
        if self.state == "paused":
            if self._stt is not None:
                self._stt.join(10)
            barged = self._apply(self.decision or "resume", ep) or barged
        stopped = barged or self.state == "stopped"
        false_alarm, self.false_alarm = self.false_alarm, False
        if self.state == "stopped":
            self._reset_episode()
        if false_alarm and not stopped:
            return False
        return stopped or not (overlapped and speech_ms < self.s.barge_in_min_ms)

    # ------------------------------------------------------------------ steps
    def _pause(self, t: float) -> None:
        self.onset_t = self._speech[0][0] - self._speech[0][1] / 1000 if self._speech else t
        self._speech.clear()
        self.state, self.paused_t, self.false_alarm = "paused", t, False
        self._since_onset_ms = self.s.barge_in_pause_ms
        self.timing = {"decided": time.monotonic()}
        pause = getattr(self.d.call, "pause_playback", None)  # a port without it (a fake) cannot pause
        self.d.spawn(self._do_pause, pause)

    def _do_pause(self, pause) -> None:
        with self._toggle:
            ok = bool(pause()) if pause is not None else False
            if self.state == "paused" and ok:
                self.paused_ok = True
                self.timing["paused"] = time.monotonic()
            elif ok:  # decided (stopped or resumed) before the pause was even sent
                resume = getattr(self.d.call, "resume_playback", None)
                if self.state != "stopped" and resume is not None:
                    resume()

    def _deciding(self, ep, t: float, chunk_ms: float) -> bool:
        s = self.s
        if self.decision is not None:
            return self._apply(self.decision, ep)
        if ep.speaking:
            self._since_onset_ms += chunk_ms
            self._silent_ms = 0.0
        else:
            self._silent_ms += chunk_ms
        if self._since_onset_ms >= s.barge_in_stop_ms:
            self.heard = "(long speech)"
            return self._apply("stop", ep)
        silent = self._silent_ms >= max(s.pause_ms, 100)
        late = t - (self.paused_t or t) >= s.barge_in_confirm_ms / 1000
        if self._stt is None and (silent or late):
            self._stt = self.d.spawn(self._transcribe, self._audio_since(self.onset_t or t))
        elif self._stt is not None and self._stt.dead and self.decision is None:
            self._stt = None  # it failed: try again at the next silence or at once if late
        return False

    def _audio_since(self, onset: float) -> np.ndarray:
        from ..speech.audio import pcm16_to_float, resample

        start = onset - 0.3  # the first sound is inside the onset frame: keep a little before it
        parts: List[bytes] = [pcm for end, pcm in self._audio if end >= start]
        x = pcm16_to_float(b"".join(parts))
        rate = self.d.call.sample_rate
        return x if rate == 16000 else resample(x, rate, 16000)

    def _transcribe(self, audio: np.ndarray) -> None:
        from ..speech.inference import urgent

        with urgent():  # ahead of the reply's later sentences queued for synthesis: the agent is paused
            tr = self.d.svc.transcriber.transcribe(audio)
        self.heard = tr.text
        self.decision = "resume" if is_false_alarm(tr.text, self.s.backchannel_words) else "stop"
        log.info("barge-in: heard %r over the agent: %s", tr.text, self.decision)

    def _apply(self, decision: str, ep) -> bool:
        d = self.d
        if decision == "stop":
            report = self._report("stop")
            self.state = "stopped"
            d._barge_in(ep, onset_t=self.onset_t, extra=report)
            return True
        resume = getattr(d.call, "resume_playback", None)
        if self.paused_ok and resume is not None:
            d.spawn(self._do_resume, resume)
        self.resumes += 1
        report = self._report("resume")
        cur = d._current
        if cur is not None:
            turn = cur[0]
            turn.timings["false_interruption_resumes"] = turn.timings.get("false_interruption_resumes", 0) + 1
            if "onset_to_pause_ms" in report:
                turn.timings["barge_in_onset_to_pause_ms"] = report["onset_to_pause_ms"]
        d.svc.emit(d.call, "barge_in_resume", report)
        self._reset_episode()
        self.false_alarm = True
        return False

    def _do_resume(self, resume) -> None:
        with self._toggle:
            resume()

    def _report(self, decision: str) -> Dict[str, Any]:
        """Onset → paused (and → decided) in ms, from the caller's first sound over the agent."""
        onset = self.d._wall_of_audio_time(self.onset_t) if self.onset_t is not None else None
        out: Dict[str, Any] = {"decision": decision, "heard": self.heard, "paused": self.paused_ok}
        if onset is not None:
            if "paused" in self.timing:
                out["onset_to_pause_ms"] = (self.timing["paused"] - onset) * 1000
            out["onset_to_decision_ms"] = (time.monotonic() - onset) * 1000
        return out
