"""Redis is a control channel: inbox commands must not run dialplan applications (finding 5).

``uuid_broadcast`` reads ``app::args`` and ``file!CAUSE``; the emulator does too, so a play
command of ``set::x=y`` used to set a channel variable and ``file!CALL_REJECTED`` hung the call up.
"""
import json
import logging
import os
import wave

import pytest
import redis
from pydantic import ValidationError

from voiceagent.calls.inbox import CallStore
from voiceagent.calls.inbox_commands import InboxMessage, parse_command, resolve_media_path
from voiceagent.calls.session import CallState
from voiceagent.calls.worker import default_greeting_path

from .test_lifecycle import _SilentDialog, wait_until

HOSTILE_FILES = [
    "set::x=y",
    "/tmp/a.wav!CALL_REJECTED",
    "{x=y}/tmp/a.wav",
    "[x=y]/tmp/a.wav",
    "system::/bin/true",
    "greeting.wav",                       # relative
    "/tmp/../etc/passwd",
    "/tmp/${x}.wav",
    "/tmp/a.wav\nbridge::user/1000",
    "tone_stream://%(100,0,440)",
]


@pytest.mark.parametrize("path", HOSTILE_FILES)
def test_play_command_rejects_dialplan_syntax_and_relative_paths(path):
    with pytest.raises(ValidationError):
        parse_command({"type": "play", "file": path})


@pytest.mark.parametrize("command", [
    {"type": "say", "text": "x" * 1001},
    {"type": "say", "text": "   "},
    {"type": "say", "text": "hi", "voice": "other"},            # unknown field
    {"type": "hangup", "cause": 17},                            # strict types
    {"type": "hangup", "cause": "NORMAL_CLEARING", "extra": 1},
    {"type": "transfer", "destination": "sip:x@evil.example"},
    {"type": "transfer", "destination": "1000 XML default"},
    {"type": "transfer", "destination": "1000", "dialplan": "inline"},
    {"type": "transfer", "destination": "1000", "context": "a b"},
    {"type": "dance"},
])
def test_inbox_commands_are_strict(command):
    with pytest.raises(ValidationError):
        parse_command(command)


def test_valid_commands_still_parse():
    assert parse_command({"type": "say", "text": "Hello there."}).text == "Hello there."
    assert parse_command({"type": "transfer", "destination": "+1555*12#"}).dialplan == "XML"
    assert parse_command({"type": "play", "file": "/srv/media/hold-music_2.wav"}).file
    assert InboxMessage.model_validate({"call_id": "abc-123", "command": {"type": "hangup"}, "sent": 1}).call_id


def test_media_path_must_resolve_inside_an_allowed_directory(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "ok.wav").write_bytes(b"")
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"")
    os.symlink(outside, media / "link.wav")
    assert resolve_media_path(str(media / "ok.wav"), [media]) == str((media / "ok.wav").resolve())
    for bad in (str(media / "link.wav"), str(outside), str(media), "/etc/passwd"):
        with pytest.raises(ValueError):
            resolve_media_path(bad, [media])


def _inbox_push(r, store, worker_id, call_id, command):
    """What anyone with write access to Redis can do: bypass CallStore.send_command's validation."""
    r.rpush(store.inbox_key(worker_id), json.dumps({"call_id": call_id, "command": command}))


def test_hostile_inbox_commands_are_dropped_with_one_warning_each(make_emulator, make_worker, redis_prefix,
                                                                 tmp_path, caplog):
    media = tmp_path / "media"
    media.mkdir()
    with wave.open(default_greeting_path(), "rb") as src, wave.open(str(media / "hello.wav"), "wb") as dst:
        dst.setparams(src.getparams())
        dst.writeframes(src.readframes(src.getnframes()))
    os.symlink("/etc/passwd", media / "escape.wav")
    emu = make_emulator()
    w = make_worker([emu], dialog_factory=lambda call: _SilentDialog(), media_dirs=[str(media)])
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in w.sessions and w.sessions[ch.uuid].state == CallState.ACTIVE, 5)
    r = redis.Redis()
    store = CallStore(r, redis_prefix)
    hostile = [{"type": "play", "file": f} for f in ("set::x=y", "/tmp/a.wav!CALL_REJECTED", "{x=y}" + str(media / "hello.wav"),
                                                     str(media / "escape.wav"), str(media / ".." / "x.wav"))]
    hostile += [{"type": "transfer", "destination": "1000", "dialplan": "inline"},
                {"type": "say", "text": "hi", "unexpected": True}]
    caplog.set_level(logging.WARNING)
    for cmd in hostile:
        _inbox_push(r, store, w.worker_id, ch.uuid, cmd)
    r.rpush(store.inbox_key(w.worker_id), b"{not json")
    # the listener is still alive: a valid command after them is carried out
    _inbox_push(r, store, w.worker_id, ch.uuid, {"type": "play", "file": str(media / "hello.wav")})
    assert wait_until(lambda: len(ch.segments) == 1, 10), "the valid play after the hostile ones never played"
    assert ch.segments[0]["path"].endswith("hello.wav")
    assert "x" not in ch.variables, "a play command ran the 'set' application"
    assert not ch.hangup_cause, f"a play command hung the call up ({ch.hangup_cause})"
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "inbox" in rec.getMessage()
                and getattr(rec, "call_id", "") == ch.uuid]
    assert len(warnings) == len(hostile), [rec.getMessage() for rec in warnings]
    assert all("\n" not in rec.getMessage() for rec in warnings)
    ch.hangup()
    assert ch.wait_hangup(10)
