"""An emulated FreeSWITCH and a voice worker in one process, wired together.

The demo, the latency benchmark and the end-to-end tests all place their calls this way; the soak
runs its worker as a process and uses the emulator half (:func:`start_emulator`).  Wiring = the
worker's ESL node is the emulator's port, and the emulator's dialplan forks audio to the worker's
fork server (the ``voiceagent_fork_url`` preprocessor variable, as an operator would set it).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable, Optional

import gevent

from .channel import Channel
from .core import FreeSwitchEmulator

if TYPE_CHECKING:  # pragma: no cover
    from ..calls.session import CallSession
    from ..calls.worker import VoiceWorker
    from ..config import Settings

FORK_URL_VAR = "voiceagent_fork_url"  # freeswitch/conf/vars_voiceagent.xml
AGENT_NUMBER = "+15551230000"  # an inbound number of the shipped dialplan
CALLER_NUMBER = "+15551230001"


class StackError(RuntimeError):
    """The worker could not connect to the emulator."""


def start_emulator(password: str, *, speed: float = 1.0, switchname: str = "fs1", fork_url: Optional[str] = None,
                   temp_dir: Optional[str] = None) -> FreeSwitchEmulator:
    """A started emulator on a free loopback port, its dialplan forking to ``fork_url`` when given."""
    emu = FreeSwitchEmulator(host="127.0.0.1", port=0, password=password, switchname=switchname, speed=speed,
                             temp_dir=temp_dir).start()
    if fork_url:
        emu.set_preprocessor_var(FORK_URL_VAR, fork_url)
    return emu


def stack_settings(name: str, **overrides) -> "Settings":
    """Worker settings for a one-process stack called ``name`` (demo, bench): loopback fork server on a
    free port, its own ESL password, Redis prefix and worker id; the ESL node's port is filled in by
    :meth:`EmulatedStack.start`."""
    from ..config import load_settings

    pid = os.getpid()
    values = dict(fork_host="127.0.0.1", fork_port=0, esl_password=f"{name}-password", esl_nodes="fs1=127.0.0.1:0",
                  redis_prefix=f"voiceagent-{name}-{pid}", worker_id=f"{name}-{pid}")
    values.update(overrides)
    return load_settings(**values)


class EmulatedStack:
    """One emulator (``switchname``) and one :class:`~voiceagent.calls.worker.VoiceWorker` connected to it."""

    def __init__(self, settings: "Settings", *, dialog_factory=None, speed: float = 1.0, switchname: str = "fs1",
                 temp_dir: Optional[str] = None, admission_check: Optional[Callable[[], bool]] = None,
                 connect_timeout: float = 10.0) -> None:
        self.settings = settings
        self.dialog_factory = dialog_factory
        self.speed = speed
        self.switchname = switchname
        self.temp_dir = temp_dir
        self.admission_check = admission_check
        self.connect_timeout = connect_timeout
        self.emulator: Optional[FreeSwitchEmulator] = None
        self.worker: Optional["VoiceWorker"] = None

    def start(self) -> "EmulatedStack":
        """Emulator first (its port goes into the worker's ESL_NODES), then the worker, then the dialplan's
        fork URL; returns once the worker's ESL connection is up (else stops and raises StackError)."""
        from ..calls.worker import VoiceWorker

        try:
            self.emulator = emu = start_emulator(self.settings.esl_password.get_secret_value(), speed=self.speed,
                                                 switchname=self.switchname, temp_dir=self.temp_dir)
            self.settings = self.settings.model_copy(update={"esl_nodes": {self.switchname: f"127.0.0.1:{emu.port}"}})
            self.worker = worker = VoiceWorker(self.settings, dialog_factory=self.dialog_factory)
            if self.admission_check is not None:
                worker.admission_check = self.admission_check
            worker.start()
            emu.set_preprocessor_var(FORK_URL_VAR, worker.fork_url_base)
            if not all(n.esl.wait_connected(self.connect_timeout) for n in worker.nodes.values()):
                raise StackError("the worker could not connect to the emulator")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Worker first (it drains and hangs up its calls), then the emulator."""
        if self.worker is not None and not self.worker.stopped.is_set():
            self.worker.stop()
        if self.emulator is not None:
            self.emulator.stop()

    def __enter__(self) -> "EmulatedStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- calls -------------------------------------------------------------------------------
    def call(self, destination: str = AGENT_NUMBER, caller: str = CALLER_NUMBER) -> Channel:
        """An inbound call from ``caller`` to ``destination`` through the emulator's dialplan."""
        assert self.emulator is not None, "start() the stack first"
        return self.emulator.place_call(destination=destination, caller=caller)

    def session(self, ch: Channel, timeout: float = 10.0) -> Optional["CallSession"]:
        """The worker's session for the call, once it has one (None after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            sess = self.worker.sessions.get(ch.uuid) if self.worker is not None else None
            if sess is not None or time.monotonic() >= deadline:
                return sess
            gevent.sleep(0.02)

    def wait_quiet(self, ch: Channel, timeout: float = 60.0) -> bool:
        """Until the agent has said something and has nothing left to say; False if the call ended or
        ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ch.hangup_event.is_set():
            sess = self.worker.sessions.get(ch.uuid) if self.worker is not None else None
            if sess is not None and sess.playbacks and not sess.speaking:
                return True
            gevent.sleep(0.05)
        return False
