"""One latency-benchmark call per mode: complete sentences, sentences with a hesitation, and talking
over the agent (a backchannel, then an interruption), through the emulator in real time.

Times are taken where they are true: the caller's first/last sample is when the emulator's caller
buffer starts/finishes streaming it, the agent's pause/resume/stop is when the emulated FreeSWITCH
paused, resumed or broke the file (its playback segments), the answer when the worker handed it
over (``uuid_broadcast``) and when FreeSWITCH reported PLAYBACK_START.  The dialog's own view (from
the VAD's onset) is kept in the raw JSON beside them.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gevent
from latency_script import BACKCHANNELS, CALLER_SENTENCES, INTERRUPTIONS, LONG_REQUEST, PAUSED, paused_key  # noqa: E402

_FRAME_S = 0.010  # a say() lands on average half a 20 ms frame before the emulator reads it out


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _wait(fn: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        gevent.sleep(0.02)
    return None


def _words(text: str) -> List[str]:
    return re.findall(r"[a-z']+", (text or "").lower())


def heard_rest(heard: str, rest: str) -> bool:
    """The turn's transcript holds most of what the caller said after the hesitation."""
    want = [w for w in _words(rest) if len(w) > 2]
    got = set(_words(heard))
    return bool(want) and sum(w in got for w in want) * 2 >= len(want)


class Recorder:
    """The dialog's events (turns, barge-ins, resumes, end-of-turn decisions), as they come."""

    def __init__(self) -> None:
        self.events: List[Tuple[float, str, Any]] = []
        self._turns: set = set()

    def __call__(self, kind: str, call: Any, data: Any) -> None:
        if kind == "turn":  # a turn reported again (the previous one, cut by a barge-in before the next
            if id(data) in self._turns:  # reply ran) belongs to the step it came from
                return
            self._turns.add(id(data))
        self.events.append((time.monotonic(), kind, data))

    def since(self, n: int, kind: str) -> List[Any]:
        return [d for _, k, d in self.events[n:] if k == kind]


class BenchCall:
    """One emulated call driven through the benchmark's steps."""

    def __init__(self, stack, ch, sess, dialog, rec: Recorder, speed: float, audio: Dict[str, Tuple[bytes, int]]):
        self.stack, self.ch, self.sess, self.dialog, self.rec = stack, ch, sess, dialog, rec
        self.speed = speed
        self.audio = audio
        self.caller = ch.fork.audio
        self.stop_mode = dialog.s.barge_in_mode == "stop"

    # ------------------------------------------------------------------ helpers
    def _mono(self, call_t: float) -> float:
        """Monotonic time of an emulator call time (its playback segments)."""
        return self.ch.t0 + call_t / self.speed

    def say(self, text: str) -> Tuple[float, float]:
        """The caller says ``text``: (first sample out, last sample out), monotonic."""
        t0 = time.monotonic()
        self.ch.say(self.audio[text])
        self.caller.wait_idle(60)
        return t0 + _FRAME_S, time.monotonic()

    def settle(self, quiet_s: float = 1.5, timeout: float = 60.0) -> None:
        """Until the agent has been quiet and the turn loop idle for ``quiet_s`` (a turn still being
        transcribed keeps the loop busy: its audio queues up)."""
        quiet_since = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.ch.hangup_event.is_set():
            d = self.dialog
            busy = (self.sess.speaking or (d.reply is not None and not d.reply.dead) or d.inq.qsize() > 3
                    or not self.caller.idle())
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_s / self.speed:
                return
            gevent.sleep(0.05)

    def _turns(self, n_ev: int, want: int, timeout: float) -> List[Any]:
        _wait(lambda: len(self.rec.since(n_ev, "turn")) >= want, timeout)
        self.settle()
        return self.rec.since(n_ev, "turn")

    def _segments_since(self, t: float) -> List[Dict[str, Any]]:
        return [s for s in self.ch.segments if self._mono(s["end"]) >= t]

    # ------------------------------------------------------------------ complete sentences
    def sentence(self, i: int, text: str) -> Optional[Dict[str, Any]]:
        n_ev, n_pb = len(self.rec.events), len(self.sess.playbacks)
        _, t_last = self.say(text)
        turns = self._turns(n_ev, 1, 90)
        if not turns:
            _say(f"  {i:2d} no answer: {text}")
            return None
        turn = turns[0]
        row = {"turn": i, "caller": text, "heard": turn.heard, "said": turn.said, "turns": len(turns),
               "speculative_hit": turn.speculative_hit, "preemptive": turn.preemptive,
               **{k: v for k, v in turn.timings.items() if not k.startswith("_")}}
        # the answer's first playback: an acknowledgement ("One moment.") said because it was late comes first
        at = n_pb + (1 if turn.ack else 0)
        first = self.sess.playbacks[at] if len(self.sess.playbacks) > at else None
        row["ack"] = bool(turn.ack)
        if first is not None and first.handed_at:
            row["true_v2v_ms"] = (first.handed_at - t_last) * 1000
        if first is not None and first.started_at:
            row["true_v2v_start_ms"] = (first.started_at - t_last) * 1000
        _say(f"  {i:2d} heard {turn.heard!r:52.52} wait {row.get('endpoint_wait_ms', float('nan')):5.0f}  v2v "
             f"{row.get('true_v2v_ms', float('nan')):5.0f}/{row.get('true_v2v_start_ms', float('nan')):5.0f} ms"
             f"{'  SPLIT' if len(turns) > 1 else ''}{'  early' if turn.preemptive else ''}"
             f"{'  after One moment' if turn.ack else ''}")
        return row

    # ------------------------------------------------------------------ hesitations
    def hesitation(self, first: str, gap: float, rest: str) -> Dict[str, Any]:
        key = paused_key(first, gap, rest)
        n_ev = len(self.rec.events)
        self.say(key)
        turns = self._turns(n_ev, 1, 90)
        heard = [t.heard for t in turns]
        # cut: more than one turn, or the one turn lost either part (the first part's answer dropped when the
        # rest barged in over it leaves one turn with the rest only); a part without a word of 3+ letters
        # ("So") is not looked for
        cut = len(turns) != 1 or not all(heard_rest(heard[0], part) for part in (first, rest)
                                         if any(len(w) > 2 for w in _words(part)))
        row = {"utterance": key, "turns": len(turns), "heard": heard, "cut": cut,
               "endpoint_wait_ms": turns[-1].timings.get("endpoint_wait_ms") if turns else None}
        _say(f"  {'CUT' if cut else 'ok '} {key!r:60.60} -> {' | '.join(heard)!r:.70}")
        return row

    # ------------------------------------------------------------------ talking over the agent
    def _story(self) -> Optional[Any]:
        """The caller asks for a long answer: its first playback once it plays (None if it never did)."""
        n_pb = len(self.sess.playbacks)
        self.say(LONG_REQUEST)
        first = _wait(lambda: self.sess.playbacks[n_pb] if len(self.sess.playbacks) > n_pb else None, 60)
        if first is None or not first.started.wait(30):
            _say("  the long answer never started playing")
            return None
        return first

    def over_agent(self, j: int) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """A backchannel over the agent's long answer, then an interruption: (backchannel, barge-in)."""
        if self._story() is None:
            return None, None
        gevent.sleep((0.8 + 0.3 * (j % 3)) / self.speed)  # at different points of the sentence
        bc = BACKCHANNELS[j % len(BACKCHANNELS)]
        n_ev = len(self.rec.events)
        t_on, t_end = self.say(bc)
        _wait(lambda: self.rec.since(n_ev, "barge_in_resume") or self.rec.since(n_ev, "barge_in"),
              (1.5 if self.stop_mode else 8.0) / self.speed)
        resumed, stopped = self.rec.since(n_ev, "barge_in_resume"), self.rec.since(n_ev, "barge_in")
        back = {"said": bc, "t_on": t_on, "t_end": t_end, "resumed": bool(resumed), "stopped": bool(stopped),
                "dialog": (resumed or stopped or [None])[0]}
        if stopped or not self.sess.speaking:
            self.settle()
            if self._story() is None:
                return back, None
        gevent.sleep(1.5 / self.speed)  # the backchannel's own turn is over
        words = INTERRUPTIONS[j % len(INTERRUPTIONS)]
        n_ev2 = len(self.rec.events)
        t_int, _ = self.say(words)
        _wait(lambda: self.rec.since(n_ev2, "barge_in"), 10)
        _wait(lambda: len(self.rec.since(n_ev2, "turn")) >= 2, 60)  # the cut answer, then the interruption's
        self.stack.wait_quiet(self.ch)
        self.settle()
        barge = {"said": words, "t_on": t_int, "dialog": (self.rec.since(n_ev2, "barge_in") or [None])[0]}
        self._truth(back, barge)
        nan = float("nan")
        _say(f"  {bc!r:10} {'resumed' if back['resumed'] else 'STOPPED' if back['stopped'] else 'went on':8}"
             f" end->resumed {back.get('end_to_resume_ms', nan):5.0f} ms | {words!r:48} onset->paused "
             f"{barge.get('onset_to_paused_ms', nan):5.0f}  ->stopped {barge.get('onset_to_stopped_ms', nan):5.0f} ms")
        return back, barge

    def _truth(self, back: Dict[str, Any], barge: Dict[str, Any]) -> None:
        """What the emulated FreeSWITCH did, from its playback segments (paused, resumed, broken)."""
        segs = self._segments_since(back["t_on"])
        pauses = sorted((self._mono(p), self._mono(r), s) for s in segs for p, r in s["pauses"])
        t_int = barge["t_on"]
        bp = next((x for x in pauses if back["t_on"] <= x[0] < t_int), None)
        if bp is not None:
            back["onset_to_paused_ms"] = (bp[0] - back["t_on"]) * 1000
            if back["resumed"]:
                back["paused_for_ms"] = (bp[1] - bp[0]) * 1000
                back["end_to_resume_ms"] = (bp[1] - back["t_end"]) * 1000
        ip = next((x for x in pauses if x[0] >= t_int), None)
        if ip is not None and ip[0] - t_int < 5:
            barge["onset_to_paused_ms"] = (ip[0] - t_int) * 1000
        breaks = sorted(self._mono(s["end"]) for s in segs if s["status"] == "break" and self._mono(s["end"]) >= t_int)
        sent = [t for t in self.sess.barge_ins if t >= t_int]  # uuid_break sent (between two files nothing broke)
        stop = breaks[0] if breaks else (sent[0] if sent else None)
        if stop is not None and stop - t_int < 10:
            barge["onset_to_stopped_ms"] = (stop - t_int) * 1000
            barge["stopped_between_files"] = not breaks
        for d in (back, barge):
            d.pop("t_on", None)
            d.pop("t_end", None)


def run_mode(mode: str, settings, models: Dict[str, Any], audio: Dict[str, Tuple[bytes, int]],
             plan: Dict[str, int], speed: float = 1.0) -> Dict[str, Any]:
    """One call with this mode's settings: every step of ``plan`` (turns, pauses, barge_ins)."""
    from voiceagent.calls.voice_dialog import VoiceServices
    from voiceagent.emulator.stack import EmulatedStack

    services = VoiceServices(settings, transcriber=models["stt"], tts=models["tts"], pool=models["pool"],
                             turn_model=models["turn"])
    services.warm()
    rec = Recorder()
    services.listeners.append(rec)
    dialogs: List[Any] = []

    def factory(call):
        dialogs.append(services.dialog(call))
        return dialogs[-1]

    stack = EmulatedStack(settings, dialog_factory=factory, speed=speed)
    out: Dict[str, Any] = {"mode": mode, "sentences": [], "hesitations": [], "backchannels": [], "barge_ins": []}
    try:
        stack.start()
        ch = stack.call()
        if not ch.wait_answered(15):
            raise RuntimeError("the call was not answered")
        sess = stack.session(ch, 10)
        _wait(lambda: ch.fork is not None and getattr(ch.fork, "audio", None) is not None and dialogs, 10)
        stack.wait_quiet(ch)  # the greeting
        call = BenchCall(stack, ch, sess, dialogs[-1], rec, speed, audio)
        _say(f"[{mode}] {plan['turns']} complete sentences ...")
        for i in range(plan["turns"]):
            row = call.sentence(i + 1, CALLER_SENTENCES[i % len(CALLER_SENTENCES)])
            if row is not None:
                out["sentences"].append(row)
        _say(f"[{mode}] {plan['pauses']} sentences with a hesitation ...")
        for first, gap, rest in PAUSED[:plan["pauses"]]:
            out["hesitations"].append(call.hesitation(first, gap, rest))
        _say(f"[{mode}] {plan['barge_ins']} times a backchannel, then an interruption, over the agent ...")
        for j in range(plan["barge_ins"]):
            back, barge = call.over_agent(j)
            if back is not None:
                out["backchannels"].append(back)
            if barge is not None:
                out["barge_ins"].append(barge)
        out["end_of_turn_decisions"] = [d.model_dump() for d in rec.since(0, "end_of_turn")]
        ch.hangup()
        ch.wait_hangup(5)
    finally:
        stack.stop()
        services.kit.close()
    return out
