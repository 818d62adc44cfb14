"""Speculative STT: a transcription started at the caller's first pause, before the turn is known
to be over, so Whisper's time hides inside the end-of-turn silence."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog


class Speculation:
    """A transcription started at the caller's first pause, before the turn is known to be over.

    If the caller carries on it is marked stale; a stale run still waiting for the inference pool
    is skipped when its turn comes, so it never delays another call's (or this call's) real turn.
    """

    def __init__(self, dialog: "VoiceDialog", audio) -> None:
        self.stale = False
        self.samples = len(audio)
        self._stt = dialog.svc.transcriber
        self._pool = dialog.svc.pool
        self._early = getattr(dialog, "early", None)  # a VoiceDialog's Preemptive
        self.greenlet = dialog.spawn(self._run, audio)

    def _run(self, audio):
        from ..speech.inference import urgent

        t0 = time.monotonic()
        if getattr(self._stt, "uses_pool", True):  # a test double without the attribute: a local one
            with urgent():  # the end-of-turn decision and the reply wait on it
                tr = self._pool.run(self._job, audio, kind="stt")
        else:  # a remote STT waits on its socket in this greenlet (speech/seams.py)
            tr = None if self.stale else self._stt.transcribe(audio)
        if tr is not None and not self.stale and self._early is not None:
            self._early.start(tr.text)  # the LLM asked now (calls/preemptive.py)
        return None if tr is None else (tr, (time.monotonic() - t0) * 1000)

    def _job(self, audio):  # runs in a native pool thread
        if self.stale:
            return None
        return self._stt.transcribe_blocking(audio)
