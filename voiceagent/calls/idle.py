"""The idle reprompt: a line where nobody has spoken for IDLE_REPROMPT_S gets the profile's
"still there" phrase; after IDLE_REPROMPTS of them in a row with no word from the caller, the
agent says its goodbye and hangs up once the caller has heard it.

Silence is measured on the audio clock (the endpointer's ``t``: caller audio received), so it is
the same at any emulator speed; it restarts whenever the caller speaks, the agent plays something
or a reply is being prepared.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import gevent

if TYPE_CHECKING:  # pragma: no cover
    from .voice_dialog import VoiceDialog

log = logging.getLogger(__name__)


class IdleReprompt:
    def __init__(self, dialog: "VoiceDialog") -> None:
        self.dialog = dialog
        self.after_s = float(getattr(dialog.s, "idle_reprompt_s", 0.0) or 0.0)
        self.max_reprompts = int(getattr(dialog.s, "idle_reprompts", 0) or 0)
        self.reprompts = 0  # said since the caller last spoke
        self.quiet_since: Optional[float] = None
        self.hanging_up = False

    def tick(self, ep) -> None:
        """After each chunk of caller audio fed to the endpointer ``ep``."""
        if not self.after_s or self.hanging_up:
            return
        d = self.dialog
        if ep.in_turn:
            self.reprompts = 0  # the caller is talking (a turn, not a click)
        if self.quiet_since is None or ep.speaking or ep.in_turn or d._agent_talking():
            self.quiet_since = ep.t
            return
        if ep.t - self.quiet_since < self.after_s:
            return
        self.quiet_since = ep.t
        profile = d.profile
        if profile is None:
            return
        if self.reprompts < self.max_reprompts:
            self.reprompts += 1
            log.info("idle for %.1f s: reprompt %d/%d", self.after_s, self.reprompts, self.max_reprompts)
            d._say_fixed(profile.phrases.still_there, kind="reprompt")
            return
        log.info("idle after %d reprompt(s): saying goodbye", self.reprompts)
        self.hanging_up = True
        pb = d._say_fixed(profile.phrases.goodbye, kind="goodbye")
        d.spawn(self._hang_up_when_heard, pb)

    def _hang_up_when_heard(self, pb) -> None:
        d = self.dialog
        gevent.wait([pb.finished, d.call.ended], count=1, timeout=pb.duration + 30)
        d._hangup_requested = True
        d.call.hangup()
        d.inq.put(("wake", None))
