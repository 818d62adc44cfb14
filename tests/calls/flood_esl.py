"""A FreeSWITCH node that floods its ESL clients with events (test helper, run as a subprocess).

It must be a separate process: a real node keeps writing while the worker is busy, which an
in-process server (sharing the worker's gevent hub) cannot do.  It prints its port, answers
auth, the subscription, filters and every api command (``show channels`` with no rows), and
floods each subscribed client for ``--seconds`` once a line arrives on stdin (so the test
decides when the flood starts).  Plain threads and sockets, no gevent.
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

_go = threading.Event()


def _frame(name: str, seq: int) -> bytes:
    body = (f"Event-Name: {name}\nCore-UUID: 6c2b2f3e-flood\nFreeSWITCH-Switchname: fs2\n"
            f"Unique-ID: 00000000-0000-4000-8000-00000000000{seq % 10}\nEvent-Sequence: {seq}\n\n").encode()
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


def _reply(text: str) -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode()


def _api(body: str) -> bytes:
    b = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(b) + b


def _serve(sock: socket.socket, seconds: float, password: str) -> None:
    lock = threading.Lock()

    def send(data: bytes) -> None:
        with lock:
            sock.sendall(data)

    def flood() -> None:
        _go.wait()
        chunk = b"".join(_frame("CHANNEL_EXECUTE", i) for i in range(200))
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                send(chunk)
        except OSError:
            pass

    try:
        send(b"Content-Type: auth/request\n\n")
        buf = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                cmd = block.decode().split("\n")[0]
                if cmd.startswith("auth "):
                    send(_reply("+OK accepted" if cmd == f"auth {password}" else "-ERR invalid"))
                elif cmd.startswith("event plain"):
                    send(_reply("+OK event listener enabled plain"))
                    threading.Thread(target=flood, daemon=True).start()
                elif cmd.startswith("filter "):
                    send(_reply("+OK filter added."))
                elif cmd == "api show channels as json":
                    send(_api('{"row_count":0}'))
                elif cmd.startswith("api ") or cmd.startswith("bgapi "):
                    send(_api("+OK") if cmd.startswith("api ") else _reply("+OK Job-UUID: x"))
                elif cmd == "exit":
                    send(_reply("+OK bye"))
                    return
    except OSError:
        pass
    finally:
        sock.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--password", default="ClueCon")
    args = ap.parse_args()
    srv = socket.create_server(("127.0.0.1", 0))
    print(srv.getsockname()[1], flush=True)

    def wait_go() -> None:
        sys.stdin.readline()
        _go.set()

    threading.Thread(target=wait_go, daemon=True).start()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_serve, args=(conn, args.seconds, args.password), daemon=True).start()


if __name__ == "__main__":
    main()
