"""Finds gevent selectors left watching a descriptor that has been closed (or reused) under them.

gevent's ``selectors.DefaultSelector`` keeps one libev io watcher per registered file, active
from ``select()`` until it fires or the file is unregistered.  A selector that is dropped without
``close()`` after one of its files was closed keeps that watcher active for the rest of the
process: the loop holds it, so it is never collected.  The descriptor number is then reused by
later sockets and pipes, and libev's state for it no longer matches the kernel's: gevent defers
the close of every later socket on that number (a port is still bound a moment after
``close()``: EADDRINUSE), and the next time libev rebuilds its epoll set (after a fork, or when
epoll reports a descriptor it cannot update) its ``epoll_ctl`` for that watcher fails with EBADF:
"libev: I/O watcher with invalid fd found in epoll_ctl", abort() ("Fatal Python error: Aborted"
in the hub; tests/watcher_abort_scenario.py).  websockets' ``Server.serve_forever`` does exactly
that (its poller is never closed).

``install()`` records, for each registration, which file the descriptor was; ``stale()`` lists
the active watchers whose descriptor is no longer that file.  The root conftest fails the test
that leaves one.
"""
from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass
from typing import List, Optional, Tuple

from gevent import selectors as gevent_selectors

_selectors: "weakref.WeakSet" = weakref.WeakSet()
_installed = False


@dataclass(frozen=True)
class StaleWatcher:
    selector: object
    fd: int
    registered_at: str

    def __str__(self) -> str:
        return f"descriptor {self.fd}, registered at {self.registered_at}"


def _identity(fd: int) -> Optional[Tuple[int, int]]:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _caller() -> str:
    """The first frames outside selectors.py: who registered (cheap: no traceback objects)."""
    f = sys._getframe(2)
    out = []
    while f is not None and len(out) < 3:
        name = f.f_code.co_filename
        if not name.endswith("selectors.py"):
            out.append(f"{os.path.basename(name)}:{f.f_lineno}")
        f = f.f_back
    return " < ".join(out)


def install() -> None:
    """Wrap ``GeventSelector.register`` once (the test process only)."""
    global _installed
    if _installed:
        return
    _installed = True
    original = gevent_selectors.GeventSelector.register

    def register(self, fileobj, events, data=None):
        key = original(self, fileobj, events, data)
        if not hasattr(self, "_guard_files"):
            self._guard_files = {}
            _selectors.add(self)
        during = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        self._guard_files[key.fd] = (_identity(key.fd), _caller() + (f" during {during}" if during else ""))
        return key

    gevent_selectors.GeventSelector.register = register


def stale() -> List[StaleWatcher]:
    out = []
    for sel in list(_selectors):
        active = getattr(sel, "_active_watchers", None)
        if active is None:  # closed
            _selectors.discard(sel)
            continue
        files = getattr(sel, "_guard_files", {})
        for fd, watcher in list(active.items()):
            known = files.get(fd)
            if known is not None and watcher.active and _identity(fd) != known[0]:
                out.append(StaleWatcher(sel, fd, known[1]))
    return out


def close_selectors(found: List[StaleWatcher]) -> None:
    """Stop the leaked watchers so that the next tests do not inherit them."""
    for s in {id(w.selector): w.selector for w in found}.values():
        try:
            s.close()
        except Exception:
            pass
