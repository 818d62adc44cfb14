# gevent must patch the standard library before anything imports socket, ssl, threading
# or an HTTP client; pytest loads this file before the test modules and the package.
from gevent import monkey

monkey.patch_all()

import os

# Deterministic speech: Piper without its random noise gives the same samples for the same text,
# so Whisper's reading of the synthesized callers (and of the agent) is the same on every run.
os.environ.setdefault("TTS_NOISE_SCALE", "0")
os.environ.setdefault("TTS_NOISE_W", "0")
