"""The FreeSWITCH-facing sections: Event Socket, mod_audio_fork server, playback."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode
from typing_extensions import Annotated

from .base import Section, check_url, field_error, is_loopback_host


class EslSettings(Section):
    title = "esl: FreeSWITCH Event Socket (telephony/esl.py, one connection per node)"

    esl_nodes: Annotated[Dict[str, str], NoDecode] = Field(
        default={"fs1": "127.0.0.1:8021"},
        description="FreeSWITCH nodes this worker serves: 'name=host:port,name2=host:port'. "
        "The name must match the node name in the fork metadata (${switchname}).",
    )
    esl_password: SecretStr = Field(default=SecretStr("change-me"), description="Event Socket password (never ClueCon in production).")
    esl_command_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for any ESL command reply.")
    esl_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for the TCP connect + auth.")
    esl_reconnect_max_delay: float = Field(default=10.0, gt=0, description="Upper bound of the reconnect backoff, seconds.")
    bgapi_timeout: float = Field(default=90.0, gt=0, description="Seconds to wait for a BACKGROUND_JOB result; an originate waits at least its ring timeout + 30 s (giving up earlier could leave an answered call nobody owns).")
    esl_healthy_after_s: float = Field(default=30.0, ge=0, description="A connection must stay up this long before the reconnect backoff starts again from zero (a node that accepts and drops at once is retried ever more slowly, not thousands of times).")
    esl_event_queue_max: int = Field(default=2000, ge=10, description="Events queued per node before the client stops reading from FreeSWITCH until its handlers catch up (back-pressure; no event is dropped).")

    @field_validator("esl_nodes", mode="before")
    @classmethod
    def _parse_nodes(cls, v: Any) -> Dict[str, str]:
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

    @field_validator("esl_password")
    @classmethod
    def _password_set(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("must not be empty (use the password of event_socket.conf.xml on the FreeSWITCH nodes)")
        return v

    def esl_endpoints(self) -> List[Tuple[str, str, int]]:
        """``(name, host, port)`` of every node, in ESL_NODES order."""
        out = []
        for name, addr in self.esl_nodes.items():
            host, _, port = addr.rpartition(":")
            out.append((name, host, int(port)))
        return out


def fork_edge_problem(s: "ForkSettings") -> Optional[Tuple[str, str]]:
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


class ForkSettings(Section):
    title = "fork: the mod_audio_fork WebSocket server (telephony/fork_server.py)"

    fork_host: str = Field(default="127.0.0.1", description="Address the fork WebSocket server binds (a non-loopback address needs FORK_AUTH_USER/FORK_AUTH_PASSWORD or FORK_ALLOW_INSECURE=true).")
    fork_port: int = Field(default=8765, ge=0, le=65535, description="Port of the fork WebSocket server (0 = pick one).")
    fork_public_url: str = Field(default="", description="URL FreeSWITCH uses to reach this worker, e.g. ws://10.0.0.5:8765 (default: ws://<fork_host>:<port>).")
    fork_auth_user: str = Field(default="", description="HTTP Basic user required on the fork upgrade (empty = no auth).")
    fork_auth_password: SecretStr = Field(default=SecretStr(""), description="HTTP Basic password for the fork upgrade (required when FORK_AUTH_USER is set).")
    fork_allow_insecure: bool = Field(default=False, description="Allow binding FORK_HOST to a non-loopback address without Basic auth (anyone who reaches the port can inject audio).")
    fork_reuse_port: bool = Field(default=False, description="Listen with SO_REUSEPORT, so several voice workers on this machine share FORK_PORT (the kernel spreads new forks over them; each serves the calls whose fork reached it): one event loop per core (bench/load.py --workers).")
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
    def _check_fork_edge(self) -> "ForkSettings":
        """The fork edge carries a caller's audio: never open to the network by accident."""
        problem = fork_edge_problem(self)
        if problem is not None:
            var, msg = problem
            raise field_error(var, "fork_edge", msg, getattr(self, var.lower()))
        return self

    @field_validator("fork_public_url")
    @classmethod
    def _fork_public_url(cls, v: str) -> str:
        return check_url(v, ("ws", "wss"), "ws://10.0.0.5:8765")


class PlaybackSettings(Section):
    title = "playback: how the agent's audio reaches FreeSWITCH (calls/playback.py)"

    playback_mode: Literal["upload", "shared"] = Field(default="upload", description="'upload': send playAudio over the fork; 'shared': write WAVs into playback_dir that FreeSWITCH reads.")
    playback_dir: Path = Field(default=Path("/tmp/voiceagent-playback"), description="Directory for WAVs in shared mode (must be readable by FreeSWITCH at the same path).")
    media_dirs: Annotated[List[Path], NoDecode] = Field(default=[], description="Comma-separated absolute directories whose files a Redis 'play' command may play (besides PLAYBACK_DIR).")
    playback_margin_seconds: float = Field(default=5.0, gt=0, description="A playback FreeSWITCH has not reported finished this long after its audio should have ended is marked finished (events lost).")
    playback_max_age_minutes: float = Field(default=10.0, gt=0, description="WAVs of ours in PLAYBACK_DIR older than this are deleted (at start-up and every ORPHAN_SWEEP_SECONDS).")

    @field_validator("media_dirs", mode="before")
    @classmethod
    def _parse_media_dirs(cls, v: Any) -> List[Path]:
        items = [str(x).strip() for x in (v if isinstance(v, (list, tuple)) else str(v).split(","))]
        items = [x for x in items if x]
        for item in items:
            if not os.path.isabs(item):
                raise ValueError(f"media directories must be absolute paths, got {item!r}")
        return [Path(x) for x in items]
