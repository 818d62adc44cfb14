"""The README's main job, `voiceagent demo`, as a user runs it (rule-based LLM, real speech)."""
import os
import subprocess
import sys
import time
from pathlib import Path


def test_demo_call_ends_when_the_conversation_does(tmp_path):
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", MODEL_CACHE_DIR=os.environ.get("MODEL_CACHE_DIR", ""))
    env = {k: v for k, v in env.items() if v != ""}
    cmd = [sys.executable, "-m", "voiceagent.cli", "demo", "--llm", "scripted", "--speed", "2",
           "--say", "What time is it?", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []  # (monotonic, line)
    try:
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "\n".join(text for _, text in lines)
    assert proc.returncode == 0, out[-3000:]
    assert "LLM_BASE_URL is not set" not in out, "a warning for an explicitly chosen rule-based LLM"
    said = [text for _, text in lines if text.startswith("agent says")]
    assert said and "It is" in said[-1], out[-3000:]
    answered_at = max(t for t, text in lines if text.startswith("timings (ms)"))
    ended = [t for t, text in lines if "the caller hangs up" in text or "call ended" in text]
    assert ended, out[-3000:]
    # the last line was answered and the answer played: the caller hangs up within a couple of seconds
    # (it used to wait ~20 s for a hang-up the agent never does after a plain answer)
    assert ended[0] - answered_at < 8.0, out[-3000:]
    assert Path(tmp_path, "demo-heard.wav").stat().st_size > 10000
