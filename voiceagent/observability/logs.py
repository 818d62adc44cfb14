"""JSON (or text) log lines that always carry the call id of the code that wrote them.

The call id lives in a ContextVar.  gevent greenlets do not inherit context variables, so
code that spawns a greenlet for a call uses :func:`spawn_in_call` (or sets the id itself).
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Optional

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="")


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "call_id", ""):
            record.call_id = call_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "call_id", ""):
            out["call_id"] = record.call_id
        for key, value in record.__dict__.get("fields", {}).items():
            out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s %(call_tag)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "call_id", "")
        record.call_tag = f"[{cid[:8]}] " if cid else ""
        return super().format(record)


def setup_logging(level: str = "INFO", fmt: str = "json", stream=None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_voiceagent", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._voiceagent = True  # type: ignore[attr-defined]
    handler.addFilter(_CallIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("websockets", "LiteLLM", "litellm", "httpx", "httpcore", "greenswitch"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def bind_call(call_id: Optional[str]) -> contextvars.Token:
    return call_id_var.set(call_id or "")


def spawn_in_call(call_id: str, fn, *args, **kwargs):
    """gevent.spawn that runs ``fn`` with the call id bound (greenlets start with empty context)."""
    import gevent

    def runner():
        call_id_var.set(call_id)
        return fn(*args, **kwargs)

    return gevent.spawn(runner)
