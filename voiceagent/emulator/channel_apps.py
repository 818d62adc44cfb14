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
        self._paused_since = None
        self._pauses = []
        start_call = self.call_time()
        started = time.monotonic()
        duration = len(pcm) / media.HEARD_RATE
        # gevent times from the loop's cached clock, which lags on a busy machine: a single wait can end
        # early, and a real FreeSWITCH never stops a file before its end, so wait out what is left
        self._play_deadline = started + duration / self.emu.speed
        stops = [self._break_evt, self.hangup_requested, self._pause_evt]
        while not self._break_evt.is_set() and not self.hangup_requested.is_set():
            self._pause_evt.clear()
            if self._paused_since is not None:  # uuid_fileman pause: the position stops until the next one
                gevent.wait(stops, count=1)
                continue
            remaining = self._play_deadline - time.monotonic()
            if remaining <= 0:
                break
            gevent.wait(stops, timeout=remaining, count=1)
        if self._paused_since is not None:  # broken (or hung up) while paused
            self._pauses.append((self._paused_since, time.monotonic()))
            self._paused_since = None
        status = "break" if self._break_evt.is_set() and not self.hangup_cause else "done"
        done = status == "done" and not self.hangup_cause
        self._heard_pieces(pcm, start_call, started, done)
        pauses = [[self._call_time_at(p), self._call_time_at(r)] for p, r in self._pauses]
        full = start_call + duration + sum(r - p for p, r in pauses)
        self.segments.append({"start": start_call, "end": full if done else min(full, self.call_time()),
                              "path": path, "status": status, "pauses": pauses})
        self._playing = None
        self._break_evt.clear()
        self.fire("PLAYBACK_STOP", {"Playback-File-Type": ftype, "Playback-File-Path": path, "Playback-Status": status})
        self._app_response = "FILE PLAYED"
        self.variables["current_application_response"] = "FILE PLAYED"

    def _call_time_at(self, mono: float) -> float:
        return (mono - self.t0) * self.emu.speed

    def _heard_pieces(self, pcm, start_call: float, started: float, to_the_end: bool) -> None:
        """What the caller heard of one file: a piece before each pause, the rest after it (FreeSWITCH
        resumes a paused file where it stopped, nothing lost)."""
        rate, speed = media.HEARD_RATE, self.emu.speed
        pos, at, wall = 0, start_call, started
        for paused, resumed in self._pauses:
            n = int(max(0.0, paused - wall) * speed * rate)
            self._heard.append((at, pcm[pos:pos + n]))
            pos = min(len(pcm), pos + n)
            at, wall = self._call_time_at(resumed), resumed
        end = len(pcm) if to_the_end else min(len(pcm), pos + int(max(0.0, time.monotonic() - wall) * speed * rate))
        self._heard.append((at, pcm[pos:end]))

    def fileman_pause(self) -> bool:
        """``uuid_fileman <uuid> pause``: toggle pause of the file now playing; False if none plays."""
        if self._playing is None:
            return False
        now = time.monotonic()
        if self._paused_since is None:
            self._paused_since = now
        else:
            self._pauses.append((self._paused_since, now))
            self._play_deadline += now - self._paused_since
            self._paused_since = None
        self._pause_evt.set()
        return True
