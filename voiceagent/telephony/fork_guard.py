"""How many sockets the fork server may hold, and whose go first when it is full.

Every accepted socket costs a file descriptor before anyone knows whether it is FreeSWITCH:
an unauthenticated peer can open hundreds and never send a byte.  The guard counts every
socket from accept() to close and splits them in two:

* *established* sockets carry a call FreeSWITCH has confirmed — never dropped here (MAX_CALLS
  already bounds them);
* *pending* ones (upgrade not done, metadata not sent, channel not confirmed) can be dropped.

When one address has ``max_pending_per_address`` pending sockets, its oldest is dropped for
the new one; when the server holds ``max_total``, the oldest pending socket of the address
with the most pending ones is dropped.  So the newest connection always gets its chance (a
real fork completes its upgrade in milliseconds), and a flood from one address mostly hurts
that address.  A dropped socket is shut down; its handler then sees EOF and closes it.
"""
from __future__ import annotations

import logging
import resource
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

# RLIMIT_NOFILE cannot exceed fs.nr_open (1048576 by default) even when the hard limit is infinite.
_NR_OPEN_DEFAULT = 1 << 20


@dataclass(eq=False)
class Slot:
    """One accepted socket, from accept() until its handler has closed it."""

    sock: socket.socket
    address: str
    port: int
    opened: float = field(default_factory=time.monotonic)
    upgraded: bool = False      # the WebSocket handshake completed
    established: bool = False   # carries a confirmed call
    dropped: bool = False

    @property
    def remote(self) -> str:
        return f"{self.address}:{self.port}"

    def abort(self) -> None:
        """Make the socket's handler see EOF now (handshake or recv), so it closes the socket."""
        self.dropped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed or never connected


class ConnectionGuard:
    def __init__(self, max_total: int, max_pending_per_address: int) -> None:
        self.max_total = max_total
        self.max_pending_per_address = max_pending_per_address
        self._lock = threading.Lock()
        self._pending: Dict[str, Dict[Slot, None]] = {}  # address → its pending slots, oldest first
        self._established: Dict[Slot, None] = {}
        self._by_sock: Dict[socket.socket, Slot] = {}
        self.dropped = 0
        self.refused = 0

    # ------------------------------------------------------------------ counts
    @property
    def total(self) -> int:
        return len(self._by_sock)

    @property
    def pending(self) -> int:
        return self.total - len(self._established)

    def stats(self) -> Dict[str, int]:
        return {"connections": self.total, "pending": self.pending, "dropped": self.dropped, "refused": self.refused}

    # ------------------------------------------------------------------ transitions
    def admit(self, sock: socket.socket, addr: Any) -> Tuple[Optional[Slot], List[Slot]]:
        """Register an accepted socket: (its slot or None if refused, the slots dropped for it).

        The caller aborts the dropped slots and closes a refused socket.
        """
        host, port = _split_addr(addr)
        victims: List[Slot] = []
        with self._lock:
            mine = self._pending.get(host)
            if mine is not None and len(mine) >= self.max_pending_per_address:
                victims.append(self._drop_locked(next(iter(mine))))
            if self.total >= self.max_total:
                fullest = max(self._pending.values(), key=len, default=None)
                if not fullest:
                    self.refused += 1
                    return None, victims
                victims.append(self._drop_locked(next(iter(fullest))))
            slot = Slot(sock, host, port)
            self._by_sock[sock] = slot
            self._pending.setdefault(host, {})[slot] = None
        return slot, victims

    def slot_for(self, sock: socket.socket) -> Optional[Slot]:
        return self._by_sock.get(sock)

    def establish(self, slot: Slot) -> None:
        """The socket carries a confirmed call: it no longer counts as pending and is never dropped."""
        with self._lock:
            if slot.established or slot.dropped or self._by_sock.get(slot.sock) is not slot:
                return
            self._forget_pending_locked(slot)
            slot.established = True
            self._established[slot] = None

    def release(self, slot: Slot) -> None:
        """The handler is done and the socket closed (idempotent)."""
        with self._lock:
            if self._by_sock.get(slot.sock) is slot:
                del self._by_sock[slot.sock]
            self._forget_pending_locked(slot)
            self._established.pop(slot, None)

    def drop_oldest(self, n: int) -> List[Slot]:
        """Up to ``n`` oldest pending slots, taken from the addresses with the most (file descriptors ran out)."""
        out: List[Slot] = []
        with self._lock:
            while len(out) < n:
                fullest = max(self._pending.values(), key=len, default=None)
                if not fullest:
                    break
                out.append(self._drop_locked(next(iter(fullest))))
        return out

    def pending_slots(self) -> List[Slot]:
        with self._lock:
            return [s for slots in self._pending.values() for s in slots]

    # ------------------------------------------------------------------ internals (lock held)
    def _drop_locked(self, slot: Slot) -> Slot:
        """Stop counting a pending slot now (its socket closes a moment later)."""
        self._forget_pending_locked(slot)
        if self._by_sock.get(slot.sock) is slot:
            del self._by_sock[slot.sock]
        slot.dropped = True
        self.dropped += 1
        return slot

    def _forget_pending_locked(self, slot: Slot) -> None:
        mine = self._pending.get(slot.address)
        if mine is not None:
            mine.pop(slot, None)
            if not mine:
                del self._pending[slot.address]


def _split_addr(addr: Any) -> Tuple[str, int]:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return str(addr), 0


def raise_nofile_limit(getrlimit: Callable = resource.getrlimit, setrlimit: Callable = resource.setrlimit) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (1024 soft is ~340 idle forks); returns the soft limit."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _NR_OPEN_DEFAULT
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("raised the open-file limit from %d to %d", soft, target)
            return target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft if soft != resource.RLIM_INFINITY else _NR_OPEN_DEFAULT


# descriptors one fork connection holds: its socket and the socketpair websockets' sync Connection makes
FDS_PER_CONNECTION = 3


def effective_max_connections(requested: int, nofile_soft: int, reserve: int = 128) -> int:
    """FORK_MAX_CONNECTIONS, kept below the descriptor limit (ESL, Redis, models and files need some too)."""
    ceiling = max(16, (nofile_soft - reserve) // FDS_PER_CONNECTION)
    if requested > ceiling:
        log.warning("FORK_MAX_CONNECTIONS=%d exceeds what the open-file limit %d allows; using %d",
                    requested, nofile_soft, ceiling)
        return ceiling
    return requested
