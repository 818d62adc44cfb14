"""Streaming chat completions with native tool calls, through litellm.

``LlmClient.stream(messages, tools)`` returns an :class:`LlmStream`: an iterator of
:class:`TextDelta` items and, at the end, :class:`ToolCall` items assembled from the streamed
fragments.  A reader greenlet owns the HTTP response, so :meth:`LlmStream.cancel` (barge-in) works
from any greenlet: it kills the reader, which closes the response and the connection — the server
sees the disconnect and stops generating.

Tool calls written as JSON in the message text are recovered by :mod:`.text_tool_calls`; the
items and the ``ChatModel`` seam are in :mod:`.llm_types` (re-exported here).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Union

import gevent
from gevent.queue import Queue

from ..observability.logs import call_id_var
from .llm_types import LlmError, TextDelta, ToolCall, decode_call, new_call_id
from .text_tool_calls import TextToolRecovery, extract_text_tool_calls

__all__ = ["LlmClient", "LlmStream", "LlmError", "TextDelta", "ToolCall", "extract_text_tool_calls",
           "litellm_module", "warm_up"]

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
    patched: Any = ServiceLogging  # replacing a method of litellm's on purpose
    original = patched._dispatch_from_sync

    def dispatch(hook: Any) -> Any:
        if getattr(litellm, "service_callback", None):
            return original(hook)
        return None

    patched._dispatch_from_sync = staticmethod(dispatch)


def warm_up() -> gevent.Greenlet:
    """Start importing litellm in the background so the first call does not pay for it."""
    return gevent.spawn(litellm_module)


def _to_llm_error(exc: BaseException) -> LlmError:
    lt = _litellm
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    msg = str(exc).splitlines()[0][:300] if str(exc) else name
    if ((lt is not None and isinstance(exc, lt.Timeout)) or isinstance(exc, (TimeoutError, gevent.Timeout))
            or "Timeout" in name):
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
        if type(cur).__name__ in ("ConnectError", "APIConnectionError", "ConnectionRefusedError",
                                  "RemoteProtocolError"):
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
        self._recover = TextToolRecovery(set(recover_names))
        self._queue: Queue = Queue()
        self._response: Any = None  # litellm's stream while the reader runs
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
                    put(decode_call(slot["id"] or new_call_id(), slot["name"], slot["args"]))
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


# --- the client ----------------------------------------------------------------------------------

class LlmClient:
    """An OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, OpenAI, ...) via litellm."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 20.0,
                 temperature: float = 0.3, max_tokens: int = 300, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
