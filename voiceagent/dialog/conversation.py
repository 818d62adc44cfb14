"""One call's conversation with the LLM: prompt, history, tools, failures, barge-in.

``respond(user_text)`` is a generator of events the session acts on, in order:
:class:`Say` the moment a sentence is complete (TTS starts while the LLM still writes),
:class:`ToolStarted`/:class:`ToolFinished` around each tool, and finally :class:`HangupRequested` or
:class:`TransferRequested` when a tool (or DTMF, or repeated failures) asked for it — after the
goodbye has been yielded, so the session hangs up once that finished playing.

History holds only what the caller heard: after playback the session calls
``record_heard(spoken, interrupted)`` and the assistant messages of the last reply are rewritten to
the sentences that were played, the interrupted one marked as cut off.  The session must call it
(with everything, when nothing was interrupted) or the planned reply stays in the history.

The events are defined in :mod:`.events` and ``DialogKit`` in :mod:`.kit`; both stay importable from
here (calls/ imports them from this module).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Generator, Iterator, List, Optional, Sequence, Union

from .events import Event, HangupRequested, Say, Timings, ToolFinished, ToolStarted, TransferRequested
from .llm_types import ChatModel, ChatStream, LlmError, TextDelta, ToolCall
from .profiles import Profile
from .sentences import SentenceSplitter
from .tools import Clock, ToolContext, ToolRegistry

if TYPE_CHECKING:  # imported at run time by __getattr__ below
    from .kit import DialogKit

log = logging.getLogger(__name__)

CUT_OFF_MARK = " [cut off: the caller interrupted]"
# A reply's first clause is spoken once it has this many characters and reaches a comma (not a whole
# sentence): "It is nine thirty-nine a.m. on Tuesday," plays while the rest is still being written.
FIRST_CLAUSE_CHARS = 30


@dataclass
class _Said:
    message: dict
    sentence: Say


class Conversation:
    def __init__(self, profile: Profile, llm: ChatModel, tools: ToolRegistry, ctx: ToolContext,
                 clock: Optional[Clock] = None, *, history_turns: int = 12, max_tool_rounds: int = 3,
                 max_failures: int = 3, instructions: str = "", opening: Optional[str] = None,
                 tool_source: Optional[Callable[[], ToolRegistry]] = None) -> None:
        self.profile = profile
        self.instructions = instructions  # what an outbound call is for (dialog/purpose.py)
        self.opening = opening            # said instead of the profile's greeting
        self.llm = llm
        self.tools = tools
        self.ctx = ctx
        self.clock = clock or ctx.clock
        ctx.profile = ctx.profile or profile
        ctx.timezone = profile.timezone
        self.history_turns = history_turns
        self.max_tool_rounds = max_tool_rounds
        self.max_failures = max_failures
        self.failures = 0  # consecutive
        self.last_timings: Optional[Timings] = None
        self.tool_source = tool_source  # the current registry after a reload (DialogKit.live)
        self.tool_names: List[str] = []
        self._enable()
        self._turns: List[List[dict]] = []
        self._greeting: Optional[dict] = None
        self._said: List[_Said] = []
        self._stream: Optional[ChatStream] = None
        self._cancelled = False
        self._system: Optional[str] = None
        self._context: Optional[str] = None

    def _enable(self) -> None:
        """The profile's tools that are loaded, not disabled (TOOLS_DISABLED) and can work on this line
        (a transfer without targets is neither offered nor promised)."""
        tools, profile = self.tools, self.profile
        known = [n for n in profile.tools if n in tools and n not in tools.disabled]
        self.tool_names = [n for n in known if (tool := tools.get(n)) is not None and tool.available(profile)]
        missing = sorted(set(profile.tools) - set(tools.names()))
        if missing:
            log.warning("profile %r enables unknown tools %s (loaded: %s)", profile.name, missing, tools.names())

    def _follow_tools(self) -> None:
        """After a reload the next LLM turn sees the new tool set, and the prompt its capabilities."""
        current = self.tool_source() if self.tool_source is not None else self.tools
        if current is not self.tools:
            capabilities = self.capabilities()
            self.tools = current
            self._enable()
            if self.capabilities() != capabilities:
                self._system = None  # re-rendered with the new list (an unchanged one keeps the LLM's cache)

    # --- prompt and history --------------------------------------------------------------------
    def system_prompt(self) -> str:
        """Rendered once per call: a prompt that changes every minute defeats the LLM server's prefix
        cache (llama.cpp re-reads the whole prompt); get_datetime gives the exact time when asked."""
        if self._system is None:
            self._system = self.profile.render_prompt(self.clock.now(), self.ctx.caller, self.ctx.callee,
                                                      capabilities=self.capabilities())
            if self.instructions:
                self._system += "\n\n" + self.instructions
        return self._system

    def capabilities(self) -> str:
        """What the enabled tools let the assistant do, for the prompt's ``{capabilities}``."""
        done = [tool.capability for n in self.tool_names if (tool := self.tools.get(n)) is not None]
        return "; ".join(d for d in done if d)  # empty: the profile renders "you have no tools"

    def messages(self) -> List[dict]:
        """What the LLM receives: the system prompt (current time) + the history window."""
        out = [{"role": "system", "content": self.system_prompt()}]
        if self._context is None:
            self._context = self.profile.render_context(self.clock.now(), self.ctx.caller, self.ctx.callee)
        if self._context:
            out.append({"role": "system", "content": self._context})
        if self._greeting:
            out.append(self._greeting)
        for turn in self._turns[-self.history_turns:]:
            out.extend(turn)
        return out

    @property
    def history(self) -> List[dict]:
        return [m for turn in self._turns for m in turn]

    def greeting(self) -> Optional[Say]:
        """The call's opening, else the profile's greeting (recorded in the history so the LLM knows it was said)."""
        text = self.opening or self.profile.greeting
        if not text:
            return None
        self._greeting = {"role": "assistant", "content": text}
        return Say(text, kind="greeting")

    # --- barge-in ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the reply in progress (from any greenlet); ``respond`` ends after its current step."""
        self._cancelled = True
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def record_heard(self, spoken: Sequence[Union[str, Say]], interrupted: Union[str, Say, None] = None) -> None:
        """Rewrite the last reply in the history to what the caller actually heard."""
        heard = {_key(s) for s in spoken}
        cut = _key(interrupted) if interrupted is not None else None
        contents: Dict[int, List[str]] = {}
        messages: Dict[int, dict] = {}
        for said in self._said:
            mid = id(said.message)
            messages[mid] = said.message
            parts = contents.setdefault(mid, [])
            if _key(said.sentence) in heard or said.sentence.speech in heard:
                parts.append(said.sentence.text)
            elif cut is not None and (_key(said.sentence) == cut or said.sentence.speech == cut):
                parts.append(said.sentence.text + CUT_OFF_MARK)
                cut = None  # everything after the interrupted sentence was not heard
                heard = set()
        for mid, msg in messages.items():
            text = " ".join(contents[mid])
            msg["content"] = text or None
        for turn in self._turns[-1:]:
            turn[:] = [m for m in turn
                       if not (m["role"] == "assistant" and not m.get("content") and not m.get("tool_calls"))]
        self._said = []

    # --- a turn --------------------------------------------------------------------------------
    def respond(self, user_text: str) -> Generator[Event, None, None]:
        self._cancelled = False
        self._said = []
        self._follow_tools()
        turn: List[dict] = [{"role": "user", "content": user_text}]
        self._turns.append(turn)
        del self._turns[:-self.history_turns * 2]  # the window sent is history_turns; keep a little more
        timings = Timings()
        self.last_timings = timings
        started = self.clock.monotonic()
        replied = False  # a reply sentence was yielded in this response
        try:
            for round_no in range(self.max_tool_rounds + 1):
                tools = self.tools.specs(self.tool_names) if round_no < self.max_tool_rounds else None
                timings.llm_rounds += 1
                stream = None
                splitter = SentenceSplitter(first_soft_limit=FIRST_CLAUSE_CHARS)
                message: dict = {"role": "assistant", "content": None}
                sentences: List[Say] = []
                calls: List[ToolCall] = []
                try:
                    stream = self.llm.stream(self.messages(), tools, recover_names=self.tool_names)
                    self._stream = stream
                    if self._cancelled:
                        stream.cancel()
                    for item in stream:
                        if isinstance(item, TextDelta):
                            for s in splitter.feed(item.text):
                                say = self._say(message, sentences, s, timings, started)
                                replied = True
                                yield say
                        elif isinstance(item, ToolCall):
                            calls.append(item)
                    if not self._cancelled:
                        for s in splitter.flush():
                            say = self._say(message, sentences, s, timings, started)
                            replied = True
                            yield say
                except Exception as exc:  # LlmError, or anything unexpected below it: spoken, never a crash
                    if not isinstance(exc, LlmError):
                        log.exception("unexpected error while streaming from the LLM")
                        exc = LlmError("bad_response", f"{type(exc).__name__}: {exc}")
                    self._keep(turn, message if sentences else None)
                    yield from self._failure(exc, timings)
                    return
                except BaseException:  # the consumer left (GeneratorExit) or was killed (barge-in)
                    self._keep(turn, message if sentences else None)  # so record_heard can rewrite it
                    raise
                finally:
                    self._stream = None
                    if stream is not None:
                        stream.cancel()  # no-op when finished; closes the response if the consumer left early
                        if timings.first_token is None and stream.first_token_at is not None:
                            timings.first_token = stream.first_token_at - stream.started_at
                self.failures = 0
                if self._cancelled:
                    timings.cancelled = True
                    self._keep(turn, message if sentences else None)
                    return
                if round_no >= self.max_tool_rounds and calls:
                    log.warning("LLM asked for tools after %d rounds; ignored: %s", round_no, [c.name for c in calls])
                    calls = []
                if calls:
                    message["tool_calls"] = [c.as_message_call() for c in calls]
                self._keep(turn, message if (sentences or calls) else None)
                if not calls:
                    if not replied:
                        log.warning("the LLM answered with nothing to say")
                    elif _is_goodbye(user_text) and sentences and _is_goodbye(sentences[-1].text):
                        # Small models often say goodbye without calling hang_up; a call where both
                        # sides have said goodbye must not linger in silence.
                        log.info("both sides said goodbye: hanging up after the reply")
                        yield HangupRequested("goodbye")
                    return
                # what the tools said (ctx.say, ToolReply.speak): the agent's words, after the tool results
                after: dict = {"role": "assistant", "content": None}
                after_said: List[Say] = []
                for call in calls:
                    timings.tool_calls += 1
                    t = self.tools.get(call.name)
                    if t is not None and t.slow and not replied:
                        replied = True
                        yield Say(self.profile.phrases.pick_thinking(), kind="filler")
                    yield ToolStarted(call.name, call.arguments)
                    said_before = len(self.ctx.said)
                    result = self.tools.run(call.name, call.arguments, self.ctx, allowed=self.tool_names,
                                            decode_error=call.error)
                    content = result.content
                    if result.ok and result.speak:
                        content += f"\n(The caller has just heard this, word for word: {result.speak!r}. " \
                                   "Do not repeat it.)"
                    turn.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content})
                    log.info("tool %s %s in %.3f s", call.name, "ok" if result.ok else "failed", result.seconds)
                    yield ToolFinished(call.name, result.value, result.ok)
                    for text in self.ctx.said[said_before:]:  # already spoken by ctx.on_say, unless none
                        say = self._say(after, after_said, text, timings, started, kind="tool")
                        replied = True
                        if self.ctx.on_say is None:
                            yield say
                    del self.ctx.said[said_before:]
                    if result.ok and result.speak:  # a ToolReply's words, verbatim
                        replied = True
                        yield self._say(after, after_said, result.speak, timings, started, kind="tool")
                self._keep(turn, after if after_said else None)
                if self.ctx.hangup_reason or self.ctx.transfer_to:
                    yield from self._act_on_requests(replied)
                    return
                if self._cancelled:
                    timings.cancelled = True
                    return
        finally:
            _answer_open_calls(turn)
            timings.total = self.clock.monotonic() - started
            log.info("response: first token %s s, first sentence %s s, total %.3f s, %d round(s), %d tool call(s)%s",
                     _fmt(timings.first_token), _fmt(timings.first_sentence), timings.total, timings.llm_rounds,
                     timings.tool_calls, " (cancelled)" if timings.cancelled else "")

    def on_dtmf(self, digit: str) -> Iterator[Event]:
        """A keypad digit: a tool's claim on the keypad (dialog/keypad.py), the profile's mapped action, or
        a message the LLM answers."""
        if self.ctx.keypad is not None:
            from .keypad import keypad_events

            yield from keypad_events(self, digit)
            return
        act = self.profile.dtmf.get(digit)
        if act is None:
            yield from self.respond(f"The caller pressed {digit} on the keypad.")
            return
        if act.action == "llm":
            yield from self.respond(act.text or "")
        elif act.action == "say":
            self._turns.append([{"role": "user", "content": f"The caller pressed {digit} on the keypad."},
                                {"role": "assistant", "content": act.text}])
            yield Say(act.text or "", kind="reply")
        elif act.action == "hangup":
            yield Say(self.profile.phrases.goodbye, kind="goodbye")
            yield HangupRequested("dtmf")
        elif act.action == "transfer":
            dest = self.profile.transfer_destination(act.target)
            if not dest:
                log.error("dtmf %s: no transfer destination in profile %r", digit, self.profile.name)
                yield Say(self.profile.phrases.apology, kind="apology")
                return
            yield Say(self.profile.phrases.transfer, kind="transfer")
            yield TransferRequested(dest)

    # --- helpers -------------------------------------------------------------------------------
    def _say(self, message: dict, sentences: List[Say], text: str, timings: Timings, started: float,
             kind: str = "reply") -> Say:
        say = Say(text, kind=kind)
        sentences.append(say)
        message["content"] = " ".join(s.text for s in sentences)
        self._said.append(_Said(message, say))
        if timings.first_sentence is None:
            timings.first_sentence = self.clock.monotonic() - started
        return say

    @staticmethod
    def _keep(turn: List[dict], message: Optional[dict]) -> None:
        if message is not None and not any(m is message for m in turn):
            turn.append(message)

    def _failure(self, exc: LlmError, timings: Timings) -> Iterator[Event]:
        self.failures += 1
        timings.failed = True
        log.warning("LLM failure %d/%d: %s", self.failures, self.max_failures, exc)
        if self.failures >= self.max_failures:
            yield Say(self.profile.phrases.failure_goodbye, kind="goodbye")
            yield HangupRequested("llm_failures")
        else:
            yield Say(self.profile.phrases.apology, kind="apology")

    def _act_on_requests(self, replied: bool) -> Iterator[Event]:
        ctx = self.ctx
        if ctx.transfer_to:
            dest, ctx.transfer_to = ctx.transfer_to, None
            ctx.hangup_reason = None
            if not replied:
                yield Say(self.profile.phrases.transfer, kind="transfer")
            yield TransferRequested(dest)
        elif ctx.hangup_reason:
            reason, ctx.hangup_reason = ctx.hangup_reason, None
            if not replied:
                yield Say(self.profile.phrases.goodbye, kind="goodbye")
            yield HangupRequested(reason)


def _answer_open_calls(turn: List[dict]) -> None:
    """Every tool call in the history needs a result, or the next request is rejected."""
    answered = {m.get("tool_call_id") for m in turn if m["role"] == "tool"}
    for m in list(turn):
        for call in m.get("tool_calls") or []:
            if call["id"] not in answered:
                turn.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"],
                             "content": '{"error": "not run: the caller interrupted"}'})
                answered.add(call["id"])


def _key(s: Union[str, Say, None]) -> str:
    if isinstance(s, Say):
        return s.text.strip()
    return (s or "").strip()


_GOODBYE = re.compile(r"\b(good\s*-?\s*bye|bye(\s*-?\s*bye)?|farewell|talk to you later)\b", re.I)


def _is_goodbye(text: str) -> bool:
    return bool(_GOODBYE.search(text or ""))


def _fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.3f}"


__all__ = ["Conversation", "DialogKit", "CUT_OFF_MARK", "FIRST_CLAUSE_CHARS", "Event", "HangupRequested", "Say",
           "Timings", "ToolFinished", "ToolStarted", "TransferRequested"]


def __getattr__(name: str) -> type:
    """``DialogKit`` lives in .kit, which builds conversations: imported on first use, not at import
    time, so this module and .kit do not import each other."""
    if name == "DialogKit":
        from .kit import DialogKit

        return DialogKit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
