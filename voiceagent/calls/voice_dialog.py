"""The voice conversation as a call dialog: hear (VAD + Whisper), think (LLM + tools), speak (TTS).

One ``VoiceServices`` per worker (calls/voice_services.py) holds what is expensive and shared;
one ``VoiceDialog`` per call runs the turn loop in the call's greenlet, against the call's
port (calls.ports.CallPort: a CallSession, or a fake in tests):

- caller audio → Endpointer (audio clock) → at the first pause a *speculative* transcription
  starts in the pool; if the caller carries on it is dropped, if the turn ends it is used, so
  the STT time hides inside the end-of-turn silence;
- a turn → Conversation.respond() → each sentence → TTS (pool) → ``call.play`` immediately,
  so the first sentence plays while the rest is still being generated;
- caller speech while the agent talks, longer than BARGE_IN_MIN_MS → barge-in: playback
  broken, queued sentences dropped, the LLM stream cancelled, the history keeps only what was
  heard.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Deque, List, Optional, Tuple

import gevent
import gevent.event
import gevent.queue

from ..speech.seams import SpeechUnavailable
from .answer_tool import hang_up_when_heard, open_with_tool
from .barge_in import BargeIn
from .call_purpose import PurposeTurns
from .call_state import TurnState
from .idle import IdleReprompt
from .playback import Reply
from .ports import CallPort
from .preemptive import Preemptive
from .speculation import Speculation
from .speech_failure import apologise_and_hang_up, guarded
from .tool_say import say_now
from .turns import ToolCall, Turn  # noqa: F401 - Turn is public here since the start
from .voice_services import VoiceServices

if TYPE_CHECKING:  # the dialog package is imported when the first call starts
    from ..dialog.conversation import Conversation
    from ..dialog.profiles import Profile

log = logging.getLogger(__name__)


class VoiceDialog:
    """One call's conversation (calls.ports.TalkingDialog)."""

    def __init__(self, services: VoiceServices, call: CallPort) -> None:
        self.svc = services
        self.call = call
        self.s = services.settings
        self.inq: gevent.queue.Queue = gevent.queue.Queue()
        self.turns: List[Turn] = []
        self.reply: Optional[gevent.Greenlet] = None
        self.conv: Optional[Conversation] = None  # from run() on
        self.profile: Optional[Profile] = None
        self._arrivals: Deque[Tuple[float, float]] = deque(maxlen=2000)  # (audio clock s, monotonic)
        self._hangup_requested = False
        self._speech_onset: Optional[float] = None  # audio-clock onset of the caller's current turn
        self._current: Optional[Tuple[Turn, Reply]] = None  # the turn being answered, and its reply
        self.purpose = PurposeTurns(call.request)  # what an outbound call was placed for (if anything)
        self.barge = BargeIn(self)
        self.early = Preemptive(self)  # the LLM asked at the first pause (calls/preemptive.py)

    @property
    def turn_state(self) -> TurnState:
        """Speaking while any reply plays, thinking while one is being prepared, else listening."""
        if self.call.speaking:
            return TurnState.SPEAKING
        if self.reply is not None and not self.reply.dead:
            return TurnState.THINKING
        return TurnState.LISTENING

    def _conversation(self) -> Conversation:
        if self.conv is None:
            raise RuntimeError("the dialog has not started: no conversation yet")
        return self.conv

    @property
    def current_reply(self) -> Optional[Reply]:
        return self._current[1] if self._current is not None else None

    # ------------------------------------------------------------------ turn loop
    def run(self, call: CallPort) -> None:
        from ..speech.vad import EndOfTurn, Pause, Resume, SpeechStart

        self.conv = self.svc.kit.conversation(call_id=call.id, direction=call.direction.value, caller=call.caller,
                                              callee=call.callee, profile_name=call.profile,
                                              on_say=lambda text: say_now(self, text),  # ctx.say
                                              **self.purpose.conversation_kwargs())
        self.profile = self.conv.profile
        ep = self.svc.endpointer(call.sample_rate)
        ender = self.svc.turn_ender(ep, call)  # semantic end-of-turn (speech/end_of_turn.py), or None
        call.set_audio_sink(lambda pcm, rate: self.inq.put(("audio", pcm)))
        forward = self.spawn(self._forward_events)
        idle = IdleReprompt(self)
        try:
            purpose = self.purpose.purpose
            with_tool = purpose is not None and purpose.request.tool is not None
            opened = open_with_tool(self) if with_tool else None  # a tool run at answer, said in the opening
            greeting = None if with_tool else self.conv.greeting()
            if self.svc.warms_llm_prefix:  # this call's prompt prefix is read while the greeting plays
                self.spawn(self.svc.warm_llm_prefix, self.conv)
            if greeting is not None:
                self._say_fixed(greeting.speech, kind="greeting", text=greeting.text,
                                cache=purpose is None)  # a request's opening is said once
            if purpose is not None and purpose.briefing:
                hang_up_when_heard(self, opened)
            spec: Optional[Speculation] = None
            overlapped = False  # the caller spoke while the agent was talking, in this turn
            barged = False  # this turn already interrupted the agent (PLAYBACK_STOP may still be on its way)
            while not call.ended.is_set() and not self._hangup_requested:
                try:
                    kind, value = self.inq.get(timeout=0.5)
                except gevent.queue.Empty:
                    continue
                if kind == "dtmf":
                    self._on_dtmf(value)
                    continue
                if kind == "command":
                    if value.type == "say":
                        self._say_fixed(value.text, kind="command", cache=False)
                    continue
                if kind != "audio":
                    continue
                while self.inq.qsize() and self.inq.peek()[0] == "audio":  # behind: one feed (one VAD run)
                    value += self.inq.get()[1]
                if not ep.speaking and not ep.in_turn:
                    overlapped = barged = False  # no turn in progress (a click the endpointer dropped, say)
                events = ep.feed(value)
                self._arrivals.append((ep.t, time.monotonic()))
                idle.tick(ep)
                talking = self._agent_talking()
                overlapped = overlapped or (talking and ep.speaking)
                barged = self.barge.feed(ep, value, talking) or barged  # pause / stop / resume (calls/barge_in.py)
                for ev in events:
                    if isinstance(ev, SpeechStart):
                        self._speech_onset = ev.t  # audio clock; barge-in latency is measured from here
                    elif isinstance(ev, Pause):
                        if spec is not None:
                            spec.stale = True
                        start = lambda a=ev.audio: Speculation(self, a)  # noqa: E731
                        spec = ender.pause(ev.audio, start) if ender is not None else start()
                    elif isinstance(ev, Resume):
                        if spec is not None:
                            spec.stale = True  # the caller carried on: that transcript is stale
                        spec = None
                    elif isinstance(ev, EndOfTurn):
                        use = spec if spec is not None and spec.samples == len(ev.audio) else None
                        if spec is not None and use is None:
                            spec.stale = True
                        spec = None
                        if self.barge.is_turn(ep, ev.speech_ms, overlapped, barged):
                            self._end_of_turn(ev, use)
                        else:  # 'mm-hm', a cough over the agent's voice: it must not interrupt the answer
                            log.info("ignored %.0f ms of speech over the agent (a false alarm)", ev.speech_ms)
                        overlapped = barged = False
        except SpeechUnavailable as exc:  # the speech server is down and nothing replaces it
            apologise_and_hang_up(self, exc)
        finally:
            forward.kill()
            self.early.cancel("the call ended")
            call.set_audio_sink(None)
            if self.reply is not None and not self.reply.dead:
                if self._hangup_requested:
                    self.reply.join(60)
                self.reply.kill()

    def spawn(self, fn, *args) -> gevent.Greenlet:
        """A greenlet tracked by the worker (none may outlive the call) with the call id bound."""
        return self.call.spawn(fn, *args)

    def _forward_events(self) -> None:
        while True:
            ev = self.call.events.get()
            self.inq.put((ev.kind, ev.value))

    def _agent_talking(self) -> bool:
        return self.call.speaking or (self.reply is not None and not self.reply.dead)

    # ------------------------------------------------------------------ hearing
    def _wall_of_audio_time(self, t: float) -> Optional[float]:
        """When (monotonic) the sample at audio time ``t`` arrived."""
        for at, wall in self._arrivals:
            if at >= t:
                return wall
        return None

    def _end_of_turn(self, ev, spec: Optional["Speculation"]) -> None:
        turn = Turn(index=len(self.turns) + 1)
        eot_wall = time.monotonic()
        last_speech_t = ev.t - (ev.silence_ms or self.s.end_of_turn_ms) / 1000.0
        last_speech_wall = self._wall_of_audio_time(last_speech_t) or eot_wall
        turn.timings["endpoint_wait_ms"] = (eot_wall - last_speech_wall) * 1000
        t0 = time.monotonic()
        result = spec.greenlet.get() if spec is not None else None
        if result is not None:
            tr, stt_ms = result
            turn.speculative_hit = True
        else:
            tr = self.svc.transcriber.transcribe(ev.audio)
            stt_ms = (time.monotonic() - t0) * 1000
            turn.speculative_hit = False
        turn.timings["stt_ms"] = stt_ms
        turn.timings["stt_wait_ms"] = (time.monotonic() - t0) * 1000  # what STT added after end of turn
        turn.heard, turn.raw = tr.text, tr.raw_text
        text = self.early.settle(tr.text, turn)  # '' for a backchannel (calls/backchannel.py)
        if not text:
            log.info("turn dropped: nothing to answer in %r", tr.raw_text)
            return
        log.info("caller said: %s", tr.text)
        self.turns.append(turn)
        turn.timings["_last_speech_wall"] = last_speech_wall
        if self.purpose.asking:
            self._start_reply(turn, lambda: self.purpose.answer(turn, said=tr.text))
        else:
            self._start_reply(turn, lambda: self._conversation().respond(text))

    def _on_dtmf(self, digit: str) -> None:
        turn = Turn(index=len(self.turns) + 1, heard=f"[DTMF {digit}]", kind="dtmf")
        turn.timings["_last_speech_wall"] = time.monotonic()
        self.turns.append(turn)
        if self.purpose.asking:
            self._start_reply(turn, lambda: self.purpose.answer(turn, digit=digit))
        else:
            self._start_reply(turn, lambda: self._conversation().on_dtmf(digit))

    # ------------------------------------------------------------------ thinking + speaking
    def _start_reply(self, turn: Turn, events_fn) -> None:
        if self.reply is not None and not self.reply.dead:
            self._interrupt(turn_reason="new turn")
        self.reply = self.spawn(guarded(self, self._reply), turn, events_fn)

    def _reply(self, turn: Turn, events_fn) -> None:
        from ..dialog import conversation as cv

        call = self.call
        t_start = time.monotonic()
        last_speech_wall = turn.timings.pop("_last_speech_wall", t_start)
        played = Reply()
        self._current = (turn, played)
        hangup_after = False
        transfer_to = None
        events = events_fn()
        ack = self._schedule_ack(turn, last_speech_wall, played)
        try:
            for ev in events:
                if isinstance(ev, cv.Say):
                    text = ev.text
                    if not any(ch.isalnum() for ch in ev.speech):
                        continue  # nothing speakable (stray markup or punctuation from a small model)
                    t0 = time.monotonic()
                    if ev.kind in ("apology", "goodbye", "filler", "transfer"):
                        pcm, rate = self.svc.phrases.get(ev.speech)  # fixed phrases: synthesized once
                    else:
                        pcm, rate = self.early.synthesize(ev.speech)  # the first may be ready
                    if "llm_first_sentence_ms" not in turn.timings:  # the answer's first sentence (after any ack)
                        turn.timings["tts_first_ms"] = (time.monotonic() - t0) * 1000
                        turn.timings["llm_first_sentence_ms"] = (t0 - t_start) * 1000
                    if ack is not None:  # too late for it now; if it is being handed over, let it finish first
                        ack.cancelled = True
                        if ack.handing:  # (joined while still asleep, it held every answer back to ACK_AFTER_MS)
                            ack.join(5)
                        ack = None
                    pb = call.play(pcm, rate, text=text)
                    if turn.ack and played.answer is None:
                        played.answer = pb
                    if not played:
                        handed = pb.handed_at or time.monotonic()
                        turn.timings["voice_to_voice_ms"] = (handed - last_speech_wall) * 1000
                        played.first = pb
                    played.add(text, pb)
                    turn.said.append(text)
                elif isinstance(ev, cv.ToolStarted):
                    turn.tool_started(ev.name, ev.args)
                elif isinstance(ev, cv.ToolFinished):
                    turn.tool_finished(ev.name, ev.result, ev.ok)
                elif isinstance(ev, cv.HangupRequested):
                    hangup_after = True
                elif isinstance(ev, cv.TransferRequested):
                    transfer_to = ev.destination
            ttft = self._conversation().last_timings
            if ttft is not None and "llm_ttft_ms" in ttft:
                turn.timings["llm_ttft_ms"] = ttft["llm_ttft_ms"]
            # wait until the caller has heard everything (or the call ends)
            for pb in played.playbacks:
                gevent.wait([pb.finished, call.ended], count=1, timeout=pb.duration + 30)
            first = played.first
            if first is not None and first.handed_at:
                # upload mode: handed_at (uuid_broadcast sent) is only known once FreeSWITCH has
                # stored the playAudio file, after call.play() returned
                turn.timings["voice_to_voice_ms"] = (first.handed_at - last_speech_wall) * 1000
                if turn.ack:
                    turn.timings["ack_ms"] = turn.timings["voice_to_voice_ms"]
            if first is not None and first.started_at and first.handed_at:
                turn.timings["playback_start_ms"] = (first.started_at - first.handed_at) * 1000
            answer = played.answer
            if answer is not None:  # after an acknowledgement: when the answer itself was handed over
                turn.timings["answer_to_voice_ms"] = ((answer.handed_at or time.monotonic()) - last_speech_wall) * 1000
            elif "voice_to_voice_ms" in turn.timings:
                turn.timings["answer_to_voice_ms"] = turn.timings["voice_to_voice_ms"]
            self._record_heard(turn, played, interrupted=False)
            self._turn_done(turn)
            if transfer_to:
                call.transfer(transfer_to)
            elif hangup_after:
                self._hangup_requested = True
                call.hangup()
                self.inq.put(("wake", None))
        finally:
            if ack is not None:
                ack.cancelled = True
            # close the reply now (not whenever the killed greenlet's frame is collected): the
            # conversation keeps the partial reply in its history before _interrupt rewrites it
            events.close()

    def _schedule_ack(self, turn: Turn, last_speech_wall: float, played: Reply):
        """Say the profile's 'thinking' phrase if no answer has started ACK_AFTER_MS after the caller's
        last word (a slow LLM must not leave the line silent); it is never said once the answer plays."""
        delay_ms = self.s.ack_after_ms
        profile = self.profile
        if not delay_ms or turn.kind != "speech" or profile is None or not profile.phrases.thinking:
            return None

        def ack() -> None:
            gevent.sleep(max(0.0, last_speech_wall + delay_ms / 1000.0 - time.monotonic()))
            if g.cancelled or played or self.call.ended.is_set():
                return
            g.handing = True
            from ..dialog.sentences import normalize_for_speech

            text = profile.phrases.pick_thinking()
            pcm, rate = self.svc.phrases.get(normalize_for_speech(text))
            pb = self.call.play(pcm, rate, text=text)
            turn.ack = text
            turn.timings["ack_ms"] = ((pb.handed_at or time.monotonic()) - last_speech_wall) * 1000
            played.first = pb
            turn.timings["voice_to_voice_ms"] = turn.timings["ack_ms"]
            played.add(text, pb)

        g = self.spawn(ack)
        g.cancelled = False  # set by the reply when the answer is ready first
        g.handing = False  # set once it is saying the phrase
        return g

    def _record_heard(self, turn: Turn, played: Reply, interrupted: bool) -> None:
        played.interrupted = played.interrupted or interrupted
        heard, cut = played.heard()
        turn.heard_by_caller = heard + ([cut + " —"] if cut else [])
        turn.interrupted = interrupted
        self._conversation().record_heard(heard, cut)

    def _turn_done(self, turn: Turn) -> None:
        self.svc.emit(self.call, "turn", turn)
        self.call.report_turn(turn)

    def _interrupt(self, turn_reason: str) -> None:
        cur = self._current
        self._conversation().cancel()
        if self.reply is not None and not self.reply.dead:
            self.reply.kill(block=True, timeout=2)
        self.call.stop_playback()
        if cur is not None:
            turn, played = cur
            self._record_heard(turn, played, interrupted=True)
            self._turn_done(turn)
            self._current = None
        log.info("agent interrupted (%s)", turn_reason)

    def _barge_in(self, ep, onset_t: Optional[float] = None, extra: Optional[dict] = None) -> None:
        breaks = self.call.barge_ins  # monotonic times uuid_break was sent
        n_breaks = len(breaks)
        decided = time.monotonic()
        self._interrupt("barge-in")
        # when uuid_break was sent (after the reply was cancelled), not when barge-in was decided
        t = breaks[-1] if len(breaks) > n_breaks else time.monotonic()
        self.call.report_barge_in(time.time() - (time.monotonic() - t))
        # from the onset of the caller's turn, not of the current burst: speech_ms restarts after every
        # short pause, so "Wait, wait, can I..." would otherwise be timed from "can I"
        burst = max(0.0, ep.t - ep.speech_ms / 1000.0)
        start = self._speech_onset if ep.in_turn and self._speech_onset is not None else burst
        onset = self._wall_of_audio_time(min(start, burst) if onset_t is None else onset_t)
        if onset is not None:
            self.svc.emit(self.call, "barge_in", {"onset_to_break_ms": (t - onset) * 1000,
                                                  "decided_to_break_ms": (t - decided) * 1000, **(extra or {})})

    def _say_fixed(self, speech: str, kind: str, text: Optional[str] = None, cache: bool = True):
        """Greeting and other unprompted speech; the profile's phrases are synthesized once per worker and
        cached, one-off texts (a request's opening, an inbox 'say') are not kept."""
        from ..dialog.sentences import normalize_for_speech

        text = text or speech
        speech = speech if kind == "greeting" else normalize_for_speech(speech)
        pcm, rate = self.svc.phrases.get(speech) if cache else self.svc.tts.synthesize(speech)
        pb = self.call.play(pcm, rate, text=text)
        turn = Turn(index=len(self.turns) + 1, said=[text], kind=kind)
        self.turns.append(turn)
        self.svc.emit(self.call, kind, text)
        self.spawn(self._report_when_heard, turn, pb)  # what the agent said unprompted (greeting, inbox 'say')
        return pb

    def _report_when_heard(self, turn: Turn, pb) -> None:
        """Report an unprompted turn once its playback is over, with what the caller heard of it."""
        gevent.wait([pb.finished, self.call.ended], count=1, timeout=pb.duration + 30)
        played = Reply()
        played.add(turn.said[0], pb)
        heard, cut = played.heard()
        turn.heard_by_caller = heard + ([cut + " —"] if cut else [])
        turn.interrupted = not heard
        self.call.report_turn(turn)
