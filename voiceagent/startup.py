"""What ``voiceagent voice`` checks before it says "ready": everything the settings model cannot.

The settings validators check each value on its own (``voiceagent/config/``); these checks need the
machine: files that must be readable, directories that must be writable, ports that must be
free, Redis that must answer.  A worker that started "ready" and then failed every call (a
missing greeting file) or warned forever without naming the setting (Redis on a closed port)
is worse than one that refuses to start, so each problem becomes one line naming the
variable, and the command exits with status 2.  At run time the same outages are survived
(Redis down, FreeSWITCH restarting): only start-up is strict.
"""
from __future__ import annotations

import errno
import os
import socket
import wave
from pathlib import Path
from typing import Callable, List

from .config import ConfigError, Settings, mask_url


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_esl_nodes(s: Settings) -> List[str]:
    """Port 0 is accepted by the model (demo and bench fill it in later), never by a worker."""
    return [f"ESL_NODES: node {name!r} has port 0 (give the Event Socket port, usually 8021)"
            for name, _host, port in s.esl_endpoints() if port == 0]


def check_files(s: Settings) -> List[str]:
    problems: List[str] = []
    if s.dialog == "greeting" and s.greeting_file:
        problems += _check_wav("GREETING_FILE", s.greeting_file)
    if s.dialog == "conversation":
        from .dialog.profiles import load_phrases, load_profiles

        if s.phrases_file:
            problems += _check_load("PHRASES_FILE", s.phrases_file, lambda: load_phrases(s.phrases_file))
        if s.profiles_file and not problems:
            problems += _check_load("PROFILES_FILE", s.profiles_file,
                                    lambda: load_profiles(s.profiles_file, s.phrases_file or None))
        for d in (d.strip() for d in s.tools_dirs.split(",")):
            if d and not os.path.isdir(d):
                problems.append(f"TOOLS_DIRS: {d} is not a directory")
    problems += _check_writable_dir("PLAYBACK_DIR", Path(s.playback_dir))
    return problems


def _check_wav(var: str, path: str) -> List[str]:
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                return [f"{var}: {path} must be 16-bit mono PCM (it has {w.getnchannels()} channel(s), "
                        f"{8 * w.getsampwidth()}-bit)"]
            if w.getnframes() == 0:
                return [f"{var}: {path} holds no audio"]
    except OSError as exc:
        return [f"{var}: cannot read {path}: {exc.strerror or _one_line(exc)}"]
    except EOFError:
        return [f"{var}: {path} is not a PCM WAV file (too short)"]
    except wave.Error as exc:
        return [f"{var}: {path} is not a PCM WAV file ({_one_line(exc)})"]
    return []


def _check_load(var: str, path: str, load: Callable[[], object]) -> List[str]:
    try:
        load()
    except UnicodeDecodeError as exc:
        return [f"{var}: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    except Exception as exc:  # ProfileError names the file and the place; anything else too
        return [f"{var}: {_one_line(exc)}"]
    return []


def _check_writable_dir(var: str, path: Path) -> List[str]:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [f"{var}: cannot create {path}: {exc.strerror or _one_line(exc)}"]
    if not os.access(path, os.W_OK | os.X_OK):
        return [f"{var}: {path} is not writable"]
    return []


def check_redis(s: Settings, timeout: float = 3.0) -> List[str]:
    import redis

    try:
        client = redis.Redis.from_url(s.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return [f"REDIS_URL: no Redis at {mask_url(s.redis_url)}: {_one_line(exc)}"]
    return []


def check_bind(host_var: str, host: str, port_var: str, port: int, reuse_port: bool = False) -> List[str]:
    """Can a listening socket be bound to ``host:port``?  (The real server binds a moment later; with
    ``reuse_port`` other workers' SO_REUSEPORT servers may hold it already.)"""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return [f"{host_var}: cannot resolve {host!r} ({_one_line(exc)})"]
    family, stype, proto, _name, addr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return [f"{port_var}: port {port} on {host} is already in use"]
        if exc.errno == errno.EACCES:
            return [f"{port_var}: no permission to listen on port {port}"]
        if exc.errno == errno.EADDRNOTAVAIL:
            return [f"{host_var}: {host} is not an address of this machine"]
        return [f"{host_var}/{port_var}: cannot listen on {host}:{port}: {exc.strerror or _one_line(exc)}"]
    finally:
        sock.close()
    return []


def check_ports(s: Settings) -> List[str]:
    problems = check_bind("FORK_HOST", s.fork_host, "FORK_PORT", s.fork_port, s.fork_reuse_port)
    if s.metrics_port:
        problems += check_bind("METRICS_HOST", s.metrics_host, "METRICS_PORT", s.metrics_port)
    return problems


def check_speech_urls(s: Settings) -> List[str]:
    """A remote STT/TTS backend needs its server's URL (whether the server answers is the calls' business:
    they retry it, fall back, or apologise)."""
    problems = ["STT_URL: is required when STT_BACKEND=remote"] if s.stt_backend == "remote" and not s.stt_url else []
    if s.tts_engine == "remote" and not s.tts_url:
        problems.append("TTS_URL: is required when TTS_ENGINE=remote")
    return problems


def preflight(s: Settings) -> None:
    """Every start-up check; raises :class:`ConfigError` with one line per problem."""
    problems = check_esl_nodes(s) + check_files(s) + check_ports(s) + check_redis(s)
    problems += check_speech_urls(s)
    if problems:
        raise ConfigError("\n".join(f"invalid configuration: {p}" for p in problems))
