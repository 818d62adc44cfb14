"""The latency bench's remote-speech mode (``voiceagent bench latency --speech remote``): the same calls with
the voice worker's STT and TTS on a speech server on loopback (``voiceagent speech-server``, its own process),
so the table shows what the HTTP hop costs next to the in-process run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Tuple

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _real_requests() -> None:
    """bench/requests.py (the requests benchmark) shadows the HTTP library once bench/ is on sys.path: import
    the library (which the remote speech backends use) with bench/ out of the way."""
    here = os.path.dirname(os.path.abspath(__file__))
    mod = sys.modules.get("requests")
    if mod is not None and hasattr(mod, "Session"):
        return
    sys.modules.pop("requests", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import requests  # noqa: F401
    finally:
        sys.path[:] = saved


_real_requests()


class SpeechServer:
    """``voiceagent speech-server --port 0`` as a child process; ``base_url`` once it listens."""

    def __init__(self, log_path: str, batch: bool = True) -> None:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT), HF_HUB_OFFLINE="1")
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "speech-server", "--port", "0",
                                          "--batch" if batch else "--no-batch"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.base_url = ""

    def wait_ready(self, timeout: float = 300.0) -> "SpeechServer":
        import gevent

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log_path) as f:
                m = re.search(r"listening on (http://\S+/v1)", f.read())
            if m:
                self.base_url = m.group(1)
                return self
            gevent.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the speech server did not start (see {self.log_path})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def remote_models(models: Dict[str, Any], out: str) -> Tuple[SpeechServer, Dict[str, Any]]:
    """Start the speech server; the bench's models with STT and TTS replaced by its remote clients (no fallback:
    a failure shows in the run, not hidden by a local model)."""
    from voiceagent.config import load_settings
    from voiceagent.speech.remote_stt import RemoteTranscriber
    from voiceagent.speech.remote_tts import RemoteTTS

    server = SpeechServer(os.path.join(out, "speech-server.log")).wait_ready()
    s = load_settings(stt_backend="remote", stt_url=server.base_url, tts_engine="remote", tts_url=server.base_url)
    remote = dict(models, stt=RemoteTranscriber.from_settings(s), tts=RemoteTTS.from_settings(s))
    return server, remote
