"""Many callers hanging up at once must leave nothing behind (finding 12b of the load pass).

The leak was a lost wake-up in gevent: ``Event.wait()`` on an Event that is already set while its
notifier is pending parks the caller without a timeout, and the notifier is cancelled when the last
other waiter (the greeting dialog's ``gevent.wait``) unlinks; the session's supervisor then waited
for ``ended`` forever (see ``voiceagent/calls/flags.py``)."""
import random
import wave

import gevent

from voiceagent.calls.inbox import CallStore
from voiceagent.calls.worker import default_greeting_path

from .conftest import temp_files
from .test_lifecycle import wait_until


def long_greeting(path, repeat=5):
    """The packaged greeting, ``repeat`` times over: every caller hangs up while it still plays."""
    with wave.open(default_greeting_path(), "rb") as src:
        params, pcm = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(pcm * repeat)
    return str(path)


def test_hundred_callers_hanging_up_within_a_second_leave_nothing(make_emulator, make_worker, tmp_path):
    # a 20 s greeting in real time, written to PLAYBACK_DIR (no 100 uploads): every caller hangs up while
    # it plays, even on a loaded machine
    emu = make_emulator(speed=1.0)
    w = make_worker([emu], max_calls=120, playback_mode="shared", greeting_file=long_greeting(tmp_path / "long.wav"))
    calls = [emu.place_call(destination="+15551230000", caller=f"+1555200{i:04d}") for i in range(100)]
    for i, ch in enumerate(calls):
        assert ch.wait_answered(30), f"call {i} not answered"
    assert wait_until(lambda: len(w.sessions) == 100 and all(s.playbacks for s in w.sessions.values()), 15)
    rnd = random.Random(12)
    hangups = [gevent.spawn_later(rnd.uniform(0, 1.0), ch.hangup) for ch in calls]
    gevent.joinall(hangups, timeout=10)
    for ch in calls:
        assert ch.wait_hangup(10)
    assert wait_until(lambda: not w.sessions, 20), \
        f"{len(w.sessions)} sessions left: {[(s.id, s.state.value) for s in w.sessions.values()][:5]}"
    assert wait_until(lambda: len(w.greenlets) == 0, 10), f"greenlets left: {list(w.greenlets)[:5]}"
    store = CallStore(w.redis, w.settings.redis_prefix)
    assert wait_until(lambda: store.live_calls() == [], 10), store.live_calls()[:3]
    assert not list(w.redis.scan_iter(f"{w.settings.redis_prefix}:call:*"))
    assert temp_files(w.settings.playback_dir) == []
