"""The tool contract and registry.

A tool is a name, a description, a pydantic model for its parameters (the JSON schema the LLM sees
is generated from it) and ``run(args, ctx) -> str | dict``.  Plugins are ``.py`` files in the tool
directories; every module-level :class:`Tool` (usually made with the :func:`tool` decorator) is
registered.  The built-ins are plugins too (``tools/`` in the repository).

Nothing a plugin or the LLM does may crash a call: import errors are logged and the plugin skipped,
duplicate names are refused with a message naming both files, bad arguments and exceptions become a
failed tool result (``{"error": ...}``) that goes back to the LLM.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Type, Union
from zoneinfo import ZoneInfo

import gevent
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config.base import config_error
from ..observability.ops_metrics import tool_ran
from .tool_result import ToolResult
from .tool_support import FreshSource, HttpClient, ToolReply, ToolSettings

log = logging.getLogger(__name__)


class NoArgs(BaseModel):
    """For tools without parameters."""

    model_config = ConfigDict(extra="ignore")


class Clock:
    """Wall clock (aware UTC) and monotonic time; tests pass a fixed one."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock(Clock):
    def __init__(self, now: datetime) -> None:
        self._now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._now


@dataclass
class ToolContext:
    """What a tool may know about and ask of the call (``ctx``, the second argument of every tool).

    What it knows:

    - ``call_id``: the call's id (the FreeSWITCH uuid; '' when run from the API without a call);
    - ``caller``/``callee``: the numbers as the call has them (E.164 when the carrier gives it);
    - ``direction``: ``inbound``, ``outbound``, or ``api`` (``POST /tools/{name}/execute``);
    - ``profile``: the line's :class:`~.profiles.Profile` (None from the API); ``timezone``: its zone,
      ``local_now()`` the time there;
    - ``clock``: :class:`Clock` (``now()`` aware UTC, ``monotonic()``); tests pass a :class:`FixedClock`;
    - ``settings``: the running tool's own :class:`~.tool_support.ToolSettings` instance (None without one);
    - ``http``: :class:`~.tool_support.HttpClient`, requests with a bounded timeout;
    - ``extra``: free-form facts the caller of the tool adds (``at_answer`` for a tool run at answer).

    What it may ask:

    - ``say(text)``: speak into the call right now, while the tool goes on ("one moment, I am looking
      that up"); the words are the agent's, recorded in the turn and in the LLM's history.  Without a
      call (API, tests) the words are only kept in ``said``.  Synthesis counts against TOOL_TIMEOUT.
    - ``hangup(reason)``/``transfer(destination)``: only record a request: the conversation acts on it
      after the current reply (a goodbye is spoken first).  ``on_hangup``/``on_transfer`` let the
      session observe requests immediately if it wants to.

    To say words verbatim *after* the tool (rather than while it runs) return a
    :class:`~.tool_support.ToolReply` with ``speak``.  (Scheduling capabilities are documented below
    as they are added.)
    """

    call_id: str = ""
    caller: str = ""
    callee: str = ""
    direction: str = "inbound"
    timezone: str = "UTC"
    profile: Any = None
    clock: Clock = field(default_factory=Clock)
    extra: Dict[str, Any] = field(default_factory=dict)
    settings: Any = None                # the running tool's own settings (ToolSettings), set by the registry
    http: HttpClient = field(default_factory=HttpClient)
    on_hangup: Optional[Callable[[str], None]] = None
    on_transfer: Optional[Callable[[str], None]] = None
    hangup_reason: Optional[str] = None
    transfer_to: Optional[str] = None
    # the caller's timers, callbacks and briefings (schedules/caller.py CallerScheduler: timer, callback,
    # briefing, mine, cancel); set by the voice worker, None where nothing can be scheduled (the API's execute)
    scheduler: Any = None

    on_say: Optional[Callable[[str], None]] = None   # the call speaks ctx.say's words (voice dialog)
    said: List[str] = field(default_factory=list)    # what ctx.say asked to speak, in order
    keypad: Any = None  # a tool's claim on the call's next digits (dialog/keypad.py KeypadClaim), or None

    def say(self, text: str) -> None:
        """Speak ``text`` into the call now (see the class docstring); empty text is ignored."""
        text = " ".join(str(text or "").split())
        if not text:
            return
        self.said.append(text)
        if self.on_say:
            self.on_say(text)

    def claim_keypad(self, claim: Any) -> None:
        """Send the call's next digits to ``claim.press(digit)`` (dialog/keypad.py) until it says done."""
        self.keypad = claim

    def release_keypad(self, claim: Any = None) -> None:
        """Give the keypad back (only if ``claim``, when given, still holds it)."""
        if claim is None or self.keypad is claim:
            self.keypad = None

    def hangup(self, reason: str = "assistant") -> None:
        self.hangup_reason = reason
        if self.on_hangup:
            self.on_hangup(reason)

    def transfer(self, destination: str) -> None:
        self.transfer_to = destination
        if self.on_transfer:
            self.on_transfer(destination)

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(ZoneInfo(self.timezone))


class ToolError(Exception):
    """Raise from a tool for an expected failure; the message goes to the LLM as is."""


class PluginError(Exception):
    pass


ToolFunc = Callable[[BaseModel, ToolContext], Union[str, dict, list, ToolReply]]


class Tool:
    def __init__(self, name: str, description: str, params: Type[BaseModel], func: ToolFunc, *,
                 slow: bool = False, capability: str = "",
                 available: Optional[Callable[[Any], bool]] = None,
                 settings: Optional[Type[ToolSettings]] = None) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(f"tool name {name!r} must be letters, digits, '_' or '-'")
        self.name = name
        self.description = description.strip()
        self.params = params
        self.func = func
        self.slow = slow  # the conversation says a "thinking" phrase before running it
        # What the system prompt says the assistant can do with it ("tell the date and time"); the
        # prompt lists only what the enabled, available tools do, so the agent never claims more.
        self.capability = capability.strip() or self.description.split(".")[0].strip()
        self._available = available
        self.source = ""
        self.settings_model = settings
        self.config: Optional[ToolSettings] = None  # its settings, read when registered

    def load_settings(self) -> None:
        """Read the tool's settings from the environment; raises PluginError naming the variable."""
        if self.settings_model is None:
            return
        try:
            self.config = self.settings_model()
        except ValidationError as exc:
            raise PluginError(f"tool {self.name} skipped: {config_error(exc)}") from None

    def available(self, profile: Any) -> bool:
        """Whether the tool can work on a line with this profile (e.g. a transfer needs targets)."""
        if self.config is not None and not self.config.ready():
            return False
        if self._available is None:
            return True
        try:
            return bool(self._available(profile))
        except Exception:  # a plugin's check must not break a call
            log.exception("tool %s: availability check failed; treating it as unavailable", self.name)
            return False

    def spec(self) -> dict:
        """The OpenAI ``tools`` entry."""
        schema = self.params.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        schema["type"] = "object"
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": schema}}

    def __call__(self, args: BaseModel, ctx: ToolContext):
        return self.func(args, ctx)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def tool(name: Optional[str] = None, description: Optional[str] = None,
         params: Optional[Type[BaseModel]] = None, *, slow: bool = False, capability: str = "",
         available: Optional[Callable[[Any], bool]] = None,
         settings: Optional[Type[ToolSettings]] = None) -> Callable[[ToolFunc], Tool]:
    """Make a function ``(args, ctx)`` a tool.  Parameters come from ``params`` or the annotation of
    the first argument; the description defaults to the docstring.  ``capability`` is how the system
    prompt describes what the tool lets the assistant do (default: the description's first sentence);
    ``available(profile)`` hides the tool on lines where it cannot work; ``settings`` is the plugin's own
    :class:`ToolSettings` (read at registration, given to the tool as ``ctx.settings``)."""

    def wrap(func: ToolFunc) -> Tool:
        model = params
        if model is None:
            first = next(iter(inspect.signature(func).parameters.values()), None)
            ann = first.annotation if first is not None else None
            if isinstance(ann, str):
                ann = func.__globals__.get(ann)
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else NoArgs
        desc = description or inspect.getdoc(func) or ""
        if not desc:
            raise PluginError(f"tool {name or func.__name__!r} needs a description (docstring)")
        return Tool(name or func.__name__, desc, model, func, slow=slow, capability=capability, available=available,
                    settings=settings)

    return wrap


def builtin_tools_dir() -> Path:
    """The repository's ``tools/``; for a non-editable install, the copy installed as data files."""
    repo = Path(__file__).resolve().parents[2] / "tools"
    if repo.is_dir():
        return repo
    return Path(sysconfig.get_path("data")) / "share" / "voiceagent" / "tools"


def tool_dirs(s) -> List[str]:
    """TOOLS_DIRS as a list; the built-ins when it is empty."""
    return [d.strip() for d in s.tools_dirs.split(",") if d.strip()] or [str(builtin_tools_dir())]


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = (), *, timeout: float = 10.0) -> None:
        self._tools: Dict[str, Tool] = {}
        self.errors: List[str] = []  # plugin problems, for `voiceagent check`-style reporting
        self.timeout = timeout
        self.disabled: frozenset = frozenset()  # TOOLS_DISABLED: loaded, listed, never offered nor run by a call
        self.digests: Dict[str, str] = {}  # plugin file -> sha1 of the source it was loaded from (reloads)
        for t in tools:
            self.add(t)

    @classmethod
    def from_settings(cls, s) -> "ToolRegistry":
        reg = cls(timeout=s.tool_timeout)
        reg.disabled = frozenset(n.strip() for n in getattr(s, "tools_disabled", "").split(",") if n.strip())
        reg.load_dirs(tool_dirs(s))
        return reg

    # --- registration -----------------------------------------------------------------------
    def add(self, t: Tool) -> None:
        if t.name in self._tools:
            other = self._tools[t.name].source or "code"
            raise PluginError(f"duplicate tool name {t.name!r} in {t.source or 'code'} (already defined in {other})")
        t.load_settings()
        self._tools[t.name] = t

    def load_dirs(self, dirs: Sequence[Union[str, Path]]) -> None:
        for d in dirs:
            path = Path(d)
            if not path.is_dir():
                self._problem(f"tool directory {path} does not exist")
                continue
            for f in sorted(path.glob("*.py")):
                if not f.name.startswith("_"):
                    self.load_file(f)

    def load_file(self, path: Union[str, Path]) -> List[Tool]:
        """Import one plugin and register its tools; problems are logged, never raised."""
        path = Path(path)
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        mod_name = f"voiceagent_plugins.{path.stem}_{digest}"
        try:
            source = path.read_bytes()
            spec = importlib.util.spec_from_file_location(mod_name, path, loader=FreshSource(mod_name, str(path)))
            if spec is None or spec.loader is None:
                raise PluginError("not a Python module")
            module = importlib.util.module_from_spec(spec)  # a fresh module on every load (reload)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            self.digests[str(path)] = hashlib.sha1(source).hexdigest()
        except (Exception, SystemExit) as exc:
            sys.modules.pop(mod_name, None)
            self._problem(f"tool plugin {path} failed to load, skipped: {type(exc).__name__}: {exc}")
            return []
        found: List[Tool] = []
        defined = [v for v in vars(module).values() if isinstance(v, Tool)]
        for value in defined:
            if value not in found:
                value.source = str(path)
                try:
                    self.add(value)
                except PluginError as exc:
                    dup = str(exc).startswith("duplicate")
                    self._problem(str(exc) + ("; the later one is ignored" if dup else ""))
                    continue
                found.append(value)
        if not defined:
            self._problem(f"tool plugin {path} defines no tools")
        return found

    def _problem(self, message: str) -> None:
        self.errors.append(message)
        log.error(message)

    # --- use ----------------------------------------------------------------------------------
    def get(self, name: str) -> Optional[Tool]:
        return self._tools.get(name)

    def names(self) -> List[str]:
        return sorted(self._tools)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def specs(self, names: Optional[Iterable[str]] = None) -> List[dict]:
        """``tools`` for the LLM: the enabled ones that exist (unknown names are logged once each)."""
        if names is None:
            return [self._tools[n].spec() for n in sorted(self._tools)]
        out = []
        for n in names:
            if n in self._tools:
                out.append(self._tools[n].spec())
            else:
                log.warning("profile enables unknown tool %r (known: %s)", n, ", ".join(self.names()))
        return out

    def run(self, name: str, arguments: Union[dict, str, None], ctx: ToolContext, *,
            allowed: Optional[Iterable[str]] = None, decode_error: Optional[str] = None) -> ToolResult:
        """Validate and run a call from the LLM (counted in the tool metrics).  Never raises (except GreenletExit)."""
        result = self._run(name, arguments, ctx, allowed=allowed, decode_error=decode_error)
        tool_ran(name, name in self._tools, result.ok, result.seconds)
        return result

    def _run(self, name: str, arguments: Union[dict, str, None], ctx: ToolContext, *,
             allowed: Optional[Iterable[str]], decode_error: Optional[str]) -> ToolResult:
        started = time.monotonic()

        def fail(message: str, exc: Optional[BaseException] = None) -> ToolResult:
            # one line per failure (a raise carries its traceback), with the call id the log context binds
            log.warning("tool %s failed: %s", name, message, exc_info=exc)
            return ToolResult(name, False, {"error": message}, time.monotonic() - started)

        t = self._tools.get(name)
        if t is None or (allowed is not None and name not in set(allowed)):
            # a small model "calls" tools it wishes it had (set_timer, send_email): say so in a way that
            # makes it tell the caller plainly instead of pretending
            return fail(f"unknown tool {name!r}: nothing was done. Tell the caller in plain words that you "
                        "cannot do that (do not name any tool or function).")
        if decode_error:
            return fail(f"invalid arguments for {name}: {decode_error}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError as exc:
                return fail(f"invalid arguments for {name}: not valid JSON ({exc})")
        try:
            args = t.params.model_validate(arguments or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            # small models read this back verbatim ("Sorry, I can't schedule_callback with arguments: Value
            # error ..."): tell it what to do with it instead
            return fail(f"invalid arguments for {name}: {problems}. Nothing was done. Ask the caller in plain "
                        "words for what is missing or unclear; never read this message or a tool's name aloud.")
        ctx.settings = t.config
        try:
            with gevent.Timeout(self.timeout, ToolError(f"timed out after {self.timeout:g} s")):
                value = t(args, ctx)
        except ToolError as exc:
            return fail(str(exc))
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            return fail(f"{type(exc).__name__}: {exc}", exc)
        if isinstance(value, ToolReply):
            return ToolResult(name, True, value.value(), time.monotonic() - started, speak=value.speak,
                              text=value.text)
        if value is None:
            value = {"ok": True}
        if not isinstance(value, (str, dict, list)):
            value = str(value)
        return ToolResult(name, True, value, time.monotonic() - started)
