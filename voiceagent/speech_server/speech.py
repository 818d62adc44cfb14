"""``POST /v1/audio/speech``: OpenAI's request (JSON ``model``, ``input``, ``voice``, ``response_format``
wav|pcm, ``speed``) and a streamed reply: the audio of each sentence is sent as soon as it is
synthesized (chunked transfer), so a client hears the first sentence while the rest is made.

Audio is 16-bit mono at 24 kHz, as OpenAI's: ``pcm`` raw, ``wav`` with a streaming header (its
sizes are 0xFFFFFFFF: the length is not known when the header goes out).  The first sentence is
synthesized before the status line, so a failing voice is a JSON error, not a broken stream."""
from __future__ import annotations

import struct
import time
from typing import Any, Dict, Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context

from .errors import SpeechApiError
from .metrics import AUDIO_SECONDS, SECONDS

__all__ = ["bp", "OUTPUT_RATE", "streaming_wav_header"]

bp = Blueprint("speech", __name__)

OUTPUT_RATE = 24000
FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm"}
UNSUPPORTED = ("mp3", "opus", "aac", "flac")


def streaming_wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose RIFF and data sizes say 'unknown' (0xFFFFFFFF)."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate,
            rate * 2, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFFFF))


def _body(engines: Any, max_chars: int) -> Dict[str, Any]:
    if request.mimetype != "application/json":
        raise SpeechApiError(415, f"Content-Type must be application/json, not '{request.mimetype or 'none'}'.",
                             None, "unsupported_media_type")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SpeechApiError(400, "The body must be a JSON object.", None, "invalid_json")
    for name in ("model", "input", "voice"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise SpeechApiError(400, f"Missing required parameter: '{name}' (a non-empty string).", name,
                                 "missing_required_parameter")
    from .engines import TTS_MODELS

    if body["model"] not in TTS_MODELS:
        raise SpeechApiError(404, f"The model '{body['model']}' does not exist here; available: "
                             f"{', '.join(TTS_MODELS)}.", "model", "model_not_found")
    if len(body["input"]) > max_chars:
        raise SpeechApiError(400, f"'input' is {len(body['input'])} characters; at most {max_chars}.", "input",
                             "string_above_max_length")
    if body["voice"] not in engines.voices:
        raise SpeechApiError(400, f"Unknown voice '{body['voice']}'; available: {', '.join(engines.voices)}.",
                             "voice", "unsupported_value")
    fmt = body.get("response_format", "wav")
    if fmt not in FORMATS:
        hint = " (not encoded here)" if fmt in UNSUPPORTED else ""
        raise SpeechApiError(400, f"Unsupported response_format '{fmt}'{hint}: use wav or pcm.", "response_format",
                             "unsupported_value")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
        raise SpeechApiError(400, f"speed must be a number from 0.25 to 4.0, not {speed!r}.", "speed", "invalid_value")
    return {"input": body["input"], "voice": body["voice"], "format": fmt, "speed": float(speed)}


@bp.post("/v1/audio/speech")
def speech() -> Response:
    engines = current_app.extensions["speech.engines"]
    opts = _body(engines, current_app.extensions["speech.settings"].speech_server_max_input_chars)
    engine = engines.voices[opts["voice"]]
    t0 = time.perf_counter()
    if hasattr(engine, "stream"):
        pieces: Iterator[bytes] = engine.stream(opts["input"], OUTPUT_RATE, speed=opts["speed"])
    else:  # an engine without sentence streaming (XTTS): one piece
        pieces = iter([engine.synthesize(opts["input"], OUTPUT_RATE)[0]])
    first = next(pieces, b"")
    SECONDS.labels("speech_first_audio").observe(time.perf_counter() - t0)

    def body() -> Iterator[bytes]:
        total = len(first)
        if opts["format"] == "wav":
            yield streaming_wav_header(OUTPUT_RATE)
        yield first
        for piece in pieces:
            total += len(piece)
            yield piece
        AUDIO_SECONDS.labels("speech").inc(total / 2 / OUTPUT_RATE)

    resp = Response(stream_with_context(body()), mimetype=FORMATS[opts["format"]])
    resp.headers["X-Sample-Rate"] = str(OUTPUT_RATE)
    return resp
