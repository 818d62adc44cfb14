"""What a tool plugin may use besides its context: its own settings, a rich reply, an HTTP client.

- :class:`ToolSettings`: a plugin's settings section (``@tool(..., settings=TempestSettings)``), read
  from the environment with the core sections' rules (upper-case names, validation naming the
  variable, secrets masked by ``voiceagent config``).  A bad value makes the plugin a load problem
  (``GET /tools`` lists it) instead of a crash; the tool reads its instance as ``ctx.settings``.
- :class:`ToolReply`: what a tool returns when plain text or a dict is not enough: the text the LLM
  reads, words to speak verbatim (not left to the LLM to paraphrase: a weather report, a confirmation
  with a time in it) and structured data kept in the call record.
- :class:`HttpClient`: ``ctx.http``: requests with a timeout always set (a plugin cannot hang a call
  on a server that never answers) and redirects limited.
- :class:`FreshSource`: how the registry imports a plugin file (from its source, every time).
"""
from __future__ import annotations

import importlib.machinery
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import requests

from ..config.base import Section

DEFAULT_HTTP_TIMEOUT = 5.0     # seconds per request unless the tool asks for less
MAX_REDIRECTS = 3


class ToolSettings(Section):
    """Base of a plugin's settings: declare fields with defaults and descriptions, as core sections do.

    ``title`` defaults to the tool's name in ``voiceagent config``."""

    title: ClassVar[str] = ""

    def ready(self) -> bool:
        """Whether these settings let the tool work at all (a weather station named, a token given); a tool
        whose settings are not ready is neither offered to the LLM nor promised in the prompt."""
        return True


@dataclass
class ToolReply:
    text: str                       # what the LLM reads as the tool's result
    speak: Optional[str] = None     # said to the caller word for word, before the LLM goes on
    data: Any = None                # kept in the call record (TurnRecord.tools[].result)

    def value(self) -> Any:
        """The result as recorded: the data (or the text) plus what was spoken."""
        out: dict = {"text": self.text}
        if self.speak:
            out["speak"] = self.speak
        if self.data is not None:
            out["data"] = self.data
        return out


class HttpClient:
    """``requests`` with a bounded timeout on every call."""

    def __init__(self, timeout: float = DEFAULT_HTTP_TIMEOUT) -> None:
        self.timeout = timeout
        self._session = requests.Session()
        self._session.max_redirects = MAX_REDIRECTS

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        asked = kw.pop("timeout", None)
        kw["timeout"] = min(float(asked), self.timeout) if isinstance(asked, (int, float)) else self.timeout
        return self._session.request(method, url, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.request("POST", url, **kw)


class FreshSource(importlib.machinery.SourceFileLoader):
    """Compiles a plugin from its source on every load: a cached ``.pyc`` is trusted by mtime (whole
    seconds) and size, so a file changed twice within a second would otherwise reload its old code."""

    def get_code(self, fullname: str) -> Any:
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)
