"""The typed seams inside a worker: what a session needs from its worker, what a dialog needs from its
call, and what an observer of calls is told.  Fakes implementing these are enough to run a session
or a dialog in a test; nothing probes across these joins with getattr.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, runtime_checkable

import gevent
import gevent.queue

from .call_state import CallState, Direction, TurnState
from .flags import Flag
from .playback import Playback
from .turns import Turn

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings
    from ..telephony.commands import FreeSwitch


@dataclass(frozen=True)
class CallInfo:
    """Who a call is, for observers: fixed once the call is known (caller ids come from FreeSWITCH)."""

    id: str
    direction: Direction
    caller: str
    callee: str
    node: str
    worker: str
    profile: Optional[str] = None
    request_id: Optional[str] = None
    trace_parent: str = ""             # W3C traceparent of the request/job that placed it ('' = none)


@dataclass
class CallEvent:
    """Something a dialog may react to (on ``CallPort.events``): ``kind`` is 'dtmf', 'command', 'fork_text'."""

    kind: str
    value: Any


@runtime_checkable
class CallObserver(Protocol):
    """Told about every call of a worker (call records, event streams).  Every time is wall clock."""

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None: ...

    def call_turn(self, call: CallInfo, turn: Turn) -> None: ...

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None: ...

    def call_barge_in(self, call: CallInfo, at: float) -> None: ...

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None: ...  # refused: why the worker did not take it ('' if it did)


class ForkLink(Protocol):
    """A mod_audio_fork WebSocket as a session uses it (telephony.fork_server.ForkConnection)."""

    closed: bool
    remote: str
    metadata: Dict[str, Any]
    sample_rate: int
    authenticated: bool

    def mark_established(self) -> None: ...

    def send_play_audio(self, audio: bytes, *, sample_rate: int, content_type: str = "wav",
                        text: Optional[str] = None) -> None: ...

    def send_kill_audio(self) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class NodePort(Protocol):
    """The FreeSWITCH node a call lives on (calls.node_link.NodeLink)."""

    name: str
    fs: "FreeSwitch"

    def fs_async(self, method: str, *args: Any, on_error: Optional[Callable[[Exception], None]] = None,
                 **kwargs: Any) -> None: ...


class Dialog(Protocol):
    """Anything that drives a call: ``run(call)`` returns when it is done talking."""

    def run(self, call: "CallPort") -> None: ...


class TalkingDialog(Dialog, Protocol):
    @property
    def turn_state(self) -> TurnState: ...


@runtime_checkable
class SessionHost(Protocol):
    """What a session needs from its worker (calls.worker.VoiceWorker)."""

    settings: "Settings"
    worker_id: str
    notify: CallObserver   # the worker's observers, called safely

    def spawn(self, fn: Callable[..., Any], *args: Any, call_id: Optional[str] = None,
              **kwargs: Any) -> gevent.Greenlet: ...

    def fork_url_for(self, call_id: str) -> str: ...

    def fork_metadata(self, sess: Any) -> Dict[str, Any]: ...

    def store_update(self, sess: Any, **fields: Any) -> None: ...

    def log_refusal(self, kind: str, msg: str, *args: Any) -> None: ...

    def metrics_refused(self, reason: str) -> None: ...

    def make_dialog(self, sess: Any) -> Dialog: ...

    def session_closed(self, sess: Any) -> None: ...


@runtime_checkable
class CallPort(Protocol):
    """What a dialog needs from its call (calls.session.CallSession)."""

    id: str
    direction: Direction
    caller: str
    callee: str
    profile: Optional[str]
    request: Optional[object]          # the CallRequest an outbound call was placed for (opaque here)
    sample_rate: int
    events: gevent.queue.Queue         # CallEvent: dtmf, inbox commands, fork text
    ended: Flag
    barge_ins: List[float]             # monotonic times uuid_break was sent

    @property
    def speaking(self) -> bool: ...

    @property
    def audio_clock(self) -> float: ...

    def set_audio_sink(self, sink: Optional[Callable[[bytes, int], None]]) -> None: ...

    def play(self, pcm: bytes, rate: int, text: str = "") -> Playback: ...

    def play_file(self, path: str, text: str = "") -> Playback: ...

    def stop_playback(self) -> bool: ...

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None: ...

    def transfer(self, destination: str, dialplan: str = "XML", context: str = "default") -> None: ...

    def spawn(self, fn: Callable[..., Any], *args: Any) -> gevent.Greenlet: ...

    def report_turn(self, turn: Turn) -> None: ...

    def report_barge_in(self, at: float) -> None: ...
