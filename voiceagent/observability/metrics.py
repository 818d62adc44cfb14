"""Prometheus metrics of the voice worker (exported by the worker's metrics endpoint)."""
from prometheus_client import Counter, Gauge, Histogram

ACTIVE_CALLS = Gauge("voiceagent_active_calls", "Calls this worker is handling", ["worker"])
CALLS_REFUSED = Counter("voiceagent_calls_refused_total", "Calls refused before answer", ["reason"])
CALLS_FINISHED = Counter("voiceagent_calls_finished_total", "Answered calls that ended", ["direction", "ended_by"])
ORIGINATES = Counter("voiceagent_originates_total", "Outbound call attempts by outcome", ["outcome"])
PLAYBACK_LATENCY = Histogram("voiceagent_playback_start_seconds",
                             "uuid_broadcast sent → PLAYBACK_START", buckets=(.01, .025, .05, .1, .2, .3, .5, 1, 2))
