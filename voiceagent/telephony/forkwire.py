"""mod_audio_fork's message formats, for both ends of the WebSocket.

Every quirk of drachtio's mod_audio_fork (commit 88e1465, as captured from FreeSWITCH
1.10.12 in shared/traces) lives here so the server and the emulator agree:

* the client offers exactly the subprotocol ``audio.drachtio.org``;
* texts queued before the socket is writable are appended into one frame, so a text frame
  may hold several JSON values back to back (``{"a":1}{"b":2}``);
* audio is raw L16 little-endian, any size that is a whole number of samples;
* server → FreeSWITCH messages are single JSON objects with a ``type``; FreeSWITCH answers
  them with CUSTOM events whose bodies are cJSON-compact re-serialisations.
"""
from __future__ import annotations

import base64
import io
import json
import wave
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from ..speech.audio import wav_encode as _wav_encode

SUBPROTOCOL = "audio.drachtio.org"
# mod_audio_fork copies the metadata into an 8 KiB buffer.
MAX_METADATA_BYTES = 8192
# Nesting deeper than this is refused before json sees it: 8 KiB of '[' would overflow its recursion.
MAX_JSON_DEPTH = 32

from .call_ids import UUID_RE  # noqa: E402,F401 - the one uuid check (fork URL routing uses it)

# CUSTOM event subclasses (DR:mod_audio_fork.h).
EVENT_CONNECT = "mod_audio_fork::connect"
EVENT_CONNECT_FAILED = "mod_audio_fork::connect_failed"
EVENT_DISCONNECT = "mod_audio_fork::disconnect"
EVENT_BUFFER_OVERRUN = "mod_audio_fork::buffer_overrun"
EVENT_PLAY_AUDIO = "mod_audio_fork::play_audio"
EVENT_KILL_AUDIO = "mod_audio_fork::kill_audio"
EVENT_TRANSCRIPTION = "mod_audio_fork::transcription"
EVENT_TRANSFER = "mod_audio_fork::transfer"
EVENT_ERROR = "mod_audio_fork::error"
EVENT_JSON = "mod_audio_fork::json"

# libwebsockets' connection-error texts as they appear in connect_failed bodies.
REASON_UNABLE_TO_CONNECT = "Unable to connect"
REASON_NOT_101 = "HS: ws upgrade response not 101"
REASON_UNAUTHORIZED = "HS: ws upgrade unauthorized"  # lws checks 401 before "not 101"
REASON_ACCEPT_HASH = "HS: Accept hash wrong"
REASON_PROTOCOL = "HS: Cannot match protocol"


# --------------------------------------------------------------------------- JSON
def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether no array/object in ``text`` nests deeper than ``limit`` (brackets in strings do not count)."""
    if text.count("[") + text.count("{") <= limit:
        return True
    depth = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _unique_keys(pairs: List[Tuple[str, Any]]) -> dict:
    obj: dict = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k[:40]!r}")
        obj[k] = v
    return obj


def parse_json_values(text: str, *, unique_keys: bool = False) -> List[Any]:
    """All JSON values in ``text``, which may be several concatenated ones.

    Raises ValueError (json.JSONDecodeError) if any part is not valid JSON, nests deeper than
    ``MAX_JSON_DEPTH``, repeats a key (with ``unique_keys``) or the text holds no value at all.
    """
    if not _json_depth_ok(text):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys if unique_keys else None)
    values: List[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        try:
            value, i = decoder.raw_decode(text, i)
        except RecursionError:  # belt and braces: the depth check should make this unreachable
            raise ValueError("JSON nested too deeply") from None
        values.append(value)
    if not values:
        raise ValueError("no JSON value")
    return values


def _cjson_number(value: Any) -> Any:
    # cJSON prints an integral double without a fraction ("16000", not "16000.0").
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, dict):
        return {k: _cjson_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cjson_number(v) for v in value]
    return value


def compact_json(value: Any) -> str:
    """Serialise like cJSON_PrintUnformatted: no spaces, UTF-8 kept, key order kept."""
    return json.dumps(_cjson_number(value), separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- metadata
@dataclass
class ParsedMetadata:
    metadata: dict           # the first JSON value if it is an object, else {}
    extra: List[Any]         # values coalesced after it (send_text payloads queued before connect)
    error: Optional[str]     # why metadata is {} (None when fine)


def parse_metadata(data: str | bytes, max_bytes: int = MAX_METADATA_BYTES) -> ParsedMetadata:
    """Parse the first text frame.

    mod_audio_fork appends every text queued before the socket became writable into one
    frame, so the metadata may be followed by send_text payloads: the first value is the
    metadata, the rest are returned in ``extra``.  A repeated key makes the metadata invalid: it is
    what a caller id pasted unescaped into the JSON looks like, and it must not pick the sample rate.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        return ParsedMetadata({}, [], f"metadata frame too large ({len(raw)} > {max_bytes} bytes)")
    try:
        text = raw.decode("utf-8")
        parse_json_values(text, unique_keys=True)  # a repeated key is an error (8 KiB at most: parse twice)
        values = parse_json_values(text)
    except ValueError as exc:
        return ParsedMetadata({}, [], f"metadata is not JSON: {exc}; starts {raw[:80]!r}")
    first, rest = values[0], values[1:]
    if not isinstance(first, dict):
        return ParsedMetadata({}, rest, f"metadata is a JSON {type(first).__name__}, not an object")
    return ParsedMetadata(first, rest, None)


# --------------------------------------------------------------------------- server → FS
def play_audio_message(audio: bytes, *, sample_rate: int, content_type: str = "wav",
                       text: Optional[str] = None) -> str:
    """A ``playAudio`` frame; ``audio`` is the complete file content (WAV or raw L16)."""
    if content_type not in ("wav", "wave", "raw"):
        raise ValueError(f"audioContentType must be wav, wave or raw, not {content_type!r}")
    if content_type == "raw" and sample_rate not in (8000, 16000):
        # FreeSWITCH reads .r24/.r32 as 24/32-bit samples and has no .r48/.r64 reader.
        raise ValueError(f"raw playAudio only plays correctly at 8000 or 16000 Hz, not {sample_rate}")
    data: dict = {
        "audioContentType": content_type,
        "sampleRate": int(sample_rate),
        "audioContent": base64.b64encode(audio).decode("ascii"),
    }
    if text is not None:
        data["textContent"] = text
    return compact_json({"type": "playAudio", "data": data})


def kill_audio_message() -> str:
    return '{"type":"killAudio"}'


def disconnect_message(data: Optional[dict] = None) -> str:
    """``disconnect``: FreeSWITCH only raises an event, it does not hang up or close."""
    msg: dict = {"type": "disconnect"}
    if data is not None:
        msg["data"] = data
    return compact_json(msg)


# --------------------------------------------------------------------------- FS side of B4
@dataclass
class ServerMessage:
    """What FreeSWITCH makes of one server text frame."""

    event: Optional[str]       # CUSTOM subclass to fire, None = ignored
    body: Optional[str]        # event body (compact JSON) or None
    play: Optional[dict] = None  # for playAudio: the data object (with audioContent)
    problem: Optional[str] = None  # why it was ignored / a log-worthy oddity


_DATA_EVENTS = {
    "transcription": EVENT_TRANSCRIPTION,
    "transfer": EVENT_TRANSFER,
    "error": EVENT_ERROR,
    "disconnect": EVENT_DISCONNECT,
}


def classify_server_text(text: str) -> ServerMessage:
    """Map a server → FreeSWITCH text frame to mod_audio_fork's reaction (DR:lws_glue.cpp)."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return ServerMessage(None, None, problem=f"unparsable server text ({exc}): {text[:80]!r}")
    if not isinstance(obj, dict):
        return ServerMessage(None, None, problem=f"server text is not a JSON object: {text[:80]!r}")
    kind = obj.get("type")
    data = obj.get("data")
    if kind is None or kind == "json":
        return ServerMessage(EVENT_JSON, compact_json(obj))
    if kind == "playAudio":
        if not isinstance(data, dict):
            return ServerMessage(None, None, problem="playAudio without a data object")
        ctype = data.get("audioContentType")
        if not isinstance(ctype, str):
            # Real mod_audio_fork dereferences NULL here; we refuse instead of crashing.
            return ServerMessage(None, None, problem="playAudio without audioContentType (would crash FreeSWITCH)")
        if ctype not in ("raw", "wav", "wave"):
            return ServerMessage(None, None, problem=f"playAudio with unsupported audioContentType {ctype!r}")
        if not isinstance(data.get("audioContent"), str):
            return ServerMessage(None, None, problem="playAudio without audioContent")
        return ServerMessage(EVENT_PLAY_AUDIO, None, play=data)
    if kind == "killAudio":
        return ServerMessage(EVENT_KILL_AUDIO, None)
    if kind in _DATA_EVENTS:
        return ServerMessage(_DATA_EVENTS[kind], compact_json(data) if data is not None else None)
    return ServerMessage(None, None, problem=f"unknown message type {kind!r}")


def play_audio_file_ext(content_type: str, sample_rate: Any) -> str:
    """Temp-file extension mod_audio_fork picks for a playAudio."""
    if content_type in ("wav", "wave"):
        return "wav"
    rates = {8000: "r8", 16000: "r16", 24000: "r24", 32000: "r32", 48000: "r48", 64000: "r64"}
    return rates.get(sample_rate if isinstance(sample_rate, int) else -1, "r16")


def play_audio_event_body(data: dict, file: str) -> str:
    """Body of ``mod_audio_fork::play_audio``: data minus audioContent, plus file, in order."""
    out = {k: v for k, v in data.items() if k != "audioContent"}
    out["file"] = file
    return compact_json(out)


# --------------------------------------------------------------------------- audio
def frame_bytes(sample_rate: int, frame_ms: int, channels: int = 1) -> int:
    return sample_rate * frame_ms // 1000 * 2 * channels


def wav_encode(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV (44-byte header) around L16LE samples."""
    return _wav_encode(pcm, int(sample_rate), channels)


def wav_decode(data: bytes) -> Tuple[bytes, int, int]:
    """(pcm, sample_rate, channels) of a 16-bit PCM WAV; ValueError otherwise."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"WAV has {8 * w.getsampwidth()}-bit samples, need 16-bit")
            return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV: {exc}") from exc
