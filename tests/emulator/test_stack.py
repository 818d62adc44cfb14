"""The one-process emulator + worker set-up the demo, the latency benchmark and the e2e tests share."""
import uuid

import pytest
import redis

from voiceagent.emulator.stack import FORK_URL_VAR, EmulatedStack, StackError, stack_settings


@pytest.fixture
def settings(tmp_path):
    prefix = f"vatest-{uuid.uuid4().hex[:8]}"
    yield stack_settings("stacktest", redis_prefix=prefix, playback_dir=tmp_path / "pb", admission_max_loop_lag_ms=0)
    r = redis.Redis()
    keys = list(r.scan_iter(f"{prefix}:*"))
    if keys:
        r.delete(*keys)


def test_a_call_reaches_the_worker_and_hears_the_greeting(settings, tmp_path):
    with EmulatedStack(settings, speed=4.0, temp_dir=str(tmp_path)) as stack:  # the built-in greeting dialog
        emu, worker = stack.emulator, stack.worker
        assert stack.settings.esl_nodes == {"fs1": f"127.0.0.1:{emu.port}"}  # the port filled in
        assert emu.global_vars[FORK_URL_VAR] == worker.fork_url_base  # the dialplan forks to this worker
        ch = stack.call()
        assert ch.wait_answered(10)
        sess = stack.session(ch, 10)
        assert sess is not None and sess.id == ch.uuid
        assert stack.wait_quiet(ch, 20) or ch.hangup_event.is_set()
        assert ch.wait_hangup(20), "the greeting dialog hangs up after the greeting"
        assert [s["status"] for s in ch.segments] == ["done"]  # the whole greeting reached the caller
    assert worker.stopped.is_set() and emu.port and not emu.channels


def test_a_worker_that_cannot_log_in_is_an_error_and_nothing_is_left_running(settings, tmp_path, monkeypatch):
    from voiceagent.emulator import stack as stack_module

    real = stack_module.start_emulator
    monkeypatch.setattr(stack_module, "start_emulator", lambda password, **kw: real("not-" + password, **kw))
    stack = EmulatedStack(settings, temp_dir=str(tmp_path), connect_timeout=1.0)
    with pytest.raises(StackError):
        stack.start()
    assert stack.worker.stopped.is_set() and not stack.emulator.listeners
