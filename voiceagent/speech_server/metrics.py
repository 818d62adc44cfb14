"""Prometheus metrics of the speech server (served at /metrics)."""
from prometheus_client import Counter, Histogram

REQUESTS = Counter("voiceagent_speech_server_requests_total", "Requests by endpoint and status", ["endpoint", "status"])
SECONDS = Histogram("voiceagent_speech_server_seconds", "Time to answer (speech: to the first audio) by endpoint",
                    ["endpoint"], buckets=(.025, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10, 30))
BATCH_SIZE = Histogram("voiceagent_speech_server_batch_size", "Utterances per Whisper run",
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64))
AUDIO_SECONDS = Counter("voiceagent_speech_server_audio_seconds_total", "Seconds of audio transcribed or synthesized",
                        ["endpoint"])
