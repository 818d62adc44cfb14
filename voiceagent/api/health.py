"""GET /health: can this API place calls, and who would dial them.

Public (no token), so a load balancer can probe it.  Redis unreachable is 503: nothing can be
placed or read.  No live voice worker is still 200 (requests wait for one until their
deadline), reported as ``no_workers``.  Workers are read from their heartbeats, which expire
with WORKER_HEARTBEAT_TTL, so a dead worker drops out on its own.  Each heartbeat carries the
worker's ESL links (``nodes``: state and since); ``nodes`` here is every node a live worker
serves, connected while any of them is, so a node nobody is connected to shows up as such.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import redis
from flask import Blueprint, Response, jsonify

from .calls import client
from .models import Health, NodeHealth, NodeLinkHealth, WorkerHealth
from .openapi import operation

bp = Blueprint("health", __name__)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _workers() -> List[WorkerHealth]:
    c = client()
    out = []
    for key in sorted(c.r.scan_iter(match=c.keys.worker_pattern, count=500)):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.endswith(":inbox"):
            continue
        info = {_text(k): _text(v) for k, v in c.r.hgetall(name).items()}
        if not info:
            continue  # expired between SCAN and HGETALL
        try:
            out.append(WorkerHealth(id=name.rsplit(":", 1)[-1], calls=int(info.get("calls", 0)),
                                    max_calls=int(info.get("max_calls", 0)), room=int(info.get("room", 0)),
                                    draining=info.get("draining", "0") not in ("0", ""),
                                    seen=float(info.get("seen", 0)), nodes=_links(info.get("nodes", ""))))
        except ValueError:
            continue  # a heartbeat this version cannot read
    return out


def _links(raw: str) -> List[NodeLinkHealth]:
    """The heartbeat's ``nodes`` JSON; a worker of an older version (none) or a bad entry gives nothing."""
    try:
        data = json.loads(raw) if raw else {}
        return [NodeLinkHealth(node=str(n), **v) for n, v in sorted(data.items())] if isinstance(data, dict) else []
    except (ValueError, TypeError):
        return []


_RANK = {"connected": 0, "reconnecting": 1, "down": 2}


def nodes_of(workers: List[WorkerHealth]) -> List[NodeHealth]:
    """Per node: the best state any live worker's link is in, since the earliest link in that state."""
    links: Dict[str, List[Tuple[str, NodeLinkHealth]]] = {}
    for w in workers:
        for link in w.nodes:
            links.setdefault(link.node, []).append((w.id, link))
    out = []
    for name, held in sorted(links.items()):
        best = min((link.state for _, link in held), key=_RANK.__getitem__)
        out.append(NodeHealth(name=name, state=best, since=min(link.since for _, link in held if link.state == best),
                              workers={wid: link.state for wid, link in held}))
    return out


@bp.get("/health")
@operation("Redis, live voice workers (calls, capacity, room, ESL links), FreeSWITCH nodes and queued requests",
           public=True,
           responses={200: Health, 503: Health})
def health() -> Tuple[Response, int]:
    try:
        client().r.ping()
        workers = _workers()
        pending = client().records.pending_count()
        queued = client().records.queued_counts()
    except redis.RedisError as exc:
        return jsonify(Health(status="down", redis=False, error=f"redis: {exc}").model_dump()), 503
    status = "ok" if any(not w.draining for w in workers) else "no_workers"
    return jsonify(Health(status=status, redis=True, workers=workers, nodes=nodes_of(workers),
                          pending_requests=pending, queued=queued).model_dump()), 200
