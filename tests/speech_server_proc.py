"""``voiceagent speech-server`` as a real process on a free port (it prints its URL; we read it from its log)."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import gevent

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-speech-token"


class SpeechServerProcess:
    def __init__(self, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.base_url = ""

    def start(self, timeout: float = 180.0) -> "SpeechServerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPEECH_SERVER_", "STT_", "TTS_ENGINE"))}
        env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TTS_NOISE_SCALE="0", TTS_NOISE_W="0", **self.env)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "speech-server", "--port", "0"],
                                         cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the URL line, or the process gone
            m = re.search(r"listening on (http://\S+/v1)", self.log())
            if m:
                self.base_url = m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            gevent.sleep(0.1)
        self.stop()
        raise RuntimeError("the speech server did not start:\n" + self.log()[-3000:])

    @property
    def origin(self) -> str:
        return self.base_url[: -len("/v1")]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self.proc = None


def running(log_dir: Path, **env: str) -> Iterator[SpeechServerProcess]:
    """A started server with the test token, stopped when the generator closes (``yield from`` in a fixture)."""
    proc = SpeechServerProcess(log_dir / "server.log", SPEECH_SERVER_TOKEN=TOKEN, **env).start()
    try:
        yield proc
    finally:
        proc.stop()
