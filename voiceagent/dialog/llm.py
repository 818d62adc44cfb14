"""Streaming chat completions with native tool calls, through litellm.

``LlmClient.stream(messages, tools)`` returns an :class:`LlmStream`: an iterator of
:class:`TextDelta` items and, at the end, :class:`ToolCall` items assembled from the streamed
fragments.  A reader greenlet owns the HTTP response, so :meth:`LlmStream.cancel` (barge-in) works
from any greenlet: it kills the reader, which closes the response and the connection — the server
sees the disconnect and stops generating.

Small models often write tool calls as JSON in the message text instead of ``tool_calls``.  Text
that may start such JSON is held back (not spoken) until the end of the stream; if it parses as a
call of an enabled tool it becomes a :class:`ToolCall`, otherwise it is released as text.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import gevent
from gevent.queue import Queue

from ..observability.logs import call_id_var

log = logging.getLogger(__name__)

_litellm = None
_import_lock = threading.Lock()


def litellm_module():
    """Import litellm once, lazily (it takes seconds), offline and without telemetry.

    Call after gevent's monkey-patching (the worker's entry point does that first).
    """
    global _litellm
    if _litellm is None:
        with _import_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list
                os.environ.setdefault("LITELLM_TELEMETRY", "False")
                import litellm

                litellm.telemetry = False
                litellm.suppress_debug_info = True
                litellm.disable_streaming_logging = True
                litellm.turn_off_message_logging = True
                litellm.drop_params = True
                _quiet_service_hooks(litellm)
                _litellm = litellm
    return _litellm


def _quiet_service_hooks(litellm) -> None:
    """litellm times every sync request through ServiceLogging, whose hook runs ``asyncio.run`` on the
    calling greenlet: a fresh asyncio loop per LLM request, under gevent's patched sockets.  Closing
    its self-pipe segfaulted the process (seen once in ~40 e2e runs).  With no service callbacks
    configured the hook does nothing else, so skip it then."""
    try:
        from litellm._service_logger import ServiceLogging
    except ImportError:  # another litellm layout: nothing to quiet
        return
    original = ServiceLogging._dispatch_from_sync

    def dispatch(hook):
        if getattr(litellm, "service_callback", None):
            return original(hook)
        return None

    ServiceLogging._dispatch_from_sync = staticmethod(dispatch)


def warm_up() -> gevent.Greenlet:
    """Start importing litellm in the background so the first call does not pay for it."""
    return gevent.spawn(litellm_module)


# --- stream items --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Dict[str, Any]
    # Set when the arguments could not be decoded; the call is reported back as a failed tool result.
    error: Optional[str] = None
    raw_arguments: str = ""
    from_text: bool = False  # recovered from JSON written in the message text

    def as_message_call(self) -> dict:
        """The ``tool_calls`` entry of the assistant message that goes back to the LLM."""
        args = self.raw_arguments if self.error else json.dumps(self.arguments)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": args}}


class LlmError(Exception):
    """The LLM did not answer usefully. ``kind``: timeout, http, connection, bad_response."""

    def __init__(self, kind: str, message: str, status: Optional[int] = None) -> None:
        super().__init__(f"{kind}: {message}" + (f" (HTTP {status})" if status else ""))
        self.kind = kind
        self.status = status


def _to_llm_error(exc: BaseException) -> LlmError:
    lt = _litellm
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    msg = str(exc).splitlines()[0][:300] if str(exc) else name
    if (lt is not None and isinstance(exc, lt.Timeout)) or isinstance(exc, (TimeoutError, gevent.Timeout)) or "Timeout" in name:
        return LlmError("timeout", msg)
    if lt is not None and isinstance(exc, lt.APIConnectionError) or _caused_by_connection(exc):
        return LlmError("connection", msg)
    if isinstance(status, int) and status >= 400:
        return LlmError("http", msg, status)
    if isinstance(exc, (OSError, ConnectionError)):
        return LlmError("connection", msg)
    return LlmError("bad_response", f"{name}: {msg}")


def _caused_by_connection(exc: BaseException) -> bool:
    """litellm reports a refused connection as "InternalServerError 500": look at the real cause."""
    seen = 0
    cur: Optional[BaseException] = exc
    while cur is not None and seen < 10:
        if type(cur).__name__ in ("ConnectError", "APIConnectionError", "ConnectionRefusedError", "RemoteProtocolError"):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return "Connection error" in str(exc)


_END = object()


class LlmStream:
    """One streaming completion.  Iterate for items; ``cancel()`` from any greenlet."""

    def __init__(self, open_stream: Callable[[], Any], recover_names: Iterable[str], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.started_at = clock()
        self.first_token_at: Optional[float] = None
        self.finished_at: Optional[float] = None
        self.finish_reason: Optional[str] = None
        self.cancelled = False
        self.error: Optional[LlmError] = None
        self.text = ""  # everything the model wrote, including recovered JSON
        self._clock = clock
        self._recover = _TextToolRecovery(set(recover_names))
        self._queue: Queue = Queue()
        self._response = None
        call_id = call_id_var.get()

        def run() -> None:
            call_id_var.set(call_id)
            self._read(open_stream)

        self._reader = gevent.spawn(run)

    @property
    def time_to_first_token(self) -> Optional[float]:
        return None if self.first_token_at is None else self.first_token_at - self.started_at

    def cancel(self) -> None:
        """Stop generating: closes the HTTP response; iteration ends without error."""
        if self.cancelled or self._reader.dead:
            self.cancelled = True
            return
        self.cancelled = True
        self._reader.kill(block=False)
        self._queue.put(_END)

    def __iter__(self) -> Iterator[Union[TextDelta, ToolCall]]:
        while True:
            item = self._queue.get()
            if item is _END or self.cancelled:
                return
            if isinstance(item, LlmError):
                raise item
            yield item

    # --- the reader greenlet ------------------------------------------------------------------
    def _read(self, open_stream: Callable[[], Any]) -> None:
        calls: Dict[int, Dict[str, Any]] = {}
        put = self._queue.put
        try:
            try:
                self._response = open_stream()
                for chunk in self._response:
                    choices = getattr(chunk, "choices", None) or []
                    if not choices:
                        continue
                    choice = choices[0]
                    delta = getattr(choice, "delta", None)
                    if getattr(choice, "finish_reason", None):
                        self.finish_reason = choice.finish_reason
                    if delta is None:
                        continue
                    content = getattr(delta, "content", None)
                    if content:
                        self._mark_first_token()
                        self.text += content
                        for piece in self._recover.feed(content):
                            put(TextDelta(piece))
                    for tc in getattr(delta, "tool_calls", None) or []:
                        self._mark_first_token()
                        index = getattr(tc, "index", None)
                        index = len(calls) if index is None else index
                        slot = calls.setdefault(index, {"id": None, "name": "", "args": ""})
                        if getattr(tc, "id", None):
                            slot["id"] = tc.id
                        fn = getattr(tc, "function", None)
                        if fn is not None:
                            if getattr(fn, "name", None) and not slot["name"]:
                                slot["name"] = fn.name
                            if getattr(fn, "arguments", None):
                                slot["args"] += fn.arguments
                tail, recovered = self._recover.finish()
                if tail:
                    put(TextDelta(tail))
                for index in sorted(calls):
                    slot = calls[index]
                    put(_decode_call(slot["id"] or _new_id(), slot["name"], slot["args"]))
                for call in recovered:
                    put(call)
                if not calls and not recovered and not self.text.strip():
                    log.warning("LLM returned an empty answer (finish_reason=%s)", self.finish_reason)
            except gevent.GreenletExit:
                raise
            except Exception as exc:  # every failure of the HTTP/LLM layer becomes a typed LlmError
                err = _to_llm_error(exc)
                self.error = err
                log.warning("LLM stream failed: %s", err)
                put(err)
        finally:
            self.finished_at = self._clock()
            response, self._response = self._response, None
            if response is not None:
                try:
                    response.close()
                except Exception:  # closing a half-read stream may complain; the socket is gone either way
                    log.debug("closing the LLM response failed", exc_info=True)
            put(_END)

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self._clock()


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:16]


def _decode_call(call_id: str, name: str, raw: str) -> ToolCall:
    raw = raw or ""
    if not raw.strip():
        return ToolCall(call_id, name, {}, raw_arguments="{}")
    try:
        args = json.loads(raw)
    except ValueError as exc:
        return ToolCall(call_id, name, {}, error=f"arguments are not valid JSON ({exc.msg} at position {exc.pos})",
                        raw_arguments=raw)
    if not isinstance(args, dict):
        return ToolCall(call_id, name, {}, error="arguments must be a JSON object", raw_arguments=raw)
    return ToolCall(call_id, name, args, raw_arguments=raw)


# --- tool calls written as text ------------------------------------------------------------------

_TRIGGERS = ("```", "<tool_call>", "{")


class _TextToolRecovery:
    """Holds back text that may be a JSON tool call, and decides at the end of the stream."""

    def __init__(self, names: set) -> None:
        self.names = names
        self._pending = ""  # not yet released (may be the start of a trigger)
        self._held = ""  # from a trigger on: released only if it is not a tool call

    def feed(self, delta: str) -> List[str]:
        if not self.names:
            return [delta]
        if self._held:
            self._held += delta
            return []
        text = self._pending + delta
        self._pending = ""
        positions = [i for i in (text.find(t) for t in _TRIGGERS) if i >= 0]
        if positions:
            cut = min(positions)
            if text[cut] == "{":  # a list of calls: "[ {...}, {...} ]"
                m = re.search(r"\[\s*$", text[:cut])
                cut = m.start() if m else cut
            self._held = text[cut:]
            out = text[:cut]
        else:
            keep = _partial_trigger_suffix(text)
            out, self._pending = text[:len(text) - keep], text[len(text) - keep:]
        return [out] if out else []

    def finish(self) -> Tuple[str, List[ToolCall]]:
        held, pending = self._held, self._pending
        self._held = self._pending = ""
        if not held:
            return pending, []
        calls, rest = extract_text_tool_calls(held, self.names)
        if not calls:
            return held + pending, []
        log.info("recovered %d tool call(s) written as text: %s", len(calls), [c.name for c in calls])
        return (rest + pending) if (rest + pending).strip() else "", calls


def _partial_trigger_suffix(text: str) -> int:
    m = re.search(r"\[\s*$", text)  # may open a list of calls
    best = len(text) - m.start() if m else 0
    for trig in ("```", "<tool_call>"):
        for n in range(min(len(trig) - 1, len(text)), 0, -1):
            if text.endswith(trig[:n]):
                best = max(best, n)
                break
    return best


_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```(?:json|tool_call|tool)?\s*(.*?)\s*(?:```|$)", re.S)


def extract_text_tool_calls(text: str, names: set) -> Tuple[List[ToolCall], str]:
    """Find tool calls of ``names`` written as JSON in ``text``; return them and the remaining text."""
    calls: List[ToolCall] = []
    spans: List[Tuple[int, int]] = []
    for pattern in (_TAG, _FENCE):
        for m in pattern.finditer(text):
            found = _calls_from_json_text(m.group(1), names)
            if found:
                calls.extend(found)
                spans.append(m.span())
        if calls:
            break
    if not calls:
        decoder = json.JSONDecoder()
        i = 0
        while i < len(text):
            if text[i] in "{[":
                try:
                    obj, end = decoder.raw_decode(text, i)
                except ValueError:
                    i += 1
                    continue
                found = _calls_from_obj(obj, names)
                if found:
                    calls.extend(found)
                    spans.append((i, end))
                    i = end
                    continue
            i += 1
    rest, last = [], 0
    for start, end in sorted(spans):
        rest.append(text[last:start])
        last = end
    rest.append(text[last:])
    # "{{...}}" (seen from Qwen) leaves its outer braces behind
    pieces = (p.strip(" \t\n{}[],;") for p in rest) if calls else (p.strip() for p in rest)
    return calls, " ".join(p for p in pieces if p)


def _calls_from_json_text(body: str, names: set) -> List[ToolCall]:
    try:
        obj = json.loads(body)
    except ValueError:
        return []
    return _calls_from_obj(obj, names)


_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _calls_from_obj(obj: Any, names: set) -> List[ToolCall]:
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for item in items:
        if not isinstance(item, dict):
            return []
        if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
            item = item["function"]
        name = item.get("name")
        if not isinstance(name, str):
            return []
        # A call of a tool that does not exist is still a call (and never spoken): the dialog answers it
        # with a failed result.  Only the full shape counts then, so {"name": "Ann"} stays text.
        if name not in names and not (_TOOL_NAME.fullmatch(name) and
                                      isinstance(item.get("arguments", item.get("parameters")), (dict, str))):
            return []
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            out.append(_decode_call(_new_id(), name, args))
        elif isinstance(args, dict):
            out.append(ToolCall(_new_id(), name, args, raw_arguments=json.dumps(args)))
        else:
            out.append(ToolCall(_new_id(), name, {}, error="arguments must be a JSON object", raw_arguments=json.dumps(args)))
    return [ToolCall(c.id, c.name, c.arguments, c.error, c.raw_arguments, from_text=True) for c in out]


# --- the client ----------------------------------------------------------------------------------

class LlmClient:
    """An OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, OpenAI, ...) via litellm."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 20.0,
                 temperature: float = 0.3, max_tokens: int = 300, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        # litellm routes by prefix; a bare name means "an OpenAI-compatible server at base_url".
        self.model = model if "/" in model.split(":")[0] else f"openai/{model}"
        self.api_key = api_key or "none"  # the OpenAI SDK refuses an empty key even when the server needs none
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.clock = clock

    @classmethod
    def from_settings(cls, s) -> "LlmClient":
        return cls(s.llm_base_url, s.llm_model, s.llm_api_key.get_secret_value(), s.llm_timeout,
                   s.llm_temperature, s.llm_max_tokens)

    def stream(self, messages: Sequence[dict], tools: Optional[Sequence[dict]] = None, *,
               recover_names: Optional[Iterable[str]] = None) -> LlmStream:
        """Start a completion.  ``recover_names``: tool names to recover from text (default: ``tools``)."""
        litellm = litellm_module()
        names = [t["function"]["name"] for t in tools or []] if recover_names is None else list(recover_names)
        kwargs: Dict[str, Any] = dict(
            model=self.model, api_base=self.base_url, api_key=self.api_key, messages=list(messages),
            stream=True, timeout=self.timeout, max_retries=0, num_retries=0,
            temperature=self.temperature, max_tokens=self.max_tokens,
        )
        if tools:
            kwargs["tools"] = list(tools)
            kwargs["tool_choice"] = "auto"
        return LlmStream(lambda: litellm.completion(**kwargs), names, clock=self.clock)
