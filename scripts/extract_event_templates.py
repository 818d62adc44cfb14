#!/usr/bin/env python3
"""Regenerate voiceagent/emulator/data/event_templates.json from the FreeSWITCH captures.

The captures (tests/data/freeswitch/*.esl.bin) are facts about FreeSWITCH 1.10.12; this script
reduces them to what the emulator needs to reproduce them:

* per event key (``Event-Name``, the subclass for CUSTOM, ``CHANNEL_EXECUTE:<app>`` for
  application events) the ordered header layout, where runs of channel, caller-profile and
  ``variable_*`` headers are collapsed into the tokens ``@channel``, ``@caller`` and
  ``@variables`` (the emulator expands them from its channel state), plus the
  ``Event-Calling-*`` triple FreeSWITCH stamps on it;
* initial channel-variable profiles (name, value template) per endpoint kind, taken from the
  CHANNEL_CREATE events, with the call-specific values replaced by ``{placeholders}``.

Usage: scripts/extract_event_templates.py [TRACES_DIR] [OUT_JSON]
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceagent.telephony.eslwire import FrameReader, parse_event_plain  # noqa: E402

CORE = [
    "Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname", "FreeSWITCH-IPv4",
    "FreeSWITCH-IPv6", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp",
    "Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence",
]
CHANNEL = {
    "Channel-State", "Channel-Call-State", "Channel-State-Number", "Channel-Name", "Unique-ID",
    "Call-Direction", "Presence-Call-Direction", "Channel-HIT-Dialplan", "Channel-Call-UUID",
    "Answer-State", "Hangup-Cause", "Channel-Read-Codec-Name", "Channel-Read-Codec-Rate",
    "Channel-Read-Codec-Bit-Rate", "Channel-Write-Codec-Name", "Channel-Write-Codec-Rate",
    "Channel-Write-Codec-Bit-Rate",
}


def event_key(ev) -> str:
    if ev.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE") and "Application" in ev:
        return f"{ev.name}:{ev['Application']}"
    return ev.key


def layout(ev) -> list:
    names = [k for k, _ in ev.headers]
    if names[:1] == ["Event-Subclass"]:
        names = names[1:]
    if names[: len(CORE)] != CORE:
        return []  # sendevent-style events: not a template
    out: list = ["@core"]
    i = len(CORE)
    in_channel = False
    while i < len(names):
        n = names[i]
        if n == "Channel-State" and not in_channel:
            out.append("@channel")
            in_channel = True
            i += 1
            while i < len(names) and names[i] in CHANNEL and names[i] != "Channel-State":
                i += 1
            continue
        if n.startswith("Caller-"):
            if out[-1] != "@caller":
                out.append("@caller")
        elif n.startswith("variable_"):
            if out[-1] != "@variables":
                out.append("@variables")
        elif n == "Content-Length":
            pass  # the serializer adds it with the body
        else:
            out.append(n)
        i += 1
    return out


def var_profile(ev, other_uuid: str = "") -> list:
    uuid = ev["Unique-ID"]
    subst = [(uuid, "{uuid}"), (ev["Channel-Name"], "{channel_name}"),
             (ev["Caller-Channel-Created-Time"], "{created}")]
    if other_uuid:
        subst.append((other_uuid, "{other_uuid}"))
    caller = ev.get("Caller-Caller-ID-Number", "")
    dest = ev.get("Caller-Destination-Number", "")
    prof = []
    for k, v in ev.headers:
        if not k.startswith("variable_"):
            continue
        name = k[len("variable_"):]
        t = v.replace("{", "{{").replace("}", "}}")
        for real, token in subst:
            t = t.replace(real, token)
        if name == "session_id":
            t = "{session_id}"
        elif name == "sip_call_id":
            t = "{call_id}"
        elif name == "origination_uuid":
            t = "{origination_uuid}"
        elif caller and caller != "0000000000":
            t = t.replace(caller + "@", "{caller}@").replace(caller + " <", "{caller} <")
            if t == caller:
                t = "{caller}"
        if dest and name.startswith(("sip_req_user", "sip_to_user", "sip_to_display")) and t == dest:
            t = "{destination}"
        elif dest:
            t = t.replace(dest + "@", "{destination}@").replace(dest + " <", "{destination} <").replace(
                ":" + dest + "@", ":{destination}@")
        prof.append([name, t])
    return prof


def main() -> None:
    traces = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "freeswitch"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "voiceagent" / "emulator" / "data" / "event_templates.json"
    layouts: dict = collections.defaultdict(list)
    calling: dict = {}
    profiles: dict = {}
    for path in sorted(traces.glob("*.esl.bin")):
        reader = FrameReader()
        for frame in reader.feed(path.read_bytes()):
            if frame.content_type != "text/event-plain":
                continue
            ev = parse_event_plain(frame.body)
            lay = layout(ev)
            if not lay:
                continue
            key = event_key(ev)
            layouts[key].append(lay)
            calling.setdefault(key, [ev["Event-Calling-File"], ev["Event-Calling-Function"],
                                     ev["Event-Calling-Line-Number"]])
            if ev.name == "CHANNEL_CREATE":
                name = ev["Channel-Name"]
                other = ev.get("variable_other_loopback_leg_uuid", "")
                if name.startswith("loopback/") and name.endswith("-a"):
                    profiles.setdefault("loopback_a", var_profile(ev, other))
                elif name.startswith("loopback/"):
                    profiles.setdefault("loopback_b", var_profile(ev, other))
                elif ev["Call-Direction"] == "outbound":
                    profiles.setdefault("sofia_outbound", var_profile(ev))
                elif ev.get("variable_sip_from_user") == "sipp":
                    profiles.setdefault("sofia_inbound", var_profile(ev))
    events = {}
    for key in sorted(layouts):
        # The longest layout is the union: optional headers (Playback-File-Type for tone
        # streams, Application-Data when an app has arguments) are omitted at run time.
        best = max(layouts[key], key=len)
        events[key] = {"layout": best, "calling": calling[key]}
    data = {"source": "FreeSWITCH 1.10.12 captures (tests/data/freeswitch)", "events": events, "variables": profiles}
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}: {len(events)} event templates, {len(profiles)} variable profiles")


if __name__ == "__main__":
    main()
