"""Silero VAD for every call of a worker at once: one ONNX run for all calls' pending 32 ms chunks,
in a native thread instead of on the event loop (VAD_BATCH=on).

Why: inline (speech/vad.py), each call's chunk is one ``session.run`` in the call's greenlet, ~0.12 ms
with the GIL held on the loop: 200 silent callers are 6,250 runs a second, most of a core of the one
loop that also carries every call's audio, ESL events and fork handshakes (bench/load.py measures it).

The packaged graph (faster-whisper's ``silero_vad_v6.onnx``) does not batch calls as it is: its LSTM
runs over the rows of ``input`` as one *sequence* (``h``/``c`` are ``[1, 1, 128]``), i.e. it streams
one call.  :func:`batched_graph` derives the same graph with the calls as the LSTM's *batch*: the
encoder's rows (call-major, ``calls x steps``) are reshaped to ``[steps, calls, 128]`` before the LSTM,
``h``/``c`` are ``[1, calls, 128]`` and ``seq_lens`` says how many chunks each call brought (one,
mostly; several when its audio came in a larger piece).  Row i is call i's audio with call i's state:
the same weights and operations, and the same probabilities as the per-call model
(tests/speech/test_vad_batch.py).

When a run starts: once the chunks expected in ``window_ms`` have arrived (the recent arrival rate x
the window: at 200 calls ~60 chunks, ~100 runs a second instead of 6,250 inline ones), or when the
first waiting chunk has waited ``window_ms``.  With a few calls the expected number is one, so a
chunk runs at once.  One run at a time, in one thread: a call's chunks go through consecutive runs,
so its state always follows its own audio.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Dict, List, Optional, Tuple

import gevent
import gevent.event
import numpy as np
from gevent.threadpool import ThreadPool

from .vad import SileroVAD, _silero_session, chunk_rows, silero_session

__all__ = ["VadBatcher", "BatchedSileroVAD", "batched_graph", "shared_batcher"]

log = logging.getLogger(__name__)

_STATE = 128  # Silero's LSTM width
_ROW = SileroVAD.frame_samples + SileroVAD._context  # one input row: a chunk and its context


def batched_graph(path: str) -> bytes:
    """The packaged Silero graph with its LSTM batched over calls (see the module doc)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(path)
    graph = model.graph
    nodes = list(graph.node)
    lstm = next(n for n in nodes if n.op_type == "LSTM")
    feed = next(n for n in nodes if lstm.input[0] in n.output)
    if feed.op_type != "Transpose" or len(lstm.input) > 4 and lstm.input[4]:
        raise RuntimeError(f"{path}: not the Silero v6 graph this batcher knows (LSTM fed by {feed.op_type})")

    def const(name, values):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64,
                                                                                 [len(values)], values))

    # encoder rows [calls*steps, 1, 128] -> [calls, steps, 128] -> [steps, calls, 128]; calls = h's dim 1
    added = [helper.make_node("Shape", ["h"], ["vb_h_shape"]), const("vb_one", [1]), const("vb_two", [2]),
             helper.make_node("Slice", ["vb_h_shape", "vb_one", "vb_two"], ["vb_calls"]),
             const("vb_rest", [-1, _STATE]),
             helper.make_node("Concat", ["vb_calls", "vb_rest"], ["vb_shape"], axis=0),
             helper.make_node("Reshape", [feed.output[0], "vb_shape"], ["vb_by_call"]),
             helper.make_node("Transpose", ["vb_by_call"], ["vb_by_step"], perm=[1, 0, 2])]
    lstm.input[0] = "vb_by_step"
    while len(lstm.input) < 5:
        lstm.input.append("")
    lstm.input[4] = "seq_lens"  # each call's own number of steps (its state is taken at its last one)
    at = nodes.index(lstm)
    del graph.node[:]
    graph.node.extend(nodes[:at] + added + nodes[at:])
    graph.input.append(helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["calls"]))
    for value in list(graph.input) + list(graph.output):
        if value.name in ("h", "c", "hn", "cn"):
            dim = value.type.tensor_type.shape.dim[1]
            dim.ClearField("dim_value")
            dim.dim_param = "calls"
    onnx.checker.check_model(model)
    return model.SerializeToString()


@functools.lru_cache(maxsize=1)
def _batched_session():
    from .models import silero_vad_path

    return silero_session(batched_graph(str(silero_vad_path())))


Result = Tuple[np.ndarray, np.ndarray, np.ndarray]  # (probs of the call's chunks, hn [128], cn [128])


class _Run:
    """The calls' chunks that go into one run, and (once ``done``) what came out for each."""

    __slots__ = ("x", "h", "c", "out", "errors", "first_at", "done")

    def __init__(self) -> None:
        self.x: List[np.ndarray] = []  # per call: [steps, 576]
        self.h: List[np.ndarray] = []
        self.c: List[np.ndarray] = []
        self.out: List[Optional[Result]] = []
        self.errors: Dict[int, BaseException] = {}  # call index -> why the model could not take it
        self.first_at = 0.0
        self.done = gevent.event.Event()


class VadBatcher:
    """The worker's one Silero runner: calls submit chunks with their state and wait for the run."""

    def __init__(self, window_ms: float = 10.0) -> None:
        self.window = max(0.0, window_ms) / 1000.0
        self._session = _batched_session()
        self._open = _Run()
        self._wake = gevent.event.Event()  # the open run has its first chunk
        self._full = gevent.event.Event()  # the open run has the chunks expected in a window
        self._expected = 1
        self._rate = 0.0  # calls' submissions per second (EWMA)
        self._last_take = time.monotonic()
        self._thread = ThreadPool(1)
        self._runner: Optional[gevent.Greenlet] = None
        self.runs = 0
        self.rows = 0
        self.max_rows = 0
        self.failures = 0

    def vad(self) -> "BatchedSileroVAD":
        """A per-call VAD with SileroVAD's API whose chunks go through this batcher."""
        return BatchedSileroVAD(self)

    def stats(self) -> dict:
        return {"runs": self.runs, "rows": self.rows, "max_rows": self.max_rows, "failures": self.failures,
                "rows_per_run": round(self.rows / self.runs, 1) if self.runs else 0.0}

    def close(self) -> None:
        if self._runner is not None:
            self._runner.kill(block=False)
            self._runner = None
        self._thread.kill()

    def submit(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> Result:
        """Probabilities and the next (h, c) for one call's consecutive chunks ``x`` ([steps, 576], with
        context); only the calling greenlet waits."""
        if self._runner is None or self._runner.dead:
            self._runner = gevent.spawn(self._serve)
        run = self._open
        i = len(run.x)
        run.x.append(x)
        run.h.append(h)
        run.c.append(c)
        if i == 0:
            run.first_at = time.monotonic()
            self._wake.set()
        if i + 1 >= self._expected:
            self._full.set()
        run.done.wait()
        if i in run.errors:
            raise RuntimeError(f"Silero VAD failed: {run.errors[i]}") from run.errors[i]
        out = run.out[i]
        assert out is not None  # a call whose chunk failed raised above
        return out

    def _serve(self) -> None:
        while True:
            if not self._wake.is_set():
                self._wake.wait()
            self._wake.clear()
            run = self._open
            if not run.x:
                continue
            left = run.first_at + self.window - time.monotonic()
            if left > 0 and not self._full.is_set():
                self._full.wait(left)  # let the other calls' chunks join this run
            self._full.clear()
            self._open = _Run()
            self._learn_rate(len(run.x))
            try:
                self._complete(run)
            finally:  # never leave a call waiting (an error is raised in its greenlet)
                run.done.set()

    def _learn_rate(self, calls: int) -> None:
        now = time.monotonic()
        elapsed, self._last_take = max(1e-3, now - self._last_take), now
        self._rate = 0.8 * self._rate + 0.2 * (calls / elapsed)
        self._expected = max(1, int(self._rate * self.window))

    def _complete(self, run: _Run) -> None:
        try:
            run.out = self._thread.spawn(self._infer, run).get()
        except Exception as exc:  # the same numbers, one call at a time: only a bad chunk's call fails
            self.failures += 1
            log.warning("batched VAD run of %d calls failed (%s): running them one by one", len(run.x), exc)
            run.out = _one_by_one(run)
        rows = sum(len(x) for x in run.x)
        self.runs += 1
        self.rows += rows
        self.max_rows = max(self.max_rows, rows)

    def _infer(self, run: _Run) -> List[Optional[Result]]:
        """In the native thread: calls with one chunk in one run; those with several (their audio came
        in a larger piece) in a second, padded to the longest, so they never pad the rest."""
        out: List[Optional[Result]] = [None] * len(run.x)
        single = [i for i, x in enumerate(run.x) if len(x) == 1]
        several = [i for i, x in enumerate(run.x) if len(x) > 1]
        for group in (single, several):
            if not group:
                continue
            steps = max(len(run.x[i]) for i in group)
            x = np.zeros((len(group), steps, _ROW), dtype=np.float32)
            for k, i in enumerate(group):
                x[k, :len(run.x[i])] = run.x[i]
            lens = np.array([len(run.x[i]) for i in group], dtype=np.int32)
            h = np.stack([run.h[i] for i in group])[None]
            c = np.stack([run.c[i] for i in group])[None]
            probs, hn, cn = self._session.run(None, {"input": x.reshape(-1, _ROW), "h": h, "c": c,
                                                     "seq_lens": lens})
            probs = probs.reshape(len(group), steps)
            for k, i in enumerate(group):
                out[i] = (probs[k, :lens[k]].copy(), hn[0, k].copy(), cn[0, k].copy())
        return out


def _one_by_one(run: _Run) -> List[Optional[Result]]:
    """The per-call model on each call of a failed run; a call it cannot take either goes to
    ``run.errors`` (that call raises), the others get their numbers."""
    session = _silero_session()
    out: List[Optional[Result]] = []
    for i, (x, h, c) in enumerate(zip(run.x, run.h, run.c, strict=True)):
        try:
            p, hn, cn = session.run(None, {"input": x, "h": h.reshape(1, 1, _STATE), "c": c.reshape(1, 1, _STATE)})
            out.append((p.reshape(-1), hn.reshape(_STATE), cn.reshape(_STATE)))
        except Exception as exc:
            run.errors[i] = exc
            out.append(None)
    return out


@functools.lru_cache(maxsize=None)
def shared_batcher(window_ms: float = 10.0) -> VadBatcher:
    """The process's batcher (one per window: in a worker, one): every call of every VoiceServices."""
    return VadBatcher(window_ms)


class BatchedSileroVAD:
    """SileroVAD's per-call API (``frame_samples``, ``reset()``, ``prob``/``probs``) on a shared batcher:
    the call keeps its own state and context; the batcher only runs the model."""

    frame_samples = SileroVAD.frame_samples
    _context = SileroVAD._context

    def __init__(self, batcher: VadBatcher) -> None:
        self._batcher = batcher
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE, dtype=np.float32)
        self._c = np.zeros(_STATE, dtype=np.float32)
        self._ctx = np.zeros(self._context, dtype=np.float32)

    def prob(self, frame: np.ndarray) -> float:
        return self.probs([frame])[0]

    def probs(self, frames: List[np.ndarray]) -> List[float]:
        if not frames:
            return []
        x = chunk_rows(self._ctx, frames, self._context)
        ctx = frames[-1][-self._context:].astype(np.float32, copy=True)
        p, self._h, self._c = self._batcher.submit(x, self._h, self._c)
        self._ctx = ctx
        return [float(v) for v in p]
