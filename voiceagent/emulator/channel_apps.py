"""The dialplan applications a channel runs (mod_dptools: answer, set, playback, park, ...).

``Channel.execute(app, data)`` calls ``_app_<app>``; these run on the channel's own greenlet.
"""
from __future__ import annotations

import logging
import time

import gevent

from . import media

log = logging.getLogger(__name__)


class ChannelApps:
    """Mixed into :class:`~.channel.Channel`: the applications, written against its state."""

    def _app_answer(self, data: str) -> None:
        self.answer()

    def _app_pre_answer(self, data: str) -> None:
        self.pre_answer()

    def _app_set(self, data: str) -> None:
        name, _, value = data.partition("=")
        name = name.strip()
        if not name:
            return
        if value == "":
            self.variables.pop(name, None)
        else:
            self.variables[name] = value

    def _app_export(self, data: str) -> None:
        self._app_set(data[len("nolocal:"):] if data.startswith("nolocal:") else data)

    def _app_unset(self, data: str) -> None:
        self.variables.pop(data.strip(), None)

    def _app_log(self, data: str) -> None:
        log.info("dialplan log [%s]: %s", self.uuid, data.strip())

    def _app_hangup(self, data: str) -> None:
        self.do_hangup(data.strip() or "NORMAL_CLEARING")

    def _app_sleep(self, data: str) -> None:
        try:
            ms = int(data.strip() or 0)
        except ValueError:
            log.error("sleep: bad duration %r", data)
            return
        self.hangup_requested.wait(ms / 1000.0 / self.emu.speed)

    def _app_transfer(self, data: str) -> None:
        parts = data.split()
        if parts:
            self.transfer(parts[0], parts[2] if len(parts) > 2 else self.context)

    def _app_playback(self, path: str) -> None:
        self._play(path)

    def _app_park(self, data: str) -> None:
        self._parked = True
        self.fire("CHANNEL_PARK")
        timeout, cause = None, "ALLOTTED_TIMEOUT"
        spec = self.variables.get("park_timeout")
        if spec:
            secs, _, c = spec.partition(":")
            try:
                timeout = float(secs)
            except ValueError:
                log.error("bad park_timeout %r", spec)
            cause = c or cause
        deadline = time.monotonic() + timeout / self.emu.speed if timeout else None
        while not self.hangup_cause and not self._transfer:
            if self._msgs:
                kind, app, arg = self._msgs.popleft()
                if kind == "execute":
                    self.execute(app, arg)
                continue
            self._wake.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.do_hangup(cause)
                break
            self._wake.wait(remaining)
        self._parked = False
        self.fire("CHANNEL_UNPARK")

    def _play(self, path: str) -> None:
        try:
            pcm = media.load(path)
        except media.MediaError as exc:
            log.info("playback %s: %s", self.uuid, exc)
            self._app_response = "FILE NOT FOUND"
            self.variables["current_application_response"] = "FILE NOT FOUND"
            return
        ftype = media.file_type(path)
        self.fire("PLAYBACK_START", {"Playback-File-Type": ftype, "Playback-File-Path": path})
        self._break_evt.clear()
        self._playing = path
        start_call = self.call_time()
        started = time.monotonic()
        duration = len(pcm) / media.HEARD_RATE
        # gevent times from the loop's cached clock, which lags on a busy machine: a single wait can end
        # early, and a real FreeSWITCH never stops a file before its end, so wait out what is left
        deadline = started + duration / self.emu.speed
        while not self._break_evt.is_set() and not self.hangup_requested.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            gevent.wait([self._break_evt, self.hangup_requested], timeout=remaining, count=1)
        played = min(duration, (time.monotonic() - started) * self.emu.speed)
        status = "break" if self._break_evt.is_set() and not self.hangup_cause else "done"
        if status == "done" and not self.hangup_cause:
            played = duration
        self._playing = None
        self._break_evt.clear()
        self._heard.append((start_call, pcm[: int(played * media.HEARD_RATE)]))
        self.segments.append({"start": start_call, "end": start_call + played, "path": path, "status": status})
        self.fire("PLAYBACK_STOP", {"Playback-File-Type": ftype, "Playback-File-Path": path, "Playback-Status": status})
        self._app_response = "FILE PLAYED"
        self.variables["current_application_response"] = "FILE PLAYED"
