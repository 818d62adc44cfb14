"""The Redis pool is bounded and blocking (finding 12c): at 400 calls the default non-blocking pool of
100 ran out ("Too many connections") and 77 record removals were lost."""
import gevent
import redis

from voiceagent.calls.inbox import CallStore

from .test_bulk_hangup import long_greeting
from .test_lifecycle import wait_until


def test_worker_pool_is_blocking_bounded_and_not_held_by_the_inbox(make_emulator, make_worker, redis_prefix):
    emu = make_emulator()
    w = make_worker([emu], redis_max_connections=3, redis_pool_timeout=5)
    pool = w.redis.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == 3
    assert wait_until(lambda: w.redis.exists(w.store.worker_key(w.worker_id)), 5)
    # the inbox listener's BLPOP has its own connection: all three pooled ones are free for calls
    held = [pool.get_connection() for _ in range(3)]
    for c in held:
        pool.release(c)
    # far more concurrent writers than connections: they wait their turn, none fails
    errors = []

    def write(i):
        try:
            w.store.register({"id": f"pool-{i}", "node": "fs1", "worker": w.worker_id, "state": "active"})
            w.store.remove(f"pool-{i}")
        except redis.RedisError as exc:
            errors.append(exc)

    gevent.joinall([gevent.spawn(write, i) for i in range(200)], timeout=30)
    assert errors == [], errors[:3]
    assert CallStore(redis.Redis(), redis_prefix).live_calls() == []


def test_many_calls_ending_together_on_a_small_pool_lose_no_record(make_emulator, make_worker, tmp_path):
    emu = make_emulator(speed=4.0)
    w = make_worker([emu], max_calls=60, redis_max_connections=2,
                    greeting_file=long_greeting(tmp_path / "long.wav", repeat=2))
    calls = [emu.place_call(destination="+15551230000", caller=f"+1555300{i:04d}") for i in range(40)]
    for ch in calls:
        assert ch.wait_answered(30)
    gevent.joinall([gevent.spawn(ch.hangup) for ch in calls], timeout=10)
    assert wait_until(lambda: not w.sessions, 30)
    store = CallStore(redis.Redis(), w.settings.redis_prefix)
    assert wait_until(lambda: store.live_calls() == [], 10), store.live_calls()[:3]
    # Redis applies a write before the worker reads its reply and dequeues it
    assert wait_until(lambda: w.store.pending_ops == 0, 5), w.store.pending_ops


def test_a_calls_writes_never_overtake_each_other(redis_prefix):
    """A refresh still waiting for a connection when its call's removal comes must not land after it."""
    store = CallStore(redis.Redis(), redis_prefix)
    apply = store._apply

    def slow_register(call_id, op, data):
        if op == "register":
            gevent.sleep(0.2)  # e.g. waiting for a pooled connection
        return apply(call_id, op, data)

    store._apply = slow_register
    refresh = gevent.spawn(store.register, {"id": "c1", "worker": "w", "state": "active"})
    gevent.sleep(0.05)  # the register is on its way
    store.remove("c1")
    refresh.join(5)
    assert store.get("c1") is None, "the removed call's record came back"
    assert store.live_calls() == [] and store.pending_ops == 0
