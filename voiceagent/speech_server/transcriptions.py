"""``POST /v1/audio/transcriptions``: OpenAI's request (multipart ``file``, ``model``, ``language``,
``prompt``, ``response_format`` json|text|verbose_json, ``temperature``) and reply shapes.

The upload is decoded here (16-bit WAV directly, anything else PyAV reads: mp3, ogg, flac, webm...)
to 16 kHz mono; Whisper runs behind the batcher.  The transcript is Whisper's own (as OpenAI's is):
the voice worker's client applies our hallucination filter with the segments' scores."""
from __future__ import annotations

import io
import time
import zlib
from typing import Any, Dict, List, Optional

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request

from ..speech.audio import pcm16_to_float, resample, wav_decode
from ..speech.stt import WhisperSegment
from .errors import SpeechApiError
from .metrics import AUDIO_SECONDS

__all__ = ["bp", "decode_upload"]

bp = Blueprint("transcriptions", __name__)

FORMATS = ("json", "text", "verbose_json")
#: verbose_json names the language in words, as OpenAI does
LANGUAGE_NAMES = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
                  "nl": "dutch", "pt": "portuguese", "pl": "polish", "sv": "swedish", "da": "danish"}


def decode_upload(data: bytes) -> np.ndarray:
    """The upload as float32 mono 16 kHz; SpeechApiError (400, param 'file') if it is not audio."""
    if not data:
        raise SpeechApiError(400, "The audio file is empty.", "file", "empty_file")
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            pcm, rate = wav_decode(data)
            x = pcm16_to_float(pcm)
            audio = x if rate == 16000 else resample(x, rate, 16000)
        else:
            from faster_whisper.audio import decode_audio

            audio = decode_audio(io.BytesIO(data), sampling_rate=16000)
    except SpeechApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - wave, soxr and PyAV each have their own errors
        raise SpeechApiError(400, f"The audio file could not be decoded ({type(exc).__name__}): send WAV (16-bit "
                             "PCM) or a format ffmpeg reads (mp3, ogg, flac, webm, m4a).", "file",
                             "invalid_file_format") from None
    if len(audio) == 0:
        raise SpeechApiError(400, "The audio file holds no samples.", "file", "empty_file")
    return np.asarray(audio, dtype=np.float32)


def _field(name: str) -> Optional[str]:
    value = request.form.get(name)
    return value.strip() if value is not None and value.strip() else None


def _options(engines: Any) -> Dict[str, Any]:
    model = _field("model")
    if model is None:
        raise SpeechApiError(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if model not in engines.stt_models:
        raise SpeechApiError(404, f"The model '{model}' does not exist here; available: "
                             f"{', '.join(engines.stt_models)}.", "model", "model_not_found")
    fmt = _field("response_format") or "json"
    if fmt not in FORMATS:
        raise SpeechApiError(400, f"Unsupported response_format '{fmt}': use one of {', '.join(FORMATS)}.",
                             "response_format", "unsupported_value")
    language = _field("language")
    if language is not None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES or (engines.english_only and language != "en"):
            raise SpeechApiError(400, f"Unsupported language '{language}': an ISO-639-1 code Whisper knows"
                                 + (" (this model is English-only: 'en')" if engines.english_only else "") + ".",
                                 "language", "unsupported_value")
    raw_t = _field("temperature") or "0"
    try:
        temperature = float(raw_t)
    except ValueError:
        temperature = -1.0
    if not 0.0 <= temperature <= 1.0:
        raise SpeechApiError(400, f"temperature must be a number from 0 to 1, not '{raw_t}'.", "temperature",
                             "invalid_value")
    return {"model": model, "format": fmt, "language": language, "temperature": temperature,
            "prompt": _field("prompt")}


def _verbose(segments: List[WhisperSegment], language: str, duration: float, temperature: float) -> Dict[str, Any]:
    return {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(language, language),
        "duration": round(duration, 3),
        "text": " ".join(s.text.strip() for s in segments).strip(),
        "segments": [{"id": i, "seek": 0, "start": round(s.start, 3), "end": round(min(s.end, duration), 3),
                      "text": s.text, "tokens": s.tokens, "temperature": temperature,
                      "avg_logprob": s.avg_logprob, "compression_ratio": _compression_ratio(s.text),
                      "no_speech_prob": s.no_speech_prob} for i, s in enumerate(segments)],
    }


def _compression_ratio(text: str) -> float:
    """Whisper's repetition signal: how well the text compresses (zlib), as in OpenAI's verbose_json."""
    raw = text.encode()
    return round(len(raw) / len(zlib.compress(raw)), 3) if raw else 0.0


@bp.post("/v1/audio/transcriptions")
def transcriptions() -> Response:
    engines = current_app.extensions["speech.engines"]
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):  # the latter: no file
        raise SpeechApiError(415, f"Content-Type must be multipart/form-data, not '{request.mimetype or 'none'}'.",
                             None, "unsupported_media_type")
    opts = _options(engines)
    upload = request.files.get("file")
    if upload is None:
        raise SpeechApiError(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
    audio = decode_upload(upload.read())
    duration = len(audio) / 16000.0
    t0 = time.perf_counter()
    language = opts["language"] or engines.stt.language or "en"
    segments = engines.batcher.transcribe(audio, language=language, temperature=opts["temperature"],
                                          prompt=opts["prompt"])
    AUDIO_SECONDS.labels("transcriptions").inc(duration)
    text = " ".join(s.text.strip() for s in segments).strip()
    if opts["format"] == "text":
        return Response(text + "\n", mimetype="text/plain")
    if opts["format"] == "verbose_json":
        body = _verbose(segments, language, duration, opts["temperature"])
    else:
        body = {"text": text}
    resp = jsonify(body)
    resp.headers["X-Processing-Ms"] = f"{(time.perf_counter() - t0) * 1000:.0f}"
    return resp
