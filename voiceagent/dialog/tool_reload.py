"""Reloading the tool plugins without a restart.

``POST /tools/reload`` and ``voiceagent tools reload`` bump a generation in Redis
(``Keys.tools_generation``) and publish it (``Keys.tools_reload``).  Every process holding a registry
follows it: a voice worker's :class:`ToolWatcher` (woken by the publication, and checking every
TOOLS_RELOAD_CHECK_SECONDS in case it missed one), the API before it answers a tools request.

A reload builds a whole new :class:`~.tools.ToolRegistry` from TOOLS_DIRS, every file imported as a
fresh module (new, changed and removed files are all picked up), and swaps it in with one assignment
(:class:`ToolSet`): a tool running in a live call finishes with the code it started with, and each
conversation takes the new set at its next LLM turn (its prompt's capability list follows).

A file that fails to import keeps the tools it had before (a typo saved mid-day must not take a tool
away from every call), and the problem says so (``GET /tools`` lists it); the other files reload.
Redis being down never breaks a call: the watcher logs, keeps the registry it has and tries again.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import gevent
import gevent.lock
import redis
from pydantic import BaseModel, Field

from ..records.keys import Keys
from .tools import Tool, ToolRegistry, tool_dirs

log = logging.getLogger(__name__)

PLUGIN_MODULES = "voiceagent_plugins."  # the module name prefix ToolRegistry.load_file imports under


class ReloadReport(BaseModel):
    """What a reload changed in this process's registry."""

    generation: Optional[int] = Field(default=None, description="The tools generation now in Redis.")
    added: List[str] = Field(default_factory=list, description="Tools that are new.")
    changed: List[str] = Field(default_factory=list, description="Tools whose plugin file changed.")
    removed: List[str] = Field(default_factory=list, description="Tools that are gone (their file removed or "
                                                                 "no longer defining them).")
    kept: List[str] = Field(default_factory=list, description="Tools kept at their previous version because "
                                                              "their file now fails to load.")
    tools: List[str] = Field(default_factory=list, description="Every tool after the reload.")
    problems: List[str] = Field(default_factory=list, description="Plugin problems found by the reload.")


def load_registry(settings: Any, previous: Optional[ToolRegistry] = None) -> ToolRegistry:
    """A new registry from TOOLS_DIRS (as ``ToolRegistry.from_settings``), each file imported afresh;
    the tools of a file that now fails to import are carried over from ``previous``."""
    reg = ToolRegistry(timeout=settings.tool_timeout)
    reg.disabled = frozenset(n.strip() for n in getattr(settings, "tools_disabled", "").split(",") if n.strip())
    old_by_file: Dict[str, List[Tool]] = {}
    if previous is not None:
        for name in previous.names():
            t = previous.get(name)
            if t is not None and t.source:
                old_by_file.setdefault(t.source, []).append(t)
    for d in tool_dirs(settings):
        path = Path(d)
        if not path.is_dir():
            reg.load_dirs([path])  # reports the missing directory
            continue
        for f in sorted(path.glob("*.py")):
            if f.name.startswith("_"):
                continue
            problems = len(reg.errors)
            found = reg.load_file(f)
            failed = not found and len(reg.errors) > problems and str(f) not in reg.digests
            if failed and old_by_file.get(str(f)):
                _carry_over(reg, previous, str(f), old_by_file[str(f)])
    _forget_unloaded_modules(reg)
    return reg


def _carry_over(reg: ToolRegistry, previous: Optional[ToolRegistry], source: str, tools: List[Tool]) -> None:
    kept = []
    for t in tools:
        try:
            reg.add(t)
            kept.append(t.name)
        except Exception as exc:  # a new file took its name meanwhile, or its settings are now invalid
            reg.errors.append(f"tool {t.name} from {source} not kept: {exc}")
    if previous is not None and source in previous.digests:
        reg.digests[source] = previous.digests[source]
    if kept:
        reg.errors.append(f"tool plugin {source}: kept the previously loaded version of {', '.join(kept)}")


def _forget_unloaded_modules(reg: ToolRegistry) -> None:
    """Drop the modules of plugin files no longer loaded (a removed file), so sys.modules does not grow
    with every reload; a tool still running keeps its module alive through its function's globals."""
    live = {t.func.__module__ for n in reg.names() if (t := reg.get(n)) is not None}
    for name in [m for m in sys.modules if m.startswith(PLUGIN_MODULES)]:
        if name not in live:
            sys.modules.pop(name, None)


def compare(old: ToolRegistry, new: ToolRegistry) -> ReloadReport:
    """Added, changed (their file's source differs), removed and kept tools between two registries."""
    before, after = set(old.names()), set(new.names())
    changed = []
    for name in sorted(before & after):
        a, b = old.get(name), new.get(name)
        if a is not None and b is not None and (a.source != b.source or
                                                old.digests.get(a.source) != new.digests.get(b.source)):
            changed.append(name)
    kept = sorted(n for n in after if (t := new.get(n)) is not None and old.get(n) is t)
    return ReloadReport(added=sorted(after - before), changed=changed, removed=sorted(before - after),
                        kept=kept, tools=new.names(), problems=list(new.errors))


class ToolSet:
    """A process's current registry: ``current`` is read once per use, ``reload()`` swaps it whole."""

    def __init__(self, registry: ToolRegistry, settings: Any = None) -> None:
        self._current = registry
        self.settings = settings  # where reloads read TOOLS_DIRS and TOOL_TIMEOUT from
        self.generation: Optional[int] = None  # the Redis generation this registry reflects (None: unknown)
        self._lock = gevent.lock.RLock()  # one reload at a time; readers never wait for it

    @property
    def current(self) -> ToolRegistry:
        return self._current

    def __call__(self) -> ToolRegistry:
        return self._current

    def reload(self, generation: Optional[int] = None) -> ReloadReport:
        if self.settings is None:
            raise RuntimeError("this tool set has no settings to reload from")
        with self._lock:
            old = self._current
            new = load_registry(self.settings, previous=old)
            self._current = new  # the swap: one assignment
            if generation is not None:
                self.generation = generation
            report = compare(old, new)
            report.generation = self.generation
        log.info("tools reloaded (generation %s): added %s, changed %s, removed %s, %d problem(s)",
                 self.generation, report.added, report.changed, report.removed, len(report.problems))
        return report

    def follow(self, client: redis.Redis, keys: Keys) -> Optional[ReloadReport]:
        """Reload if the generation in Redis is not the one this set reflects; raises RedisError."""
        generation = read_generation(client, keys)
        if generation == self.generation:
            return None
        if self.generation is None and generation == 0:
            self.generation = 0  # nothing was ever reloaded: what was loaded at start is current
            return None
        return self.reload(generation)


def read_generation(client: redis.Redis, keys: Keys) -> int:
    raw = client.get(keys.tools_generation)
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def bump_generation(client: redis.Redis, keys: Keys) -> int:
    """Ask every process to reload its tools: the new generation, published to the watchers."""
    generation = int(client.incr(keys.tools_generation))
    client.publish(keys.tools_reload, str(generation))
    return generation


class ToolWatcher:
    """A voice worker's greenlet following the tools generation; never raises, never stops a call."""

    def __init__(self, tools: ToolSet, client: redis.Redis, keys: Keys, interval: float = 2.0) -> None:
        self.tools = tools
        self.client = client
        self.keys = keys
        self.interval = interval
        self._greenlet: Optional[gevent.Greenlet] = None
        self._failing = False

    def start(self) -> "ToolWatcher":
        try:
            self.tools.generation = read_generation(self.client, self.keys)  # what was loaded at start is current
        except redis.RedisError as exc:
            log.warning("tools watcher: Redis unavailable (%s); the first generation read will reload", exc)
        self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None

    def check(self) -> Optional[ReloadReport]:
        """One look at the generation (reloading when it moved); Redis errors are logged once per outage."""
        try:
            report = self.tools.follow(self.client, self.keys)
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("tools watcher: cannot read the tools generation (%s); keeping the current tools", exc)
            self._failing = True
            return None
        except Exception:  # a bug in a reload must not kill the watcher
            log.exception("tools reload failed; keeping the current tools")
            return None
        if self._failing:
            log.info("tools watcher: Redis is back")
        self._failing = False
        return report

    def _run(self) -> None:
        pubsub = None
        while True:
            self.check()
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.tools_reload)
                started = time.monotonic()
                pubsub.get_message(timeout=self.interval)  # a publication wakes us at once
                if time.monotonic() - started < self.interval / 10:
                    gevent.sleep(self.interval / 10)  # never a busy loop, whatever get_message does
            except (redis.RedisError, OSError):
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
                pubsub = None
                gevent.sleep(self.interval)
