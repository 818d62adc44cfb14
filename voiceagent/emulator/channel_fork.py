"""mod_audio_fork on a channel: ``uuid_audio_fork`` start/stop/send_text/..., the media bugs it
adds, and the fork client's events fired on the channel."""
from __future__ import annotations

import logging
from typing import List, Optional

log = logging.getLogger(__name__)

FORK_USAGE = ("-USAGE: <uuid> [start | stop | send_text | pause | resume | graceful-shutdown ] [wss-url | path] "
              "[mono | mixed | stereo] [8000 | 16000 | 24000 | 32000 | 64000] [bugname] [metadata]\n")


class ForkControl:
    """Mixed into :class:`~.channel.Channel`: its media bugs (``forks``) and their commands."""

    def audio_fork(self, args: List[str]) -> str:
        """``uuid_audio_fork <uuid> <cmd> ...`` once the uuid has been resolved; returns the api output."""
        cmd = args[0].lower()
        rest = args[1:]
        if cmd == "start":
            if len(rest) < 3:
                return FORK_USAGE
            url, mix, rate_s = rest[0], rest[1].lower(), rest[2]
            if mix not in ("mono", "mixed", "stereo"):
                return ""
            bug, meta = "audio_fork", None
            if len(rest) == 4:
                if rest[3][:1] in "{[":
                    meta = rest[3]
                else:
                    bug = rest[3]
            elif len(rest) >= 5:
                bug, meta = rest[3], " ".join(rest[4:])
            if bug in self.forks or self.hangup_cause:
                return "-ERR Operation Failed\n"
            rate = _fork_rate(rate_s)
            self.pre_answer()
            try:
                client = self._make_fork(url, bug, meta, rate, mix)
            except Exception as exc:
                log.error("uuid_audio_fork start failed on %s: %s", self.uuid, exc)
                return "-ERR Operation Failed\n"
            self.forks[bug] = client
            self.fire("MEDIA_BUG_START", {"Media-Bug-Function": bug, "Media-Bug-Target": "N/A"})
            client.start()
            return "+OK Success\n"
        if cmd in ("stop", "send_text", "pause", "resume", "graceful-shutdown"):
            bug, text = "audio_fork", None
            if len(rest) == 1:
                if rest[0][:1] in "{[":
                    text = rest[0]
                else:
                    bug = rest[0]
            elif len(rest) >= 2:
                bug, text = rest[0], " ".join(rest[1:])
            if cmd == "send_text" and text is None:
                if not rest:
                    return ""
            client = self.forks.get(bug)
            if client is None:
                return "-ERR Operation Failed\n"
            if cmd == "stop":
                self.forks.pop(bug, None)
                safe_call(client.stop, text)
                self.fire("MEDIA_BUG_STOP", {"Media-Bug-Function": bug, "Media-Bug-Target": "N/A"})
            elif cmd == "send_text":
                safe_call(client.send_text, text)
            else:
                meth = getattr(client, cmd.replace("-", "_"), None)
                if meth:
                    safe_call(meth)
            return "+OK Success\n"
        return FORK_USAGE

    def _make_fork(self, url: str, bug: str, meta: Optional[str], rate: int, mix: str):
        from .caller_audio import CallerAudio  # written separately; imported lazily
        from .fork_client import ForkClient

        audio = CallerAudio(rate, clock=self.call_time)
        for item in self._pending_say:
            audio.say(item)
        self._pending_say = []
        auth = None
        user = self.variables.get("MOD_AUDIO_BASIC_AUTH_USERNAME")
        if user:
            auth = (user, self.variables.get("MOD_AUDIO_BASIC_AUTH_PASSWORD", ""))
        return ForkClient(url, call_uuid=self.uuid, bugname=bug, metadata=meta, sample_rate=rate, mix=mix,
                          auth=auth, audio=audio, speed=self.emu.speed, temp_dir=self.emu.temp_dir,
                          on_event=lambda sub, body, _bug=bug: self.fork_event(_bug, sub, body))

    def fork_event(self, bug: str, subclass: str, body: Optional[bytes]) -> None:
        """An event of the fork client on media bug ``bug`` (``mod_audio_fork::...``), fired on the channel."""
        if self.destroyed:
            return
        try:
            self.fire(subclass, body=body or b"")
            if subclass == "mod_audio_fork::kill_audio":
                self.break_playback()
        except Exception:
            log.exception("fork event %s on %s", subclass, self.uuid)



def _fork_rate(text: str) -> int:
    t = text.lower()
    try:
        if t.endswith("k"):
            return int(t[:-1]) * 1000 if t[:-1] in ("8", "16") else int(t[:-1])
        return int(t)
    except ValueError:
        log.error("uuid_audio_fork: bad sample rate %r, using 8000", text)
        return 8000


def safe_call(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("fork client call %s failed", getattr(fn, "__name__", fn))
