"""Helpers of the fork-edge tests: a hostile flood in its own process, descriptor counting, polling."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import gevent
from gevent import monkey

FLOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fork_flood.py")


def wait_until(pred, timeout=10.0, step=0.02):
    """Poll a condition on real state (sessions dicts have no events of their own)."""
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


def run_isolated(args, timeout=90.0, env=None):
    """Run a process without gevent's machinery: (returncode or None on timeout, stdout, stderr).

    posix_spawn with output to files and a blocking waitpid: no pipes and no child watcher in this
    process, so the child's run does not depend on the state of this process' event loop (a test
    that leaves a libev watcher on a closed descriptor is failed by tests/watcher_guard.py).
    """
    waitpid = monkey.get_original("os", "waitpid")
    sleep = monkey.get_original("time", "sleep")
    monotonic = monkey.get_original("time", "monotonic")
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        pid = os.posix_spawn(args[0], args, dict(env or os.environ),
                             file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                           (os.POSIX_SPAWN_OPEN, 1, out, flags, 0o600),
                                           (os.POSIX_SPAWN_OPEN, 2, err, flags, 0o600)])
        deadline = monotonic() + timeout
        rc = None
        while rc is None:
            done, status = waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
            elif monotonic() > deadline:
                os.kill(pid, 9)
                waitpid(pid, 0)
                break
            else:
                sleep(0.05)
        with open(out) as f_out, open(err) as f_err:
            return rc, f_out.read(), f_err.read()


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
