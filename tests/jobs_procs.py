"""``voiceagent jobs worker`` as a real process (kill -9 able), and a persistent Redis of a test's own."""
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.calls.redis_faults import RedisServer

ROOT = Path(__file__).resolve().parents[1]


class JobsWorker:
    """The RQ worker with its scheduler, in its own process group (the scheduler is a forked child)."""

    def __init__(self, prefix: str, log_dir: Path, redis_url: str = "redis://127.0.0.1:6379/0", **env: str):
        self.prefix, self.log_dir, self.redis_url, self.env = prefix, log_dir, redis_url, env
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        import sys

        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCHEDULE_", "DIAL_"))}
        # fast job leases and maintenance: a killed worker's job (a dial, a run) is retried within seconds
        env.update(REDIS_PREFIX=self.prefix, REDIS_URL=self.redis_url, PYTHONPATH=str(ROOT),
                   JOBS_HEARTBEAT_SECONDS="1", JOBS_MAINTENANCE_SECONDS="1", **self.env)
        log = open(self.log_dir / f"jobs-worker-{self.starts}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "jobs", "worker"],
                                     cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def kill9(self) -> None:
        """SIGKILL the worker and its scheduler child at once (no clean-up, locks left held)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill9()
            self.proc = None

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("jobs-worker-*.log")))


class PersistentRedis(RedisServer):
    """A redis-server with an append-only file fsynced on every write, in the test's tmp dir."""

    def __init__(self, workdir: Path):
        super().__init__(workdir, persistent=True)

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def jobs_worker(redis_prefix, tmp_path):
    """Start ``voiceagent jobs worker`` processes for this test's prefix; all stopped at its end."""
    workers = []

    def start(**kw):
        w = JobsWorker(redis_prefix, tmp_path, **kw)
        w.start()
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
