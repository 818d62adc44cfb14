"""Answers started early (LiveKit's "preemptive generation").

When the speculative transcript of the caller's first pause is ready (calls/speculation.py), the LLM
is asked already, with the messages the turn would send if the caller stopped there.  The stream is
*held*: read into a buffer, its first sentence synthesized, nothing acted on.

- The turn ends with the same transcript (normalised: case, punctuation, spaces) → ``Conversation``
  asks this call's model for exactly those messages and tools and gets the held stream
  (:meth:`Preemptive.stream` is the conversation's model from the first preemptive start on), so
  the LLM's time and the first sentence's TTS hide inside the end-of-turn silence.
- The caller carries on (a new speculative transcript that differs) or the turn ends differently,
  is a backchannel, or is answered without the LLM → the held stream is cancelled: its HTTP
  response is closed, the server sees the client go away.

Tool calls are never executed preemptively: a held stream is only read, never consumed by the
conversation's tool loop; a tool call it contains waits in the buffer until the turn is confirmed
(and is dropped with the stream otherwise).
"""
from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import gevent
import gevent.queue

from ..dialog.llm_types import ChatModel, ChatStream, LlmError, StreamItem, TextDelta
from .backchannel import is_ignored_backchannel

if TYPE_CHECKING:  # pragma: no cover
    from .turns import Turn
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)

_END = object()


def normalise(text: str) -> str:
    """What two transcripts must share to be the same turn: words, lower case, no punctuation."""
    return " ".join(re.sub(r"[^\w\s']", " ", (text or "").lower()).split())


def _snapshot(messages: Sequence[dict], tools: Optional[Sequence[dict]]) -> str:
    return json.dumps([list(messages), list(tools or [])], sort_keys=True, default=str)


class HeldStream:
    """A preemptive LLM stream: read into a buffer now, replayed to the conversation if the turn is
    confirmed.  ``cancel()`` closes the underlying HTTP stream (from any greenlet)."""

    def __init__(self, transcript: str, snapshot: str, inner: ChatStream, on_first_sentence) -> None:
        self.transcript = transcript  # as Whisper wrote it: the user message sent
        self.text = normalise(transcript)  # what a final transcript must match
        self.snapshot = snapshot
        self.inner = inner
        self.cancelled = False
        self._items: gevent.queue.Queue = gevent.queue.Queue()
        self._on_first_sentence = on_first_sentence
        self._reader = gevent.spawn(self._pump)

    @property
    def started_at(self) -> float:
        return self.inner.started_at

    @started_at.setter
    def started_at(self, value: float) -> None:
        self.inner.started_at = value

    @property
    def first_token_at(self) -> Optional[float]:
        return self.inner.first_token_at

    @first_token_at.setter
    def first_token_at(self, value: Optional[float]) -> None:
        self.inner.first_token_at = value

    def _pump(self) -> None:
        from ..dialog.conversation import FIRST_CLAUSE_CHARS
        from ..dialog.sentences import SentenceSplitter

        splitter: Optional[SentenceSplitter] = SentenceSplitter(first_soft_limit=FIRST_CLAUSE_CHARS)
        try:
            for item in self.inner:
                self._items.put(item)
                if splitter is not None and isinstance(item, TextDelta):
                    first = splitter.feed(item.text)
                    if first:  # the same splitter as the conversation's: the same first sentence
                        splitter = None
                        self._on_first_sentence(first[0])
        except LlmError as exc:
            self._items.put(exc)
        finally:
            self._items.put(_END)

    def cancel(self) -> None:
        self.cancelled = True
        self.inner.cancel()
        self._items.put(_END)

    def __iter__(self) -> Iterator[StreamItem]:
        while True:
            item = self._items.get()
            if item is _END or self.cancelled:
                return
            if isinstance(item, LlmError):
                raise item
            yield item


class Preemptive:
    """One call's preemptive LLM request (at most one held at a time) and its synthesized first sentence.

    Installed as the conversation's chat model at the first preemptive start (``ChatModel``): every
    LLM round of the conversation goes through :meth:`stream`, which hands over the held stream when
    the messages and tools are exactly the ones it was opened with, and otherwise cancels it.
    """

    def __init__(self, dialog: "VoiceDialog") -> None:
        self.dialog = dialog
        self.enabled = bool(getattr(dialog.s, "preemptive_llm", False))
        self.held: Optional[HeldStream] = None
        self.inner: Optional[ChatModel] = None  # the conversation's own model, once wrapped
        self._speech: Dict[str, gevent.Greenlet] = {}  # first sentence's speech -> its synthesis
        self._turn: Optional["Turn"] = None
        self.started = self.used = self.cancelled = 0

    # --- from the speculation and the turn loop -------------------------------------------------
    def start(self, transcript: str) -> None:
        """A speculative transcript is ready: ask the LLM now, unless the held stream answers it already."""
        d = self.dialog
        conv = d.conv
        text = normalise(transcript)
        if not self.enabled or conv is None or d.call.ended.is_set():
            return
        held = self.held
        if held is not None and held.text == text:
            return  # the caller paused again and said nothing new
        self.cancel("the caller carried on")
        if not text or d.purpose.asking or d._agent_talking() or is_ignored_backchannel(d, transcript):
            return  # a reply in progress rewrites the history; a purpose question is not the LLM's
        if self.inner is None:
            self.inner, conv.llm = conv.llm, self
        messages, tools, names = self._request(conv, transcript)
        try:
            inner = self.inner.stream(messages, tools, recover_names=names)
        except Exception as exc:  # noqa: BLE001 - the turn asks again in the ordinary way
            log.warning("preemptive LLM request failed to start: %s", exc)
            return
        self.held = HeldStream(transcript, _snapshot(messages, tools), inner, self._synthesize_first)
        self.started += 1
        log.info("preemptive LLM request started on %r", transcript)

    def settle(self, transcript: str, turn: "Turn") -> str:
        """The turn's final transcript: keep the held stream if it answers it, else cancel it.
        Returns the text to answer ('' = not a turn: nothing said, or a backchannel)."""
        held = self.held
        if transcript and is_ignored_backchannel(self.dialog, transcript):
            log.info("backchannel %r: not answered", transcript)
            self.cancel("a backchannel")
            return ""
        if held is not None and (held.text != normalise(transcript) or self.dialog.purpose.asking):
            self.cancel("the turn ended with another transcript")
        elif held is not None:
            turn.preemptive = True
            self._turn = turn
            return held.transcript  # "Hello" and "Hello." are the same turn: the message the stream answers
        return transcript

    def cancel(self, why: str = "") -> None:
        held, self.held = self.held, None
        if held is not None:
            held.cancel()
            self.cancelled += 1
            log.info("preemptive LLM stream cancelled (%s)", why)
        for g in self._speech.values():
            g.kill(block=False)
        self._speech.clear()

    # --- ChatModel, for the conversation --------------------------------------------------------
    def stream(self, messages: Sequence[dict], tools: Optional[Sequence[dict]] = None, *,
               recover_names: Optional[Iterable[str]] = None) -> ChatStream:
        held, self.held = self.held, None
        turn, self._turn = self._turn, None
        if held is not None and not held.cancelled and held.snapshot == _snapshot(messages, tools):
            self.used += 1
            return held
        if held is not None:
            self.held = held
            self.cancel("the request differs")
        if turn is not None:
            turn.preemptive = False
        assert self.inner is not None
        return self.inner.stream(messages, tools, recover_names=recover_names)

    def synthesize(self, speech: str) -> Tuple[bytes, int]:
        """TTS for a reply sentence: the first one may already be synthesized by the held stream."""
        g = self._speech.pop(speech, None)
        if g is not None:
            result = g.get()
            if result is not None:
                return result
        return self.dialog.svc.tts.synthesize(speech)

    # --- helpers --------------------------------------------------------------------------------
    def _synthesize_first(self, sentence: str) -> None:
        from ..dialog.events import Say

        speech = Say(sentence).speech
        if any(ch.isalnum() for ch in speech):
            self._speech[speech] = gevent.spawn(self._tts, speech)

    def _tts(self, speech: str) -> Optional[Tuple[bytes, int]]:
        try:
            return self.dialog.svc.tts.synthesize(speech)
        except Exception:  # noqa: BLE001 - the reply synthesizes it again
            log.exception("preemptive TTS failed")
            return None

    @staticmethod
    def _request(conv: Any, transcript: str) -> Tuple[List[dict], Optional[List[dict]], List[str]]:
        """The messages, tools and tool names ``Conversation.respond(transcript)`` would send first."""
        conv._follow_tools()
        conv._turns.append([{"role": "user", "content": transcript}])
        try:
            messages = conv.messages()
        finally:
            conv._turns.pop()
        tools = conv.tools.specs(conv.tool_names) if conv.max_tool_rounds > 0 else None
        return messages, tools, list(conv.tool_names)
