"""Prometheus metrics of the voice worker: calls, turns, the edge (ESL, forks, audio, inference, the loop).

Naming follows Prometheus' conventions: ``voiceagent_`` prefix, base units (seconds, bytes) in the
name, ``_total`` on counters.  Labels are small fixed sets (direction, outcome, reason, node name,
tool name); never a call id, a number or anything a caller can make up.  The operator layer's
metrics (API, queue, webhooks, tools) are in :mod:`.ops_metrics`.
"""
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# stage latencies of a turn: tens of ms (TTS of a short phrase) to seconds (a slow LLM)
STAGE_BUCKETS = (.025, .05, .1, .2, .3, .5, .75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

# --- calls ---------------------------------------------------------------------------------
ACTIVE_CALLS = Gauge("voiceagent_active_calls", "Calls this worker is handling", ["worker"])
CALLS_STARTED = Counter("voiceagent_calls_started_total",
                        "Calls the worker took (inbound once FreeSWITCH confirmed them, outbound when requested)",
                        ["direction"])
CALLS_ENDED = Counter("voiceagent_calls_ended_total", "Calls that ended, by how", ["direction", "outcome"])
CALL_DURATION = Histogram("voiceagent_call_duration_seconds", "Answered calls: answer to hangup", ["direction"],
                          buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600))
CALLS_REFUSED = Counter("voiceagent_calls_refused_total", "Calls refused before answer (busy, draining, ...)",
                        ["reason"])
ORIGINATES = Counter("voiceagent_originates_total", "Outbound call attempts by outcome", ["outcome"])
PLAYBACK_LATENCY = Histogram("voiceagent_playback_start_seconds",
                             "uuid_broadcast sent → PLAYBACK_START", buckets=(.01, .025, .05, .1, .2, .3, .5, 1, 2))

# --- turns ---------------------------------------------------------------------------------
TURNS = Counter("voiceagent_turns_total", "Caller turns answered, by kind (speech, dtmf, ...)", ["kind"])
TURN_ENDPOINT_WAIT = Histogram("voiceagent_turn_endpoint_wait_seconds",
                               "Caller's last word → end of turn decided", buckets=STAGE_BUCKETS)
TURN_STT = Histogram("voiceagent_turn_stt_seconds", "What transcription added after the end of turn",
                     buckets=STAGE_BUCKETS)
TURN_LLM_FIRST_TOKEN = Histogram("voiceagent_turn_llm_first_token_seconds", "LLM request → first token",
                                 buckets=STAGE_BUCKETS)
TURN_TTS_FIRST_AUDIO = Histogram("voiceagent_turn_tts_first_audio_seconds",
                                 "Synthesis of the reply's first sentence", buckets=STAGE_BUCKETS)
TURN_VOICE_TO_VOICE = Histogram("voiceagent_turn_voice_to_voice_seconds",
                                "Caller's last word → the agent's first audio handed to FreeSWITCH",
                                buckets=STAGE_BUCKETS)
BARGE_INS = Counter("voiceagent_barge_ins_total", "Times a caller interrupted the agent")
HALLUCINATION_DROPS = Counter("voiceagent_stt_hallucination_drops_total",
                              "Transcripts dropped as likely Whisper hallucinations")

# --- the edge ------------------------------------------------------------------------------
ESL_CONNECTED = Gauge("voiceagent_esl_connected", "1 while the ESL connection to a node is up", ["node"])
ESL_RECONNECTS = Counter("voiceagent_esl_reconnects_total", "ESL connections re-established after a loss",
                         ["node"])
FORK_CONNECTIONS = Counter("voiceagent_fork_connections_total", "mod_audio_fork WebSockets accepted")
FORK_OPEN = Gauge("voiceagent_fork_connections_open", "mod_audio_fork WebSockets open now")
AUDIO_FRAMES = Counter("voiceagent_audio_frames_received_total", "Audio frames received from the forks")
AUDIO_BYTES = Counter("voiceagent_audio_received_bytes_total", "Audio bytes (L16) received from the forks")
AUDIO_SENT_BYTES = Counter("voiceagent_audio_sent_bytes_total", "Audio bytes handed to FreeSWITCH for playback")
INFERENCE_QUEUE_WAIT = Histogram("voiceagent_inference_queue_wait_seconds",
                                 "Model call submitted → a pool thread runs it", ["kind"],
                                 buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
LOOP_LAG = Histogram("voiceagent_event_loop_lag_seconds", "How late the event loop woke a sleeping greenlet",
                     buckets=(.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1))


def serve(port: int, host: str) -> Any:
    """This process's metrics on ``http://host:port/metrics`` (a daemon thread); ``shutdown()`` stops it,
    ``server_port`` is the port it bound."""
    server, _thread = start_http_server(port, addr=host)
    return server
