"""FreeSWITCH's URL-encoding of plain event header values (switch_url_encode, no double encoding)
and the raw event body, byte for byte."""
from voiceagent.telephony.eslwire import FrameReader, event_frame, parse_event_plain, url_decode, url_encode


def test_url_encode_matches_switch_url_encode():
    assert url_encode("sofia/external/+15551230001@127.0.0.1:5070") == "sofia/external/%2B15551230001%40127.0.0.1%3A5070"
    assert url_encode("Sun, 24 Nov 2024 10:00:00 GMT") == "Sun,%2024%20Nov%202024%2010%3A00%3A00%20GMT"
    assert url_encode("a\"b\r\nc") == "a%22b%0D%0Ac"
    assert url_encode("é") == "%C3%A9"
    assert url_encode("") == "_undef_"


def test_url_encode_does_not_double_encode_upper_case_escapes():
    # a '%' followed by two upper-case hex digits is taken as already encoded; anything else is escaped
    assert url_encode("100%3A done") == "100%3A%20done"
    assert url_encode("50%") == "50%25"
    assert url_encode("%3a") == "%253a"
    assert url_encode("%4") == "%254"
    assert url_encode(url_encode("x: y%")) == url_encode("x: y%")


def test_event_body_stays_raw_and_headers_decode():
    body = b'{"file":"/tmp/a%20b.wav","text":"50%3A50\\n"}\n+OK 100%\n'
    frame = event_frame([("Event-Name", "CUSTOM"), ("Event-Subclass", "mod_audio_fork::play_audio"),
                         ("Caller-Caller-ID-Number", "+1555 0001")], body)
    frames = list(FrameReader().feed(frame))
    assert len(frames) == 1 and frames[0].content_type == "text/event-plain"
    ev = parse_event_plain(frames[0].body)
    assert ev.body == body
    assert ev.get("Caller-Caller-ID-Number") == "+1555 0001"
    assert [k for k, _ in ev.headers] == ["Event-Name", "Event-Subclass", "Caller-Caller-ID-Number", "Content-Length"]
    assert url_decode("%2B1%3A2") == "+1:2"
