"""A scripted OpenAI-compatible chat-completions server on loopback.

Tests queue :class:`Reply` objects (or install a handler ``(request_json) -> Reply``) and assert on
``server.requests`` — what the LLM really received.  Streaming replies are SSE chunks shaped like
OpenAI's (role delta, content deltas, ``tool_calls`` fragments, finish_reason, ``data: [DONE]``).
A client that closes the stream early is counted in ``server.cancelled`` (barge-in tests).

``rule_based`` serves the runtime's rule-based responder (``voiceagent.dialog.rule_based``, which the
worker runs in process) over HTTP: ``python -m voiceagent.testing.llm_server --port 8000``.
"""
from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer

log = logging.getLogger(__name__)

ToolCallSpec = Tuple[str, Union[dict, str]]  # (name, arguments as dict or raw JSON text)


@dataclass
class Reply:
    """One scripted answer.  Build with the helper functions below."""

    text: str = ""
    tool_calls: Sequence[ToolCallSpec] = ()
    status: int = 200
    error_message: str = "scripted failure"
    delay: float = 0.0  # before the response headers (longer than the client timeout = a timeout)
    chunk_delay: float = 0.0  # between content chunks
    chunk_chars: int = 0  # 0 = one chunk per word
    stall_after: Optional[int] = None  # stop sending (but keep the connection) after this many chunks
    stall_seconds: float = 30.0
    finish_reason: Optional[str] = None


def text(content: str, *, chunk_delay: float = 0.0, chunk_chars: int = 0, delay: float = 0.0,
         stall_after: Optional[int] = None, stall_seconds: float = 30.0) -> Reply:
    return Reply(text=content, chunk_delay=chunk_delay, chunk_chars=chunk_chars, delay=delay,
                 stall_after=stall_after, stall_seconds=stall_seconds)


def tool_call(name: str, arguments: Union[dict, str] = None, *, text: str = "", chunk_delay: float = 0.0) -> Reply:
    return Reply(text=text, tool_calls=[(name, {} if arguments is None else arguments)], chunk_delay=chunk_delay)


def tool_calls(calls: Sequence[ToolCallSpec], *, text: str = "") -> Reply:
    return Reply(text=text, tool_calls=list(calls))


def json_tool_text(name: str, arguments: dict, *, style: str = "plain", prefix: str = "") -> Reply:
    """A tool call written into the message text, the way small models do with tool_choice=auto."""
    body = json.dumps({"name": name, "arguments": arguments})
    if style == "fence":
        body = f"```json\n{body}\n```"
    elif style == "tag":
        body = f"<tool_call>\n{body}\n</tool_call>"
    elif style == "list":
        body = json.dumps([{"name": name, "arguments": arguments}])
    return Reply(text=prefix + body, chunk_chars=7)


def error(status: int = 500, message: str = "scripted server error") -> Reply:
    return Reply(status=status, error_message=message)


def stall(seconds: float) -> Reply:
    """No response headers for ``seconds`` (use more than the client timeout)."""
    return Reply(text="too late", delay=seconds)


Handler = Callable[[dict], Reply]


class ScriptedLlmServer:
    """OpenAI chat-completions on 127.0.0.1 (gevent pywsgi), scripted per test."""

    def __init__(self, replies: Sequence[Reply] = (), *, handler: Optional[Handler] = None,
                 host: str = "127.0.0.1", port: int = 0, model: str = "scripted") -> None:
        self.model = model
        self.handler = handler
        self._queue: Deque[Reply] = deque(replies)
        self.requests: List[dict] = []
        self.cancelled = 0
        self.cancelled_event = Event()
        self.completed = 0
        self._request_event = Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = WSGIServer((host, port), self._app, log=None, error_log=None)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ScriptedLlmServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> "ScriptedLlmServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting -------------------------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._request_event.clear()
            if len(self.requests) >= n:
                break
            self._request_event.wait(remaining)
        return True

    def _next_reply(self, body: dict) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body)
        return error(500, "scripted server: no reply queued for this request")

    # --- WSGI ------------------------------------------------------------------------------
    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return _json(start_response, 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 0, "owned_by": "voiceagent"}]})
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return _json(start_response, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError as exc:
            return _json(start_response, 400, {"error": {"message": f"bad JSON: {exc}", "type": "invalid_request_error"}})
        with self._lock:
            self.requests.append(body)
        self._request_event.set()
        try:
            reply = self._next_reply(body)
        except Exception as exc:  # a broken test handler should show up as a 500, not a hang
            log.exception("scripted handler failed")
            reply = error(500, f"handler raised {exc!r}")
        if reply.delay:
            gevent.sleep(reply.delay)
        if reply.status != 200:
            return _json(start_response, reply.status, {"error": {
                "message": reply.error_message, "type": "server_error", "code": reply.status}})
        cid = f"chatcmpl-{next(self._ids)}"
        if body.get("stream"):
            start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
            return self._sse(reply, cid, body.get("model", self.model))
        return _json(start_response, 200, self._whole(reply, cid, body.get("model", self.model)))

    def _whole(self, reply: Reply, cid: str, model: str) -> dict:
        message: Dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        calls = _calls(reply)
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
                "name": c["name"], "arguments": c["arguments"]}} for c in calls]
        self.completed += 1
        return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply, calls)}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def _sse(self, reply: Reply, cid: str, model: str) -> Iterator[bytes]:
        created = int(time.time())

        def chunk(delta: dict, finish: Optional[str] = None) -> bytes:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            sent = 0
            for piece in _pieces(reply.text, reply.chunk_chars):
                if reply.stall_after is not None and sent == reply.stall_after:
                    # SSE comment lines while stalled: a client that went away is noticed at once
                    end = time.monotonic() + reply.stall_seconds
                    while time.monotonic() < end:
                        gevent.sleep(0.05)
                        yield b": stalled\n\n"
                if reply.chunk_delay:
                    gevent.sleep(reply.chunk_delay)
                yield chunk({"content": piece})
                sent += 1
            calls = _calls(reply)
            for i, c in enumerate(calls):
                yield chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                             "function": {"name": c["name"], "arguments": ""}}]})
                args = c["arguments"]
                for j in range(0, len(args), 8):  # argument fragments, as OpenAI streams them
                    if reply.chunk_delay:
                        gevent.sleep(reply.chunk_delay)
                    yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 8]}}]})
            yield chunk({}, _finish(reply, calls))
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            # pywsgi closes the generator when a write fails: the client went away mid-stream.
            if finished:
                self.completed += 1
            else:
                self.cancelled += 1
                self.cancelled_event.set()


def _pieces(content: str, chunk_chars: int) -> List[str]:
    if not content:
        return []
    if chunk_chars > 0:
        return [content[i:i + chunk_chars] for i in range(0, len(content), chunk_chars)]
    return re.findall(r"\S+\s*|\s+", content)


def _calls(reply: Reply) -> List[dict]:
    out = []
    for name, args in reply.tool_calls:
        out.append({"id": "call_" + uuid.uuid4().hex[:12], "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args)})
    return out


def _finish(reply: Reply, calls: List[dict]) -> str:
    return reply.finish_reason or ("tool_calls" if calls else "stop")


def _json(start_response, status: int, obj: dict) -> List[bytes]:
    data = json.dumps(obj).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# --- the rule-based responder over HTTP (the rules are voiceagent.dialog.rule_based's) ------------

def rule_based(body: dict) -> Reply:
    """The runtime's rule-based answers as a scripted reply (``python -m voiceagent.testing.llm_server``)."""
    from ..dialog.rule_based import rule_based_answer

    names = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
    answer = rule_based_answer(body.get("messages") or [], names)
    return Reply(text=answer.text, tool_calls=list(answer.tool_calls))


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse

    from gevent import monkey

    monkey.patch_all()
    p = argparse.ArgumentParser(description="Serve the rule-based OpenAI-compatible responder on loopback.")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    server = ScriptedLlmServer(handler=rule_based, port=args.port).start()
    print(f"scripted LLM at {server.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
