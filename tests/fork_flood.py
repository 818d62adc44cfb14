"""Hostile fork clients, run as a separate process (its own file descriptors and CPU time):

    python tests/fork_flood.py PORT KIND:COUNT:SOURCE_IP ... [--auth user:pw]

KIND is one of
  silent    TCP connect, never a byte
  partial   an upgrade request cut before its blank line
  upgraded  a complete upgrade (valid credentials if --auth), then nothing
  fakefork  upgrade + metadata for a made-up uuid, then nothing
  garbage   random bytes
  badhttp   a complete request that is not HTTP
  badauth   an upgrade with wrong credentials
Prints ``ready <connected>`` once every connection is attempted; a stdin line ``more SPEC...``
opens more (``ready`` again), any other line (or EOF) closes them all and prints ``closed``.  Plain sockets only
(no gevent): the flood must not depend on the code under test.  Loopback only.
"""
from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import sys
import time
import uuid


def _upgrade(path: str, auth: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: o/wzCnuvZPkOfHzHoyfukQ==", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: audio.drachtio.org"]
    if auth:
        lines.append("Authorization: Basic " + base64.b64encode(auth.encode()).decode())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _masked_text(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def payload(kind: str, auth: str) -> bytes:
    u = str(uuid.uuid4())
    if kind == "silent":
        return b""
    if kind == "partial":
        return f"GET /call/{u} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    if kind == "upgraded":
        return _upgrade(f"/call/{u}", auth)
    if kind == "fakefork":
        meta = json.dumps({"uuid": u, "node": "fs1", "direction": "inbound"}, separators=(",", ":")).encode()
        return _upgrade(f"/call/{u}", auth) + _masked_text(meta)
    if kind == "garbage":
        return os.urandom(300).replace(b"\n", b"x")
    if kind == "badhttp":
        return b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n"
    if kind == "badauth":
        return _upgrade(f"/call/{u}", "intruder:guess")
    raise SystemExit(f"unknown kind {kind}")


def open_all(port: int, specs, auth: str, socks: list) -> int:
    """Connect every spec'd socket (non-blocking, 10 s at most) and send its payload; returns how many connected."""
    pending = {}
    for kind, count, src in specs:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s] = payload(kind, auth)
            socks.append(s)
    connected = 0
    sel = selectors.DefaultSelector()  # epoll: select() cannot watch descriptors above 1024
    for s in pending:
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            sel.unregister(s)
            data = pending.pop(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
                try:
                    if data:
                        s.send(data)
                except OSError:
                    pass
    sel.close()
    return connected


def parse_specs(args):
    auth, specs = "", []
    args = list(args)
    while args:
        a = args.pop(0)
        if a == "--auth":
            auth = args.pop(0)
        else:
            kind, count, src = a.split(":")
            specs.append((kind, int(count), src))
    return specs, auth


def main(argv) -> int:
    port = int(argv[0])
    specs, auth = parse_specs(argv[1:])
    socks: list = []
    print(f"ready {open_all(port, specs, auth, socks)}", flush=True)
    # "more KIND:COUNT:SRC ..." opens more; anything else (or EOF) closes everything
    for line in sys.stdin:
        words = line.split()
        if words[:1] != ["more"]:
            break
        more, _ = parse_specs(words[1:])
        print(f"ready {open_all(port, more, auth, socks)}", flush=True)
    for s in socks:
        s.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
