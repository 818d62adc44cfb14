"""What the switch's parts need from the switch: the ``Switch`` Protocol.

``FreeSwitchEmulator`` (core.py) implements it; the channels (channel.py), ESL connections
(esl_server.py), API commands (api_commands.py) and originate (originate.py) are written against it
and import only this module, never core.py: the emulator imports its parts, not the other way round.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Set

if TYPE_CHECKING:  # pragma: no cover  (types only: nothing here is imported at run time)
    from .channel import Channel
    from .dialplan import Dialplan
    from .esl_framing import Command
    from .esl_server import Listener
    from .events import EmEvent, EventFactory
    from .originate import Script


class Switch(Protocol):
    speed: float
    switchname: str
    hostname: str
    password: str
    auth_timeout: float
    temp_dir: str
    global_vars: Dict[str, str]
    dialplan: "Dialplan"
    factory: "EventFactory"
    channels: Dict[str, "Channel"]
    # for status, originate
    sessions_total: int
    peak_sessions: int
    started_at: float
    scripts: Dict[str, "Script"]
    gateways: Optional[Set[str]]
    sip_address: str

    # --- for channels
    def fire(self, ev: "EmEvent") -> None:
        """Deliver an event to every ESL connection that wants it."""

    def api(self, cmd: str, args: str = "", listener: Optional["Listener"] = None) -> str:
        """Run an API command (``${expand(...)}`` in the dialplan, ``api`` on a connection)."""

    def next_session_id(self) -> int: ...

    def variable_profile(self, name: str) -> List[List[str]]:
        """The channel variables a kind of channel starts with (from the captures)."""

    def register(self, ch: "Channel") -> None:
        """A new channel exists (before its first event)."""

    def live_channel(self, uuid: str) -> Optional["Channel"]:
        """The channel unless it is gone or being destroyed."""

    def channel_gone(self, ch: "Channel") -> None:
        """The channel was destroyed (after CHANNEL_DESTROY)."""

    # --- for ESL connections
    def listener_gone(self, lst: "Listener") -> None: ...

    def sendmsg(self, rest: str, cmd: "Command") -> str: ...

    def sendevent(self, rest: str, cmd: "Command") -> str: ...

    def run_bgapi(self, job: str, cmd: str, args: str) -> Any: ...
