"""Semantic end-of-turn: Pipecat's smart-turn v3 model, run on the caller's audio at a pause.

Silence alone cannot tell "What time is it?" (answer now) from "I'd like to book... um..." (the
caller is still thinking).  smart-turn v3 is a small Whisper-encoder classifier trained on exactly
that: it hears the intonation and the words of the last <= 8 s and returns the probability that
the turn is complete.

The model file ships inside the ``pipecat-ai`` wheel (installed with ``--no-deps``, from
requirements-turn.txt): we locate the file through the package's metadata and never import
pipecat's code.  Input: Whisper log-mel features (80 bins x 800 frames of 10 ms) of the last 8 s
at 16 kHz, zero-padded at the *start* when shorter and normalised to zero mean / unit variance
first, as the model was trained; output: one sigmoid probability.  One inference costs ~44 ms
on one core, so it runs in the native inference pool (speech/inference.py), never on a greenlet.
"""
from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .models import ModelNotAvailable

__all__ = ["TurnModel", "smart_turn_path", "WINDOW_S", "PACKAGE", "MODEL_FILE"]

RATE = 16000
WINDOW_S = 8  # the model hears the last 8 s of the turn
PACKAGE = "pipecat-ai"
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


def smart_turn_path(configured: str = "") -> Path:
    """The ONNX file: SMART_TURN_MODEL when set, else the one packaged in pipecat-ai (found without
    importing the package)."""
    if configured:
        p = Path(configured).expanduser()
        if not p.is_file():
            raise ModelNotAvailable(f"SMART_TURN_MODEL {p} does not exist")
        return p
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == MODEL_FILE:
            p = Path(str(f.locate()))
            if p.is_file():
                return p
    raise ModelNotAvailable(
        f"the smart-turn end-of-turn model ({MODEL_FILE}) was not found: it ships in the PyPI package "
        f"{PACKAGE}==1.14.0, installed without its dependencies (pip install --no-deps -r "
        "requirements-turn.txt; ./run does this). Or set SMART_TURN_MODEL to the .onnx file, or "
        "SMART_TURN=off to end turns on silence alone (END_OF_TURN_MS).")


@functools.lru_cache(maxsize=1)
def _extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=80, sampling_rate=RATE, chunk_length=WINDOW_S)


def features(audio: np.ndarray) -> np.ndarray:
    """(80, 800) float32 log-mel features of the last 8 s of ``audio`` (float32, 16 kHz)."""
    n = WINDOW_S * RATE
    x = np.asarray(audio, dtype=np.float32).reshape(-1)[-n:]
    if len(x) < n:
        x = np.concatenate([np.zeros(n - len(x), dtype=np.float32), x])  # padded at the start
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    mel = _extractor()(x, padding=0)  # 801 frames (centred STFT); the model takes 800
    return np.ascontiguousarray(mel[:, : n // 160], dtype=np.float32)


class TurnModel:
    """One ONNX session shared by every call of a worker (it keeps no per-call state)."""

    def __init__(self, path: Optional[Path] = None, *, pool: Any = None, threads: int = 1) -> None:
        import onnxruntime

        self.path = Path(path) if path is not None else smart_turn_path()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(str(self.path), sess_options=opts,
                                                         providers=["CPUExecutionProvider"])
        except Exception as exc:  # a corrupt or foreign file: say which one, at start-up
            raise ModelNotAvailable(f"cannot load the smart-turn model {self.path}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        if list(inp.shape[1:]) != [80, WINDOW_S * 100]:
            raise ModelNotAvailable(f"{self.path} is not a smart-turn v3 model (input {inp.shape})")
        self._input = inp.name
        self.pool = pool

    def probability_blocking(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for the caller's audio so far; blocks (~44 ms): pool threads only."""
        out = self._session.run(None, {self._input: features(audio)[None]})[0]
        return float(np.clip(np.asarray(out).reshape(-1)[0], 0.0, 1.0))

    def probability(self, audio: np.ndarray) -> float:
        """The same from a greenlet: the inference runs in the native pool."""
        if self.pool is None:
            raise RuntimeError("TurnModel.probability needs an inference pool (use probability_blocking in a thread)")
        return self.pool.run(self.probability_blocking, audio, kind="turn")
