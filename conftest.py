# gevent must patch the standard library before anything imports socket, ssl, threading
# or an HTTP client; pytest loads this file before the test modules and the package.
from gevent import monkey

monkey.patch_all()

import os

# Deterministic speech: Piper without its random noise gives the same samples for the same text,
# so Whisper's reading of the synthesized callers (and of the agent) is the same on every run.
os.environ.setdefault("TTS_NOISE_SCALE", "0")
os.environ.setdefault("TTS_NOISE_W", "0")

import gevent  # noqa: E402
import pytest  # noqa: E402

from tests import watcher_guard  # noqa: E402

watcher_guard.install()


@pytest.fixture(autouse=True)
def no_selector_left_on_a_closed_descriptor():
    """Fail the test that leaves a gevent selector watching a closed descriptor: that watcher
    outlives the test and, on a reused descriptor number, can abort the whole run."""
    yield
    # one loop iteration: gevent closes a descriptor that another watcher still watches only in the
    # loop's next check phase
    gevent.sleep(0.001)
    found = watcher_guard.stale()
    with gevent.Timeout(0.5, False):  # a connection closing right now: its selector is closed a moment later
        while found:
            gevent.sleep(0.01)
            found = watcher_guard.stale()
    if found:
        watcher_guard.close_selectors(found)
        pytest.fail("a gevent selector was left watching a closed descriptor ("
                    + "; ".join(map(str, found)) + "): close the selector (websockets' serve_forever never "
                    "does: use tests.ws_helpers.serve_in_greenlet)")
