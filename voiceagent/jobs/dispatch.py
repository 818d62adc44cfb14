"""Where every outbound call enters the system: ``Dispatcher.submit(request, priority=...)``.

The API, webhooks, schedules and tools submit through here, never through the call client
directly, so the queue (priorities, depth limit, the cluster-wide call limit, retries) applies to
all of them alike.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

import redis

from ..records.client import CallClient
from ..records.models import CallRequest

Priority = Literal["high", "bulk"]


class Dispatcher:
    """Submits outbound calls.  ``high`` is for calls a person asked for now (API, webhooks);
    ``bulk`` for scheduled and batch calls, dialed when no ``high`` call waits."""

    def __init__(self, client: CallClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, s: Any, client: Optional[redis.Redis] = None) -> "Dispatcher":
        return cls(CallClient.from_settings(s, client))

    def submit(self, request: CallRequest, *, priority: Priority = "high") -> str:
        """Queue ``request``; returns the call id.  Raises pydantic.ValidationError, DialRefused."""
        return self.client.place(request)
