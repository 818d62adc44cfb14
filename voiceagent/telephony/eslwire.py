"""The Event Socket wire format, shared by our ESL client and the FreeSWITCH emulator.

FreeSWITCH frames every message as a header block ending in an empty line, followed by
exactly ``Content-Length`` body bytes.  Plain events carry a second, inner header block
(URL-encoded values, insertion order, duplicates allowed) and an optional raw body.
Everything here works on bytes so that lengths are byte counts, as FreeSWITCH counts them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import unquote

Header = Tuple[str, str]

# switch_utils.h: characters FreeSWITCH escapes in plain event header values, besides
# bytes < 0x20 and > 0x7E.
_ESCAPED = set(b' #%&+:;<=>?@[\\]^`{|}"\r\n')
_HEX_UPPER = b"0123456789ABCDEF"
MAX_FRAME_BYTES = 16 * 1024 * 1024  # FreeSWITCH refuses larger bodies too


def url_encode(value: str) -> str:
    """Encode a header value as switch_url_encode does (``%XX`` upper-case).

    A ``%`` already followed by two upper-case hex digits is left alone, so encoding is
    idempotent for values FreeSWITCH itself produced.  An empty value becomes ``_undef_``.
    """
    if value == "":
        return "_undef_"
    raw = value.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25 and i + 2 < len(raw) and raw[i + 1] in _HEX_UPPER and raw[i + 2] in _HEX_UPPER:
            out.append(b)
        elif b < 0x20 or b > 0x7E or b in _ESCAPED:
            out += b"%%%02X" % b
        else:
            out.append(b)
        i += 1
    return out.decode("ascii")


def url_decode(value: str) -> str:
    return unquote(value, errors="replace")


@dataclass
class Frame:
    """One outer ESL message: ordered headers plus the raw body."""

    headers: List[Header]
    body: bytes = b""

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    @property
    def content_type(self) -> str:
        return self.get("Content-Type", "") or ""

    def to_bytes(self) -> bytes:
        return encode_frame(self.headers, self.body)


def encode_frame(headers: Sequence[Header], body: bytes = b"") -> bytes:
    """Serialise an outer message; the caller decides header order (FreeSWITCH varies it)."""
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    return head.encode("utf-8") + b"\n" + body


def parse_header_block(block: bytes) -> List[Header]:
    headers: List[Header] = []
    for line in block.decode("utf-8", errors="replace").split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"header line without ':': {line[:80]!r}")
        headers.append((name.strip(), value.lstrip(" ")))
    return headers


class ProtocolError(ValueError):
    """The peer sent bytes that are not a valid ESL message."""


class FrameReader:
    """Incremental parser: feed it whatever ``recv`` returned, iterate complete frames.

    Leading blank lines are skipped, as FreeSWITCH's own reader does; CRLF is accepted.
    """

    def __init__(self, max_body: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._pending: Optional[List[Header]] = None
        self._need = 0
        self._max_body = max_body

    def feed(self, data: bytes) -> Iterator[Frame]:
        self._buf += data
        while True:
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> Optional[Frame]:
        if self._pending is None:
            while self._buf[:1] in (b"\n",) or self._buf[:2] == b"\r\n":
                del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
            m = re.search(rb"\r?\n\r?\n", self._buf)
            if not m:
                if len(self._buf) > 1024 * 1024:
                    raise ProtocolError("header block larger than 1 MiB")
                return None
            block = bytes(self._buf[: m.start()])
            del self._buf[: m.end()]
            headers = parse_header_block(block)
            length = 0
            for k, v in headers:
                if k.lower() == "content-length":
                    try:
                        length = int(v)
                    except ValueError as exc:
                        raise ProtocolError(f"bad Content-Length {v!r}") from exc
            if length < 0 or length > self._max_body:
                raise ProtocolError(f"Content-Length {length} out of range")
            self._pending, self._need = headers, length
        if len(self._buf) < self._need:
            return None
        body = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        headers, self._pending = self._pending, None
        return Frame(headers, body)


@dataclass
class Event:
    """A plain event: decoded headers in wire order (duplicates kept) and the raw body.

    ``get`` returns the *first* value of a header: for FreeSWITCH's PRIVATE_COMMAND, which
    carries a complete COMMAND header set followed by its own, this keeps the outer name
    consistent with the other headers that came first.
    """

    headers: List[Header]
    body: bytes = b""
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        idx: dict = {}
        for k, v in self.headers:
            idx.setdefault(k, v)
        self._index = idx

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self._index.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._index[name]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    @property
    def name(self) -> str:
        return self._index.get("Event-Name", "")

    @property
    def subclass(self) -> str:
        return self._index.get("Event-Subclass", "")

    @property
    def key(self) -> str:
        """``Event-Subclass`` for CUSTOM events, else ``Event-Name`` (how handlers are keyed)."""
        return self.subclass if self.name == "CUSTOM" and self.subclass else self.name

    @property
    def uuid(self) -> str:
        return self._index.get("Unique-ID", "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def parse_event_plain(data: bytes) -> Event:
    """Parse the body of a ``text/event-plain`` frame (inner headers + optional raw body)."""
    m = re.search(rb"\n\n", data)
    if m:
        block, rest = data[: m.start()], data[m.end():]
    else:
        block, rest = data.rstrip(b"\n"), b""
    headers = [(k, url_decode(v)) for k, v in parse_header_block(block)]
    body = b""
    length = None
    for k, v in headers:
        if k == "Content-Length":
            length = v
    if length is not None:
        try:
            n = int(length)
        except ValueError as exc:
            raise ProtocolError(f"bad inner Content-Length {length!r}") from exc
        body = rest[:n]
    return Event(headers, body)


def serialize_event_plain(headers: Iterable[Header], body: bytes = b"") -> bytes:
    """Serialise an event as switch_event_serialize does: encoded values, then the raw body."""
    head = "".join(f"{k}: {url_encode(v)}\n" for k, v in headers).encode("ascii")
    if body:
        return head + b"Content-Length: %d\n\n" % len(body) + body
    return head + b"\n"


def event_frame(headers: Iterable[Header], body: bytes = b"") -> bytes:
    """A complete ``text/event-plain`` message; note ``Content-Length`` comes first."""
    payload = serialize_event_plain(headers, body)
    return encode_frame([("Content-Length", str(len(payload))), ("Content-Type", "text/event-plain")], payload)
