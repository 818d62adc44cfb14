"""Event Socket framing on the server side: the commands a client sends (as mod_event_socket's
``read_packet`` reads them) and the replies, notices and rejections the server writes."""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..telephony.eslwire import encode_frame

DISCONNECT_BODY = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_NOTICE = encode_frame([("Content-Type", "text/disconnect-notice"),
                                  ("Content-Length", str(len(DISCONNECT_BODY)))], DISCONNECT_BODY)
RUDE_BODY = b"Access Denied, go away.\n"
RUDE_REJECTION = encode_frame([("Content-Type", "text/rude-rejection"), ("Content-Length", str(len(RUDE_BODY)))],
                              RUDE_BODY)
MAX_COMMAND_BODY = 16 * 1024 * 1024
def reply(text: str, extra: Tuple[Tuple[str, str], ...] = ()) -> bytes:
    return encode_frame([("Content-Type", "command/reply"), ("Reply-Text", text), *extra])


def api_response(body: str) -> bytes:
    raw = body.encode("utf-8")
    return encode_frame([("Content-Type", "api/response"), ("Content-Length", str(len(raw)))], raw)


class Command:
    __slots__ = ("line", "headers", "body")

    def __init__(self, line: str, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.line, self.headers, self.body = line, headers, body

    def header(self, name: str) -> Optional[str]:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


class CommandReader:
    """Client→server framing as mod_event_socket's read_packet: LF or CRLF, blank line ends a
    command, leading blank lines skipped, optional Content-Length body."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> List[Command]:
        self.buf += data
        out = []
        while True:
            while self.buf[:1] == b"\n" or self.buf[:2] == b"\r\n":
                del self.buf[: 2 if self.buf[:1] == b"\r" else 1]
            m = re.search(rb"\r?\n\r?\n", self.buf)
            if not m:
                if len(self.buf) > 1024 * 1024:
                    raise ValueError("command header block larger than 1 MiB")
                return out
            lines = [ln.rstrip("\r") for ln in bytes(self.buf[: m.start()]).decode("utf-8", "replace").split("\n")]
            headers = []
            for ln in lines[1:]:
                k, sep, v = ln.partition(":")
                if sep:
                    headers.append((k.strip(), v.lstrip(" ")))
            length = 0
            for k, v in headers:
                if k.lower() == "content-length":
                    try:
                        length = int(v)
                    except ValueError:
                        length = 0
            if length < 0 or length > MAX_COMMAND_BODY:
                raise ValueError(f"command Content-Length {length} out of range")
            if len(self.buf) < m.end() + length:
                return out
            body = bytes(self.buf[m.end(): m.end() + length])
            del self.buf[: m.end() + length]
            out.append(Command(lines[0].strip(), headers, body))
