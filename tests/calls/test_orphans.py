"""A SIGKILLed worker leaves nothing behind for long (finding 6).

Its parked channel is hung up and its Redis record closed by a live worker (one of them, by
claim), its inbox expires, commands for its calls are refused, shared-mode WAVs are swept, and
a parked call whose fork never connected is hung up instead of waiting out the park timeout.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import wave

import gevent
import pytest
import redis

from voiceagent.calls.inbox import CallNotFound, CallStore

from .conftest import ESL_PASSWORD, set_fork_url
from .redis_faults import free_port
from .test_lifecycle import _SilentDialog, wait_until


def _count_kills(worker):
    """Record every uuid_kill the worker sends (through any of its nodes)."""
    kills = []
    for node in worker.nodes.values():
        orig = node.fs.kill

        def kill(call_id, cause="NORMAL_CLEARING", _orig=orig, _node=node.name):
            kills.append((_node, call_id, cause))
            return _orig(call_id, cause)

        node.fs.kill = kill
    return kills


def _silence_wav(path, seconds):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return str(path)


def test_calls_of_a_sigkilled_worker_are_swept_by_one_live_worker(make_emulator, make_worker, redis_prefix, tmp_path):
    emu = make_emulator(speed=1.0)
    port = free_port()
    wid = f"doomed-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, ESL_NODES=f"fs1=127.0.0.1:{emu.port}", ESL_PASSWORD=ESL_PASSWORD, FORK_HOST="127.0.0.1",
               FORK_PORT=str(port), REDIS_PREFIX=redis_prefix, WORKER_ID=wid, DIALOG="greeting",
               GREETING_FILE=_silence_wav(tmp_path / "long.wav", 120), PLAYBACK_DIR=str(tmp_path / "pb"),
               WORKER_HEARTBEAT_SECONDS="0.3", WORKER_HEARTBEAT_TTL="1.5", LOG_FORMAT="json")
    set_fork_url(emu, f"ws://127.0.0.1:{port}")
    r = redis.Redis()
    store = CallStore(r, redis_prefix)
    log = open(tmp_path / "doomed.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], env=env, stdout=log, stderr=log)
    try:
        assert wait_until(lambda: r.exists(store.worker_key(wid)), 30), (tmp_path / "doomed.log").read_text()
        ch = emu.place_call(destination="+15551230000", caller="+15551230001")
        assert ch.wait_answered(15), (tmp_path / "doomed.log").read_text()
        assert wait_until(lambda: (store.get(ch.uuid) or {}).get("state") == "active", 10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # the dead worker's heartbeat expires; its call is still parked and still listed
    assert wait_until(lambda: not r.exists(store.worker_key(wid)), 20)
    assert not ch.hangup_cause and ch.uuid in [c["id"] for c in store.live_calls()]
    with pytest.raises(CallNotFound):
        store.send_command(ch.uuid, {"type": "hangup"})  # nobody would ever read it
    assert not r.exists(store.inbox_key(wid))
    # two live workers sweep at the same moment; exactly one hangs the orphan up
    sweepers = [make_worker([emu], orphan_sweep_seconds=60, worker_heartbeat_seconds=0.3,
                            worker_heartbeat_ttl=1.5, dialog_factory=lambda call: _SilentDialog()) for _ in range(2)]
    kills = [_count_kills(w) for w in sweepers]
    # (a record younger than the heartbeat TTL is never swept: its worker may not have beaten yet)
    assert wait_until(lambda: time.time() - float(store.get(ch.uuid)["started"]) > 1.6, 5)
    sweeps = [gevent.spawn(w.recovery.sweep_orphans) for w in sweepers]
    gevent.joinall(sweeps, timeout=15, raise_error=True)
    assert sorted(g.value for g in sweeps) == [0, 1], [g.value for g in sweeps]
    assert ch.wait_hangup(15), "the orphaned channel was never hung up"
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"
    assert wait_until(lambda: ch.uuid not in r.smembers(store.live_key) and
                      ch.uuid.encode() not in r.smembers(store.live_key), 5)
    rec = store.get(ch.uuid)
    assert rec is not None and rec["outcome"] == "failed" and rec["reason"] == "worker_lost", rec
    assert rec["swept_by"] in {w.worker_id for w in sweepers}
    gevent.joinall([gevent.spawn(w.recovery.sweep_orphans) for w in sweepers], timeout=15)  # nothing left to do
    assert sum(len(k) for k in kills) == 1, kills


def test_inbox_expires_with_its_worker(redis_prefix):
    r = redis.Redis()
    store = CallStore(r, redis_prefix, inbox_ttl=30)
    store.heartbeat("w-alive", {"calls": 0}, ttl=30)
    store.register({"id": "call-1", "node": "fs1", "worker": "w-alive", "state": "active", "started": time.time()})
    store.send_command("call-1", {"type": "hangup"})
    assert 0 < r.ttl(store.inbox_key("w-alive")) <= 30, "an inbox without a TTL outlives a dead worker"
    store.heartbeat("w-alive", {"calls": 0}, ttl=10)
    assert 0 < r.ttl(store.inbox_key("w-alive")) <= 10, "the heartbeat does not refresh the inbox TTL"


def test_parked_call_whose_fork_failed_is_hung_up_by_one_worker(make_emulator, make_worker):
    emu = make_emulator(speed=4.0)
    workers = [make_worker([emu]) for _ in range(2)]
    kills = [_count_kills(w) for w in workers]
    set_fork_url(emu, f"ws://127.0.0.1:{free_port()}")  # nobody listens: mod_audio_fork::connect_failed
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_hangup(10), "a parked call nobody can serve waited for its park timeout"
    assert not ch.answered and ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"
    gevent.sleep(0.5)
    assert sum(len(k) for k in kills) == 1, kills


def test_failed_fork_of_a_call_another_worker_owns_is_left_to_it(make_emulator, make_worker):
    emu = make_emulator(speed=4.0)
    owner = make_worker([emu], dialog_factory=lambda call: _SilentDialog())
    other = make_worker([emu])
    set_fork_url(emu, owner.fork_url_base)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in owner.sessions, 5)
    kills = _count_kills(other)
    # e.g. the owner's fork restart failing: the owner decides, not a bystander
    ch.fork_event("audio_fork", "mod_audio_fork::connect_failed", json.dumps({"reason": "x"}).encode())
    assert not ch.wait_hangup(1.0)
    assert kills == []
    ch.hangup()


def test_stale_playback_wavs_are_swept_at_startup_and_periodically(make_emulator, make_worker, tmp_path):
    pb = tmp_path / "shared-pb"
    pb.mkdir()
    old = time.time() - 3600
    stale = [pb / f"{uuid.uuid4()}-3.wav", pb / f"{uuid.uuid4()}-12.wav.part"]
    keep = [pb / f"{uuid.uuid4()}-4.wav", pb / "hold-music.wav", pb / "notes.txt"]
    for f in stale + keep:
        f.write_bytes(b"RIFF")
    for f in stale + keep[1:]:
        os.utime(f, (old, old))  # keep[0] is fresh; keep[1:] are old but not ours
    emu = make_emulator()
    w = make_worker([emu], playback_dir=pb, playback_max_age_minutes=5, orphan_sweep_seconds=0.2)
    assert not any(f.exists() for f in stale), "stale WAVs survived the start-up sweep"
    assert all(f.exists() for f in keep)
    later = pb / f"{uuid.uuid4()}-1.wav"
    later.write_bytes(b"RIFF")
    os.utime(later, (old, old))
    assert wait_until(lambda: not later.exists(), 5), "the periodic sweep never removed a stale WAV"
    assert all(f.exists() for f in keep)
    assert w.sessions == {}
