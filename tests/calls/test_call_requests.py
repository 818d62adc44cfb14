"""Outbound call requests end to end: any process places, exactly one worker dials, the record and
the event stream say how it went — against the emulator and real Redis."""
import json
import os
import signal
import subprocess
import sys
import uuid

import gevent
import pytest
import redis

from tests.event_helpers import event_types
from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome

from ..fork_helpers import wait_until
from .conftest import ESL_PASSWORD, set_fork_url
from .redis_faults import free_port


def _cli(prefix, *args, timeout=30):
    env = dict(os.environ, REDIS_PREFIX=prefix)
    out = subprocess.run([sys.executable, "-m", "voiceagent.cli", *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout



def test_a_request_from_another_process_is_dialed_once_by_one_of_two_workers(make_emulator, make_worker,
                                                                              redis_prefix):
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550101", outcome="answer", ring_seconds=0.3)
    w1 = make_worker([emu], originate_gateway="carrier1")
    w2 = make_worker([emu], originate_gateway="carrier1")
    call_id = json.loads(_cli(redis_prefix, "call", "place", "--direct", "--to", "+15550101", "--message",
                              "Hello"))["id"]
    client = CallClient(redis.Redis(), redis_prefix)
    rec = client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED, rec
    assert rec.worker in (w1.worker_id, w2.worker_id)
    states = [h.state for h in rec.history]
    assert states[:2] == ["requested", "claimed"] and "dialing" in states and "ringing" in states
    assert states.index("dialing") < states.index("ringing") < states.index("answered") < states.index("ended")
    assert rec.duration > 0 and rec.ended_by == "agent" and rec.hangup_cause
    # dialed once: one channel to that number on the switch, with our id as its uuid
    dialed = [ch for ch in emu.all_channels() if ch.destination == "+15550101"]
    assert [ch.uuid for ch in dialed] == [call_id]
    assert rec.turns and rec.turns[0].kind == "greeting"
    types = event_types(client, call_id)
    assert types[0] == "call.requested" and types[-1] == "call.ended"
    assert types.index("call.dialing") < types.index("call.ringing") < types.index("call.answered")
    # the other process reads the same record
    got = json.loads(_cli(redis_prefix, "call", "get", call_id))
    assert got["outcome"] == "answered" and got["id"] == call_id


@pytest.mark.parametrize("script,expected", [("busy", Outcome.BUSY), ("no_answer", Outcome.NO_ANSWER),
                                             ("reject", Outcome.REJECTED)])
def test_failed_attempts_land_in_the_record_and_on_the_stream(make_emulator, make_worker, redis_prefix, script,
                                                              expected):
    emu = make_emulator(speed=20.0)
    emu.script_destination("+15550102", outcome=script)
    make_worker([emu], originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550102", "ring_timeout": 5})
    rec = client.wait(call_id, timeout=30)
    assert rec.outcome == expected and rec.duration == 0 and rec.answered_at is None
    assert rec.hangup_cause
    ended = [ev for _, ev in client.stream.read("g", "c", block_ms=1) if ev.call_id == call_id][-1]
    assert ended.type == "call.ended" and ended.outcome == expected


def test_twenty_requests_two_workers_never_exceed_capacity(make_emulator, make_worker, redis_prefix):
    emu = make_emulator(speed=8.0)
    numbers = [f"+1555020{i:02d}" for i in range(20)]
    for n in numbers:
        emu.script_destination(n, outcome="answer", ring_seconds=0.2)
    workers = [make_worker([emu], originate_gateway="carrier1", max_calls=3) for _ in range(2)]
    peak = {"total": 0, **{w.worker_id: 0 for w in workers}}
    stop = gevent.event.Event()

    def sample():
        while not stop.is_set():
            per = {w.worker_id: w.live_calls() for w in workers}
            for k, v in per.items():
                peak[k] = max(peak[k], v)
            peak["total"] = max(peak["total"], sum(per.values()), len(emu.channels))
            gevent.sleep(0.005)

    g = gevent.spawn(sample)
    client = CallClient(redis.Redis(), redis_prefix)
    ids = [client.place({"to": n, "deadline_seconds": 300}) for n in numbers]
    try:
        recs = [client.wait(i, timeout=180) for i in ids]
    finally:
        stop.set()
        g.join(2)
    assert [r.outcome for r in recs] == [Outcome.ANSWERED] * 20
    assert peak["total"] <= 6 and all(peak[w.worker_id] <= 3 for w in workers), peak
    assert {r.worker for r in recs} == {w.worker_id for w in workers}  # both took work
    # from the records alone: no worker ever had more than 3 calls between claim and end
    for w in workers:
        spans = [(r.history[1].at, r.ended_at) for r in recs if r.worker == w.worker_id]
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
        live = worst = 0
        for _, d in edges:
            live += d
            worst = max(worst, live)
        assert worst <= 3, (w.worker_id, worst)


def test_a_worker_killed_after_claiming_leaves_a_failed_record_and_no_second_dial(make_emulator, make_worker,
                                                                                  redis_prefix, tmp_path):
    emu = make_emulator(speed=1.0)
    emu.script_destination("+15550103", outcome="answer", ring_seconds=60)  # rings while we kill the worker
    port = free_port()
    wid = f"doomed-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, ESL_NODES=f"fs1=127.0.0.1:{emu.port}", ESL_PASSWORD=ESL_PASSWORD,
               FORK_HOST="127.0.0.1", FORK_PORT=str(port), REDIS_PREFIX=redis_prefix, WORKER_ID=wid,
               DIALOG="greeting", PLAYBACK_DIR=str(tmp_path / "pb"), ORIGINATE_GATEWAY="carrier1",
               WORKER_HEARTBEAT_SECONDS="0.5", WORKER_HEARTBEAT_TTL="2")
    set_fork_url(emu, f"ws://127.0.0.1:{port}")
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], env=env, stdout=log, stderr=log)
    client = CallClient(redis.Redis(), redis_prefix)
    try:
        assert wait_until(lambda: client.r.exists(client.keys.worker(wid)), 30), (tmp_path / "worker.log").read_text()
        call_id = client.place({"to": "+15550103", "ring_timeout": 120})
        rec = client.wait(call_id, until="ringing", timeout=30)
        assert rec.worker == wid
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # a surviving worker sweeps: the record is ended, saying which worker died in which state
    survivor = make_worker([emu], originate_gateway="carrier1", worker_heartbeat_ttl=2, worker_heartbeat_seconds=0.5,
                           orphan_sweep_seconds=0.5)
    rec = client.wait(call_id, timeout=30)
    assert rec.outcome == Outcome.FAILED and wid in rec.reason and "ringing" in rec.reason, rec
    assert client.records.pending_count() == 0
    gevent.sleep(1.5)  # three more sweeps: the survivor must not dial the request again
    assert [ch.uuid for ch in emu.all_channels() if ch.destination == "+15550103"] == [call_id]
    assert not survivor.sessions


def test_a_request_nobody_can_take_fails_at_its_deadline(redis_prefix):
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "1000", "deadline_seconds": 0.5})
    rec = client.wait(call_id, timeout=10)
    assert rec.outcome == Outcome.FAILED and "deadline" in rec.reason


def test_cancel_while_ringing_ends_canceled(make_emulator, make_worker, redis_prefix):
    emu = make_emulator(speed=1.0)
    emu.script_destination("+15550104", outcome="answer", ring_seconds=30)
    make_worker([emu], originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550104", "ring_timeout": 60})
    client.wait(call_id, until="ringing", timeout=20)
    client.cancel(call_id)
    rec = client.wait(call_id, timeout=20)
    assert rec.outcome == Outcome.CANCELED, rec


def test_a_cancel_between_claim_and_dial_is_not_dialed(make_emulator, make_worker, redis_prefix):
    emu = make_emulator(speed=20.0)
    emu.script_destination("+15550105", outcome="answer")
    w = make_worker([emu], originate_gateway="carrier1", take_requests=False)
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550105"})
    assert w.records.take_request(w.worker_id, claim_ttl=60) == call_id
    claim = w.requests._claim

    def claim_then_cancel(cid):  # the operator cancels right after the worker marked the record claimed
        rec = claim(cid)
        client.cancel(cid)
        return rec

    w.requests._claim = claim_then_cancel
    w.requests.reserved += 1
    w.requests._dial(call_id)
    rec = client.get(call_id)
    assert rec.outcome == Outcome.CANCELED and "before dialing" in rec.reason, rec
    assert not [ch for ch in emu.all_channels() if ch.destination == "+15550105"]
    assert w.requests.reserved == 0


def test_the_cli_prints_a_dial_policy_refusal_and_exits_2(redis_prefix):
    env = dict(os.environ, REDIS_PREFIX=redis_prefix, DIAL_ALLOWED_PATTERNS=r"10\d\d")
    out = subprocess.run([sys.executable, "-m", "voiceagent.cli", "call", "place", "--to", "+12025550123"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and out.stdout == "", out
    assert "refused by the dial policy: to:" in out.stderr and "DIAL_ALLOWED_PATTERNS" in out.stderr
    assert CallClient(redis.Redis(), redis_prefix).list(limit=5) == []


def test_the_cli_queues_a_call_like_the_api_and_direct_skips_the_queue(redis_prefix):
    """``voiceagent call place`` goes through the dispatcher (the cluster limit and retries apply)."""
    client = CallClient(redis.Redis(), redis_prefix)
    bulk = json.loads(_cli(redis_prefix, "call", "place", "--to", "+15550106", "--priority", "bulk"))["id"]
    rec = client.get(bulk)
    assert rec.state == "queued" and rec.priority == "bulk", rec
    assert client.records.queued_counts() == {"high": 0, "bulk": 1}
    direct = json.loads(_cli(redis_prefix, "call", "place", "--direct", "--to", "+15550107"))["id"]
    assert client.get(direct).state == "requested" and client.records.pending_count() == 1
