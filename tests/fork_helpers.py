"""Helpers of the fork-edge tests: a hostile flood in its own process, descriptor counting, polling."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import gevent

FLOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fork_flood.py")


def wait_until(pred, timeout=10.0, step=0.02):
    with gevent.Timeout(timeout, False):
        while not pred():
            gevent.sleep(step)
        return True
    return pred()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def lowest_free_fd() -> int:
    """RLIMIT_NOFILE bounds descriptor *numbers*: with the soft limit here, the next open() gets EMFILE."""
    fd = os.dup(0)
    os.close(fd)
    return fd


def silent_from(src, port, n):
    """``n`` TCP connections from source address ``src`` that never send a byte."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def sees_eof(s, timeout=3.0) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


class Flood:
    """tests/fork_flood.py in its own process (own descriptors), driven line by line."""

    def __init__(self, port, *specs, preexec_fn=None):
        self.proc = subprocess.Popen([sys.executable, FLOOD, str(port), *specs], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=preexec_fn)
        assert self.proc.stdout.readline().startswith("ready")

    def more(self, *specs):
        self.proc.stdin.write("more " + " ".join(specs) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().startswith("ready")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
                self.proc.stdout.readline()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
