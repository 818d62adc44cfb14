"""A stand-in speech server that fails on purpose: scripted answers (5xx, 4xx, garbage, or a good one) and a
``hang`` mode that never answers, to drive the remote backends' retries, timeouts and fallbacks."""
from __future__ import annotations

import json
from typing import List, Tuple

from tests.http_standin import HttpStandIn

Answer = Tuple[int, bytes, str]


def error_answer(status: int, message: str = "the model is down") -> Answer:
    return status, json.dumps({"error": {"message": message, "type": "server_error", "param": None,
                                         "code": None}}).encode(), "application/json"


def transcript_answer(text: str) -> Answer:
    body = {"task": "transcribe", "language": "english", "duration": 1.0, "text": text,
            "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 1.0, "text": " " + text, "tokens": [1],
                          "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.01}]}
    return 200, json.dumps(body).encode(), "application/json"


class SpeechStandIn(HttpStandIn):
    """Answers every request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers: List[Answer] = list(answers) or [error_answer(503)]
        self.requests: List[Tuple[str, bytes]] = []  # (path, body)

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        self.requests.append((environ["PATH_INFO"], body))
        if self.hang:
            self.hold()
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"stopped"]
        status, payload, ctype = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        start_response(f"{status} X", [("Content-Type", ctype), ("Content-Length", str(len(payload)))])
        return [payload]

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"
