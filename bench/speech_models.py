"""Micro-benchmark of the speech models on this machine (run: .venv/bin/python bench/speech_models.py).

Measures what voiceagent/speech/vad.py's docstring quotes: VAD accuracy on Piper speech vs noise
and time per chunk; plus Piper and Whisper speed.  Everything offline, real models.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from voiceagent.speech.audio import pcm16_to_float, resample  # noqa: E402
from voiceagent.speech.tts import PiperTTS  # noqa: E402
from voiceagent.speech.vad import RATE, SileroVAD, WebRtcVAD  # noqa: E402

SENTENCES = [
    "What time is it?",
    "I would like to book a table for two people tomorrow evening.",
    "Can you tell me whether the pharmacy on Main Street is open on Sunday?",
    "My account number is four five six seven, and I have a question about my bill.",
    "No, thank you, that is all for today.",
]


def speech_track(tts: PiperTTS, rng) -> tuple:
    """Sentences separated by 0.5-1.5 s gaps.  Labels per sample: 1 = speech (clean energy), 0 = gap
    between sentences at least 250 ms from speech (a VAD's hangover is not an error), 2 = don't care."""
    parts, labels = [], []
    margin = int(0.25 * RATE)
    for s in SENTENCES:
        pcm, _ = tts.synthesize(s, RATE)
        x = pcm16_to_float(pcm) * 0.3
        gap = np.zeros(int(rng.uniform(0.5, 1.5) * RATE), np.float32)
        parts += [gap, x]
        # 20 ms energy envelope > -40 dBFS counts as speech
        env = np.sqrt(np.convolve(x**2, np.ones(320) / 320, mode="same"))
        g = np.zeros(len(gap), np.int8)
        g[:margin] = 2
        g[-margin:] = 2
        labels += [g, np.where(env > 10 ** (-40 / 20), 1, 2).astype(np.int8)]
    return np.concatenate(parts), np.concatenate(labels)


def noise(kind: str, n: int, rng, level_dbfs: float) -> np.ndarray:
    w = rng.standard_normal(n).astype(np.float32)
    if kind == "pink":  # 1/f via spectral shaping
        f = np.fft.rfft(w)
        f /= np.sqrt(np.maximum(np.arange(len(f)), 1))
        w = np.fft.irfft(f, n).astype(np.float32)
    elif kind == "hum":  # mains hum + harmonics, typical line noise
        t = np.arange(n) / RATE
        w = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5)).astype(np.float32) + 0.05 * w
    w /= np.sqrt(np.mean(w**2)) + 1e-9
    return w * 10 ** (level_dbfs / 20)


def frame_decisions(vad, x: np.ndarray, thr: float = 0.5):
    fs = vad.frame_samples
    n = len(x) // fs
    vad.reset()
    t0 = time.perf_counter()
    d = np.array([vad.prob(x[i * fs:(i + 1) * fs]) >= thr for i in range(n)])
    return d, (time.perf_counter() - t0) / n


def main() -> None:
    rng = np.random.default_rng(7)
    tts = PiperTTS()
    clean, truth = speech_track(tts, rng)
    phone = resample(resample(clean, RATE, 8000), 8000, RATE)  # narrowband, as from an 8 kHz trunk
    cases = {
        "clean": clean,
        "phone 8k": phone,
        "white SNR 10 dB": clean + noise("white", len(clean), rng, -20.5),
        "pink SNR 10 dB": clean + noise("pink", len(clean), rng, -20.5),
    }
    noises = {f"{k} {lvl} dBFS": noise(k, 10 * RATE, rng, lvl) for k in ("white", "pink", "hum") for lvl in (-40, -20)}
    for name, vad in (("silero", SileroVAD()), ("webrtc-3", WebRtcVAD(3)), ("webrtc-1", WebRtcVAD(1))):
        print(f"== {name}")
        for cname, x in cases.items():
            d, per = frame_decisions(vad, x)
            fs = vad.frame_samples
            lab = truth[: len(d) * fs].reshape(len(d), fs)
            recall = d[(lab == 1).mean(axis=1) > 0.5].mean()
            fp = d[(lab == 0).all(axis=1)].mean()
            print(f"  {cname:18s} speech recall {recall:5.1%}  false speech in pauses {fp:5.1%}  {per * 1e3:.3f} ms/frame")
        for nname, x in noises.items():
            d, _ = frame_decisions(vad, x)
            print(f"  noise {nname:18s} frames called speech {d.mean():5.1%}")

    # TTS / STT speed
    from voiceagent.speech.stt import Transcriber

    t0 = time.perf_counter()
    pcm, rate = tts.synthesize(SENTENCES[2])
    print(f"piper: {len(pcm) / 2 / rate:.2f} s audio in {time.perf_counter() - t0:.3f} s")
    for model in ("base", "tiny.en"):
        st = Transcriber(model)
        x = resample(pcm16_to_float(pcm), rate, RATE)
        st.transcribe(x)
        tr = st.transcribe(x)
        print(f"whisper {model}: load {st.load_s:.2f} s; {tr.duration:.2f} s audio in {tr.elapsed:.2f} s: {tr.text!r}")


if __name__ == "__main__":
    main()
