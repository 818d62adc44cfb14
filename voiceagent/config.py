"""Every setting voiceagent reads, in one typed place.

Each field is an environment variable of the same name in upper case (``ESL_NODES`` for
``esl_nodes``); the default and a one-line description sit next to it.  ``voiceagent config``
prints the effective values with secrets masked.  Validation happens at start-up, and a bad
value fails with a message that names the variable.
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

from ipaddress import ip_address
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated


# LLM_BASE_URL value that chooses the built-in rule-based responder on purpose (no "not set" warning).
RULE_BASED = "rule-based"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ConfigError(RuntimeError):
    """A setting is invalid; the message names the environment variable."""


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ip_address(h).is_loopback
    except ValueError:
        return False  # a host name, '' or '0.0.0.0'-like wildcard: assume reachable from outside


def fork_edge_problem(s: "Settings") -> Optional[Tuple[str, str]]:
    """(variable, message) when the fork settings would leave the edge open or half-configured."""
    user, password = s.fork_auth_user, s.fork_auth_password.get_secret_value()
    if ":" in user:
        return "FORK_AUTH_USER", "must not contain ':' (HTTP Basic splits user and password on it)"
    if user and not password:
        return "FORK_AUTH_PASSWORD", "is required when FORK_AUTH_USER is set (an empty password is no auth)"
    if password and not user:
        return "FORK_AUTH_USER", "is required when FORK_AUTH_PASSWORD is set (without it auth would be off)"
    if not user and not is_loopback_host(s.fork_host) and not s.fork_allow_insecure:
        return "FORK_HOST", (f"{s.fork_host!r} is not a loopback address and fork auth is off: set "
                             "FORK_AUTH_USER and FORK_AUTH_PASSWORD, or FORK_ALLOW_INSECURE=true to accept "
                             "unauthenticated audio from the network")
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", env_file=None)

    # --- FreeSWITCH Event Socket -------------------------------------------------
    esl_nodes: Annotated[Dict[str, str], NoDecode] = Field(
        default={"fs1": "127.0.0.1:8021"},
        description="FreeSWITCH nodes this worker serves: 'name=host:port,name2=host:port'. "
        "The name must match the node name in the fork metadata (${switchname}).",
    )
    esl_password: SecretStr = Field(default=SecretStr("change-me"), description="Event Socket password (never ClueCon in production).")
    esl_command_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for any ESL command reply.")
    esl_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for the TCP connect + auth.")
    esl_reconnect_max_delay: float = Field(default=10.0, gt=0, description="Upper bound of the reconnect backoff, seconds.")
    bgapi_timeout: float = Field(default=90.0, gt=0, description="Seconds to wait for a BACKGROUND_JOB result (originate rings).")
    esl_healthy_after_s: float = Field(default=30.0, ge=0, description="A connection must stay up this long before the reconnect backoff starts again from zero (a node that accepts and drops at once is retried ever more slowly, not thousands of times).")
    esl_event_queue_max: int = Field(default=2000, ge=10, description="Events queued per node before the client stops reading from FreeSWITCH until its handlers catch up (back-pressure; no event is dropped).")

    # --- mod_audio_fork WebSocket server ----------------------------------------
    fork_host: str = Field(default="127.0.0.1", description="Address the fork WebSocket server binds (a non-loopback address needs FORK_AUTH_USER/FORK_AUTH_PASSWORD or FORK_ALLOW_INSECURE=true).")
    fork_port: int = Field(default=8765, ge=0, le=65535, description="Port of the fork WebSocket server (0 = pick one).")
    fork_public_url: str = Field(default="", description="URL FreeSWITCH uses to reach this worker, e.g. ws://10.0.0.5:8765 (default: ws://<fork_host>:<port>).")
    fork_auth_user: str = Field(default="", description="HTTP Basic user required on the fork upgrade (empty = no auth).")
    fork_auth_password: SecretStr = Field(default=SecretStr(""), description="HTTP Basic password for the fork upgrade (required when FORK_AUTH_USER is set).")
    fork_allow_insecure: bool = Field(default=False, description="Allow binding FORK_HOST to a non-loopback address without Basic auth (anyone who reaches the port can inject audio).")
    fork_sample_rate: Literal[8000, 16000] = Field(default=16000, description="Rate we ask mod_audio_fork to send (8000 or 16000).")
    fork_max_frame_bytes: int = Field(default=64 * 1024, gt=0, description="Largest WebSocket frame accepted from a fork.")
    fork_max_metadata_bytes: int = Field(default=8192, gt=0, description="Largest metadata text frame (mod_audio_fork copies it into 8 KiB).")
    fork_grace_seconds: float = Field(default=3.0, gt=0, description="How long a fork may wait for its call's ESL events (and vice versa) before it is refused.")
    fork_max_connections: int = Field(default=1000, ge=1, description="Sockets the fork server holds at once; when full, the oldest connection not yet carrying a confirmed call is dropped for a new one (clamped below the file-descriptor limit).")
    fork_max_pending_per_address: int = Field(default=64, ge=1, description="Connections from one address not yet carrying a confirmed call; beyond it that address's oldest is dropped.")
    fork_handshake_timeout: float = Field(default=10.0, gt=0, description="Seconds a connection may take to complete the WebSocket upgrade.")
    fork_metadata_timeout: float = Field(default=5.0, gt=0, description="Seconds after the upgrade within which the first frame (the metadata) must arrive, else the fork is closed.")
    fork_arrival_timeout: float = Field(default=15.0, gt=0, description="START_FORK_ON_PARK: a claimed call whose fork has not arrived after this many seconds is hung up.")
    fork_refusal_log_seconds: float = Field(default=10.0, gt=0, description="Refused or dropped forks are logged at most once per this many seconds per kind, with a count of the suppressed ones.")
    start_fork_on_park: bool = Field(default=False, description="Start the fork from the agent on CHANNEL_PARK instead of from the dialplan.")

    @model_validator(mode="after")
    def _check_fork_edge(self) -> "Settings":
        """The fork edge carries a caller's audio: never open to the network by accident."""
        problem = fork_edge_problem(self)
        if problem is not None:
            var, msg = problem
            raise ValidationError.from_exception_data(
                "Settings", [InitErrorDetails(type=PydanticCustomError("fork_edge", msg), loc=(var.lower(),),
                                              input=getattr(self, var.lower()))])
        return self

    # --- Playback ----------------------------------------------------------------
    playback_mode: Literal["upload", "shared"] = Field(default="upload", description="'upload': send playAudio over the fork; 'shared': write WAVs into playback_dir that FreeSWITCH reads.")
    playback_dir: Path = Field(default=Path("/tmp/voiceagent-playback"), description="Directory for WAVs in shared mode (must be readable by FreeSWITCH at the same path).")
    media_dirs: Annotated[List[Path], NoDecode] = Field(default=[], description="Comma-separated absolute directories whose files a Redis 'play' command may play (besides PLAYBACK_DIR).")
    playback_margin_seconds: float = Field(default=5.0, gt=0, description="A playback FreeSWITCH has not reported finished this long after its audio should have ended is marked finished (events lost).")
    playback_max_age_minutes: float = Field(default=10.0, gt=0, description="WAVs of ours in PLAYBACK_DIR older than this are deleted (at start-up and every ORPHAN_SWEEP_SECONDS).")

    # --- Calls -------------------------------------------------------------------
    worker_id: str = Field(default_factory=_default_worker_id, description="Unique name of this voice worker (default host-pid).")
    max_calls: int = Field(default=20, ge=1, description="Concurrent calls per worker; more are refused with USER_BUSY before answer.")
    max_call_seconds: float = Field(default=1800.0, gt=0, description="Hard limit on a call's length.")
    audio_idle_seconds: float = Field(default=10.0, gt=0, description="No audio for this long = fork died: restart it once, then hang up.")
    drain_seconds: float = Field(default=300.0, ge=0, description="On SIGTERM, how long live calls may continue before they are hung up.")
    answer_inbound: bool = Field(default=True, description="The owning worker answers parked inbound calls (the dialplan parks without answering).")
    dialog: Literal["conversation", "greeting"] = Field(default="conversation", description="What answers calls: 'conversation' (VAD + Whisper + LLM + TTS) or 'greeting' (play GREETING_FILE and hang up: a plumbing check).")
    greeting_file: str = Field(default="", description="WAV the built-in greeting dialog plays (default: a packaged greeting).")

    # --- Outbound ----------------------------------------------------------------
    originate_gateway: str = Field(default="", description="Default SIP gateway for outbound calls (sofia/gateway/<name>/<number>).")
    originate_timeout: int = Field(default=30, ge=1, le=600, description="Ring timeout for outbound calls, seconds.")
    caller_id_number: str = Field(default="", description="Default caller id number for outbound calls.")
    caller_id_name: str = Field(default="voiceagent", description="Default caller id name for outbound calls.")
    take_requests: bool = Field(default=True, description="This worker takes outbound call requests from Redis (placed through the call client, API or CLI) while it has room.")

    # --- Call records and events -------------------------------------------------
    call_retention_days: float = Field(default=30.0, gt=0, le=3650, description="How long a call's record (transcript, outcome, timings) is kept after the call.")
    call_events_maxlen: int = Field(default=100_000, ge=1000, description="Length the call-event stream is trimmed to (approximately); a consumer group further behind loses the oldest.")

    # --- Redis -------------------------------------------------------------------
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for live call state, command inboxes and queues.")
    redis_prefix: str = Field(default="voiceagent", description="Key prefix, so several deployments or test runs can share one Redis.")
    redis_max_connections: int = Field(default=50, ge=2, le=10000, description="Size of the worker's Redis connection pool (a blocking pool: callers wait for a free connection instead of failing).")
    redis_pool_timeout: float = Field(default=5.0, gt=0, description="Seconds a Redis operation waits for a free pooled connection before it fails (and is queued for replay).")
    redis_socket_timeout: float = Field(default=5.0, gt=0, description="Seconds any Redis command or connect may take (an unreachable Redis must not freeze calls).")
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0, description="How often a worker writes its heartbeat and rewrites its live call records.")
    worker_heartbeat_ttl: float = Field(default=15.0, gt=0, description="A worker without a heartbeat this long counts as dead: its calls are swept, its inbox expires (must exceed WORKER_HEARTBEAT_SECONDS).")
    orphan_sweep_seconds: float = Field(default=30.0, gt=0, description="How often a worker looks for calls of dead workers (hangs them up, closes their records) and stale playback WAVs.")
    session_reap_seconds: float = Field(default=60.0, gt=0, description="A session still open this long after its hangup is force-closed (logged as an error).")

    # --- Dialog / LLM (owner: dialog layer) ----------------------------------------
    llm_base_url: str = Field(default="", description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; 'rule-based' = the built-in rule-based responder on purpose; empty = the same, with a warning that no LLM is configured.")
    llm_model: str = Field(default="local", description="Model name; a bare name means an OpenAI-compatible server at LLM_BASE_URL, 'provider/name' is passed to litellm as is.")
    llm_api_key: SecretStr = Field(default=SecretStr(""), description="API key for the LLM endpoint (empty for local servers).")
    llm_timeout: float = Field(default=20.0, gt=0, description="Seconds to wait for the LLM's response and between streamed chunks.")
    llm_temperature: float = Field(default=0.3, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=300, ge=1, description="Upper bound of one reply's length in tokens (phone answers are short).")
    llm_max_tool_rounds: int = Field(default=3, ge=0, le=20, description="Tool rounds per caller turn before the LLM must answer in words.")
    llm_warm_prefix: Literal["auto", "on", "off"] = Field(default="auto", description="Have the LLM server read the prompt prefix before it is needed (at start-up, and each call's while its greeting plays): 'auto' = only for a server on this machine (on a paid API it is a billed request).")
    llm_max_failures: int = Field(default=3, ge=1, description="Consecutive LLM failures after which the agent says goodbye and hangs up.")
    tool_timeout: float = Field(default=10.0, gt=0, description="Seconds a tool may run before it counts as failed.")
    history_turns: int = Field(default=12, ge=1, description="Caller turns of conversation history sent to the LLM.")
    profiles_file: str = Field(default="", description="YAML or JSON file with the assistant profiles (empty = the built-in default profile).")
    tools_dirs: str = Field(default="", description="Comma-separated directories of tool plugins (*.py); empty = the built-in tools.")
    phrases_file: str = Field(default="", description="YAML or JSON file with default phrases (thinking, apology, goodbye, transfer) for every profile.")

    # --- Observability -----------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Port of the voice worker's Prometheus /metrics endpoint (0 = off).")
    metrics_host: str = Field(default="127.0.0.1", description="Address the metrics endpoint binds.")
    log_format: Literal["json", "text"] = Field(default="json", description="JSON lines (default) or human-readable text.")

    # --- Speech (VAD, STT, TTS, inference pool; voiceagent/speech) ---------------
    stt_model: str = Field(default="base", description="Whisper model: 'base' (packaged, default), 'tiny.en' (packaged), or a CTranslate2 model directory.")
    stt_language: str = Field(default="en", description="Language code passed to Whisper (fixed: auto-detection costs ~0.5 s per turn).")
    stt_device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Whisper device; 'auto' = cuda when CTranslate2 sees a GPU, else cpu.")
    stt_compute_type: str = Field(default="int8", description="CTranslate2 compute type for Whisper (int8, int8_float16, float16, float32).")
    stt_threads: int = Field(default=2, ge=1, description="CPU threads one Whisper call uses.")
    stt_beam_size: int = Field(default=1, ge=1, description="Whisper beam size (1 = greedy, fastest).")
    tts_engine: Literal["piper", "xtts"] = Field(default="piper", description="Speech synthesizer: 'piper' (default, fast on CPU) or 'xtts' (needs the 'xtts' extra and ideally a GPU).")
    tts_voice: str = Field(default="en_US-joe-medium", description="Piper voice: a packaged name or the path of a .onnx file (with .onnx.json beside it).")
    tts_threads: int = Field(default=1, ge=1, description="CPU threads one Piper synthesis uses.")
    tts_length_scale: Optional[float] = Field(default=None, gt=0, le=4, description="Piper speaking pace (> 1 slower); unset = the voice's own (1.0 for joe-medium).")
    tts_noise_scale: Optional[float] = Field(default=None, ge=0, le=2, description="Piper generator noise; unset = the voice's own (0.667). 0 makes synthesis deterministic (the tests use 0).")
    tts_noise_w: Optional[float] = Field(default=None, ge=0, le=2, description="Piper phoneme-duration noise; unset = the voice's own (0.8). 0 makes timing deterministic (the tests use 0).")
    xtts_model_dir: str = Field(default="", description="Directory of a Coqui XTTS v2 model (used when TTS_ENGINE=xtts).")
    xtts_speaker_wav: str = Field(default="", description="Reference WAV of the voice XTTS clones (TTS_ENGINE=xtts).")
    vad_engine: Literal["silero", "webrtc"] = Field(default="silero", description="Voice activity detector: 'silero' (accurate, ~0.1 ms/32 ms) or 'webrtc' (cheaper, more false triggers on noise).")
    vad_threshold: float = Field(default=0.5, gt=0, lt=1, description="Silero speech probability above which a chunk counts as speech.")
    end_of_turn_ms: int = Field(default=600, ge=100, le=5000, description="Silence after speech that ends the caller's turn, ms.")
    pause_ms: int = Field(default=120, ge=0, le=5000, description="Silence after speech that starts speculative transcription, ms (0 = off; must be < END_OF_TURN_MS). 120 leaves Whisper base 480 ms of the 600 ms end-of-turn window to finish in (bench/RESULTS.md).")
    min_speech_ms: int = Field(default=250, ge=0, description="Shortest speech that can make a turn; shorter bursts (clicks, coughs) are ignored, ms.")
    max_utterance_s: float = Field(default=30.0, gt=0, description="A turn is cut after this much audio even if the caller keeps talking, s.")
    ack_after_ms: int = Field(default=1500, ge=0, le=10000, description="If no answer is playing this long after the caller's last word, say a short acknowledgement (the profile's 'thinking' phrase, e.g. 'One moment.') so the caller is not left in silence; 0 = never.")
    barge_in_min_ms: int = Field(default=400, ge=0, description="Caller speech needed to interrupt the agent's playback, ms ('mm-hm' and coughs do not).")
    inference_threads: int = Field(default=0, ge=0, description="Native threads that run model inference (0 = cores // STT_THREADS, at least 1).")
    admission_max_wait_s: float = Field(default=2.0, gt=0, description="Refuse new calls when the expected inference queue wait exceeds this, s.")
    admission_max_loop_lag_ms: int = Field(default=500, ge=0, description="Refuse new calls (USER_BUSY) while the event loop runs late by more than this (median of the last second), ms; 0 = off.")
    model_cache_dir: Path = Field(default=Path("~/.cache/voiceagent").expanduser(), description="Where packaged models are assembled once (Whisper base is shipped split in two).")

    @field_validator("esl_nodes", mode="before")
    @classmethod
    def _parse_nodes(cls, v):
        if isinstance(v, dict):
            return v
        nodes: Dict[str, str] = {}
        for item in str(v).split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, addr = item.partition("=")
            name, addr = name.strip(), addr.strip()
            if not sep or not name or ":" not in addr:
                raise ValueError(f"expected 'name=host:port', got {item!r}")
            host, _, port = addr.rpartition(":")
            if not port.isdigit():
                raise ValueError(f"bad port in {item!r}")
            if not host:
                raise ValueError(f"no host in {item!r}")
            if int(port) > 65535:  # 0 passes here: it means "not known yet" (demo, bench); `voice` refuses it
                raise ValueError(f"port {port} out of range (1-65535) in {item!r}")
            if name in nodes:
                raise ValueError(f"node name {name!r} given twice (names must be unique: they route the forks)")
            nodes[name] = addr
        if not nodes:
            raise ValueError("at least one node is required")
        return nodes

    @field_validator("media_dirs", mode="before")
    @classmethod
    def _parse_media_dirs(cls, v):
        items = [str(x).strip() for x in (v if isinstance(v, (list, tuple)) else str(v).split(","))]
        items = [x for x in items if x]
        for item in items:
            if not os.path.isabs(item):
                raise ValueError(f"media directories must be absolute paths, got {item!r}")
        return [Path(x) for x in items]

    @field_validator("worker_heartbeat_ttl")
    @classmethod
    def _ttl_exceeds_interval(cls, v, info):
        every = info.data.get("worker_heartbeat_seconds")
        if every is not None and v <= every:
            raise ValueError(f"must be greater than WORKER_HEARTBEAT_SECONDS ({every:g})")
        return v

    @field_validator("esl_password")
    @classmethod
    def _password_set(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("must not be empty (use the password of event_socket.conf.xml on the FreeSWITCH nodes)")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"expected redis://[:password@]host[:port][/db], rediss://... or unix:///path, got {mask_url(v)!r}")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"no host in {mask_url(v)!r}")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"no socket path in {mask_url(v)!r}")
        try:
            parts.port
        except ValueError:
            raise ValueError(f"bad port in {mask_url(v)!r}") from None
        return v

    @field_validator("fork_public_url")
    @classmethod
    def _fork_public_url(cls, v: str) -> str:
        return _check_url(v, ("ws", "wss"), "ws://10.0.0.5:8765")

    @field_validator("llm_base_url")
    @classmethod
    def _llm_base_url(cls, v: str) -> str:
        if v == RULE_BASED:
            return v
        return _check_url(v, ("http", "https"), "http://127.0.0.1:8000/v1")

    @model_validator(mode="after")
    def _pause_before_end_of_turn(self) -> "Settings":
        if self.pause_ms and self.pause_ms >= self.end_of_turn_ms:
            raise ValueError(f"PAUSE_MS ({self.pause_ms}) must be below END_OF_TURN_MS ({self.end_of_turn_ms}), or 0 (off)")
        return self

    def esl_endpoints(self) -> List[tuple]:
        out = []
        for name, addr in self.esl_nodes.items():
            host, _, port = addr.rpartition(":")
            out.append((name, host, int(port)))
        return out

    def masked(self) -> Dict[str, str]:
        """Effective values as strings, secrets replaced by '***' (or '' when unset)."""
        out = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***" if value.get_secret_value() else ""
            elif isinstance(value, dict):
                value = ",".join(f"{k}={v}" for k, v in value.items())
            out[name.upper()] = mask_url(str(value))
        return out


#: Query parameters of a URL that hold credentials (redis-py reads ?password=).
_SECRET_PARAMS = ("password", "pass", "passwd", "secret", "token", "key", "api_key", "apikey")


def mask_url(value: str) -> str:
    """``value`` with a URL's credentials (``user:pass@``, ``?password=``) replaced by ``***``."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return value
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _check_url(v: str, schemes: tuple, example: str) -> str:
    """Empty, or a URL with one of ``schemes`` and a host."""
    if not v:
        return v
    try:
        parts = urlsplit(v)
        parts.port
    except ValueError:
        raise ValueError(f"bad port in {mask_url(v)!r}") from None
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in v):
        raise ValueError(f"expected a {'/'.join(schemes)} URL such as {example}, got {mask_url(v)!r}")
    return v


def load_settings(**overrides) -> Settings:
    """Read the environment (plus explicit overrides); raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            # a check across settings (model validator) has no location: its message names them
            problems.append(f"{str(err['loc'][0]).upper()}: {msg}" if err["loc"] else msg)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
