"""(a) Every capture replays through eslwire cleanly and byte-exactly."""
from __future__ import annotations

import pytest

from voiceagent.telephony.eslwire import FrameReader, parse_event_plain, serialize_event_plain

from tests.emulator.eslclient import traces_dir

NAMES = ["auth", "commands", "fork_ws", "inbound_call_all", "inbound_call_narrow", "originate", "playback_control"]


@pytest.mark.parametrize("name", NAMES)
def test_replay_capture(name):
    raw = (traces_dir() / f"{name}.esl.bin").read_bytes()
    reader = FrameReader()
    frames = []
    for i in range(0, len(raw), 997):  # odd chunk sizes: frames split across reads
        frames.extend(reader.feed(raw[i:i + 997]))
    assert b"".join(f.to_bytes() for f in frames) == raw
    plain = [f for f in frames if f.content_type == "text/event-plain"]
    for f in plain:
        ev = parse_event_plain(f.body)
        assert ev.name
        headers = ev.headers[:-1] if ev.body else ev.headers  # the inner Content-Length is re-added
        again = serialize_event_plain(headers, ev.body)
        assert again == f.body
    assert frames
