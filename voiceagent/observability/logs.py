"""JSON (or text) log lines that always carry the call id of the code that wrote them.

The call id lives in a ContextVar.  gevent greenlets do not inherit context variables, so
code that spawns a greenlet for a call uses :func:`spawn_in_call` (or sets the id itself).

A JSON line is one object (python-json-logger): ``ts``, ``level``, ``logger``, ``msg``, then
``call_id`` and ``trace_id``/``span_id`` where they apply (a call's lines name its call span, see
:mod:`.tracing`; an API request's or a job's lines the span it runs in), then whatever the line
passed as ``extra={"fields": {...}}`` (``turn`` and the stage timings on a turn's line) or as plain
``extra`` keys.  With LOG_MASK_NUMBERS phone numbers are masked in the message and in string fields.
"""
from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any, Dict, Optional

from pythonjsonlogger.json import JsonFormatter as _PythonJsonFormatter

from .log_mask import mask_numbers
from .tracing import log_trace_ids

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="")

_NOT_FIELDS = {"fields", "call_tag", "call_id", "trace_id", "span_id", "message", "color_message"}


class _CallIdFilter(logging.Filter):
    """Adds the call id (from the context unless the line named one) and the trace ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "call_id", ""):
            record.call_id = call_id_var.get()
        if not getattr(record, "trace_id", ""):
            record.trace_id, record.span_id = log_trace_ids(getattr(record, "call_id", ""))
        return True


class JsonFormatter(_PythonJsonFormatter):
    """Our field names on python-json-logger: ts, level, logger, msg, call_id, trace_id, span_id, ..."""

    def __init__(self, mask: bool = False) -> None:
        super().__init__(reserved_attrs=[*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, *_NOT_FIELDS])
        self.mask = mask

    def add_fields(self, log_data: Dict[str, Any], record: logging.LogRecord, message_dict: Dict[str, Any]) -> None:
        log_data["ts"] = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                          + f".{int(record.msecs):03d}Z")
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["msg"] = record.message
        for key in ("call_id", "trace_id", "span_id"):
            if getattr(record, key, ""):
                log_data[key] = getattr(record, key)
        super().add_fields(log_data, record, message_dict)  # plain extra keys
        log_data.pop("message", None)  # python-json-logger's name for what we call msg
        log_data.update(record.__dict__.get("fields") or {})
        if "exc_info" in log_data:
            log_data["exc"] = log_data.pop("exc_info")

    def process_log_record(self, log_data: Dict[str, Any]) -> Dict[str, Any]:
        if self.mask:
            for key, value in log_data.items():
                if isinstance(value, str) and key not in ("call_id", "trace_id", "span_id", "ts"):
                    log_data[key] = mask_numbers(value)
        return log_data


class TextFormatter(logging.Formatter):
    """For development: ``time level logger [call id] message k=v ...``."""

    def __init__(self, mask: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s %(call_tag)s%(message)s")
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "call_id", "")
        record.call_tag = f"[{cid[:8]}] " if cid else ""
        line = super().format(record)
        return mask_numbers(line) if self.mask else line


def setup_logging(level: str = "INFO", fmt: str = "json", stream=None, *, mask_numbers: bool = True) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_voiceagent", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._voiceagent = True  # type: ignore[attr-defined]
    handler.addFilter(_CallIdFilter())
    handler.setFormatter(JsonFormatter(mask_numbers) if fmt == "json" else TextFormatter(mask_numbers))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("websockets", "LiteLLM", "litellm", "httpx", "httpcore", "greenswitch"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def setup_from_settings(s: Any, stream=None) -> None:
    """LOG_LEVEL, LOG_FORMAT and LOG_MASK_NUMBERS of a settings object (defaults for the ones it lacks)."""
    setup_logging(getattr(s, "log_level", "INFO"), getattr(s, "log_format", "json"), stream,
                  mask_numbers=getattr(s, "log_mask_numbers", True))


def bind_call(call_id: Optional[str]) -> contextvars.Token:
    return call_id_var.set(call_id or "")


def spawn_in_call(call_id: str, fn, *args, **kwargs):
    """gevent.spawn that runs ``fn`` with the call id bound (greenlets start with empty context)."""
    import gevent

    def runner():
        call_id_var.set(call_id)
        return fn(*args, **kwargs)

    return gevent.spawn(runner)
