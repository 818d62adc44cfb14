"""RECORD_CALLS: FreeSWITCH records each answered call, and the call's record names the file.

FreeSWITCH, not the worker, writes the recording (``uuid_record``): it hears both legs as they
really were (the caller, and what the caller heard of the agent, cut-offs included), and a
worker that dies mid-call still leaves the file.  It lands in RECORDINGS_DIR as
``<call id>.wav``; the API serves it from the same path, so that directory is shared.
"""
from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Optional

from ..telephony.call_ids import UUID_PATTERN
from .call_state import CallState
from .ports import CallInfo
from .turns import Turn

if TYPE_CHECKING:  # pragma: no cover
    from ..records.reporter import RecordReporter
    from .worker import VoiceWorker

log = logging.getLogger(__name__)

RECORDING_RE = re.compile(rf"^{UUID_PATTERN}\.wav$")  # the only files expire_recordings deletes


def recording_name(call_id: str) -> str:
    """The recording's file name in RECORDINGS_DIR (a call id is a uuid: nothing to escape)."""
    return f"{call_id}.wav"


class CallRecorder:
    """A :class:`ports.CallObserver`: starts the recording when a call becomes active."""

    def __init__(self, worker: "VoiceWorker", reporter: "RecordReporter") -> None:
        self.worker = worker
        self.reporter = reporter

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        if state is not CallState.ACTIVE:
            return
        node = self.worker.nodes.get(call.node)
        if node is None:
            log.warning("recording: no ESL link to node %r", call.node, extra={"call_id": call.id})
            return
        name = recording_name(call.id)
        path = os.path.join(str(self.worker.settings.recordings_dir), name)

        def start() -> None:  # in its own greenlet: observers never wait on FreeSWITCH
            try:
                node.fs.record_start(call.id, path)
            except Exception as exc:
                log.warning("recording not started: %s", exc, extra={"call_id": call.id})
                return
            self.reporter.call_recording(call, name)

        self.worker.spawn(start, call_id=call.id)

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        pass

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        pass

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        pass

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        pass  # FreeSWITCH closes the file when the channel hangs up


def expire_recordings(directory: str, retention_days: float, now: Optional[float] = None) -> int:
    """Delete recordings older than the records (CALL_RETENTION_DAYS): a call page never outlives its
    record, and a recording should not outlive the call page.  Only ``<uuid>.wav`` files are touched."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not RECORDING_RE.match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # another worker sharing the directory was first
        except OSError as exc:
            log.warning("could not remove expired recording %s: %s", entry.path, exc)
    if removed:
        log.info("removed %d recordings older than %.1f days from %s", removed, retention_days, directory)
    return removed
