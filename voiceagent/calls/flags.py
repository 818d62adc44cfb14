"""A gevent Event that is safe to wait on once it is set.

gevent 26's ``Event.wait()`` on an Event that is already set, while the Event's notifier is still
pending, parks the caller on that notifier *without its timeout*; if the Event's last other waiter
unlinks before the notifier runs (an ``iwait``/``gevent.wait`` returning for another object), the
notifier is cancelled and the caller is never woken.  Sessions hit exactly that when many callers
hang up at once: ``_supervise`` sat in ``ended.wait(5)`` forever and the session leaked.
"""
from __future__ import annotations

from typing import Optional

import gevent.event


class Flag(gevent.event.Event):
    """``gevent.event.Event`` whose ``wait()`` returns at once when the flag is already set."""

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self.is_set():
            return True
        return bool(super().wait(timeout))
