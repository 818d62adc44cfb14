"""``create_app(settings, engines)``: the speech server's Flask app.

Every ``/v1`` route needs the bearer token when SPEECH_SERVER_TOKEN is set (compared with
``hmac.compare_digest``); ``/health`` and ``/metrics`` are public.  Every refusal is OpenAI's error
shape (speech_server/errors.py), an unexpected error a 500 in that shape, never a dead server."""
from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import speech, transcriptions
from .errors import SpeechApiError, error_response
from .metrics import REQUESTS, SECONDS

__all__ = ["create_app"]

log = logging.getLogger(__name__)

PUBLIC = ("/health", "/metrics")


def create_app(settings: Any, engines: Any) -> Flask:
    app = Flask("voiceagent.speech_server", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.speech_server_max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["speech.engines"] = engines
    app.extensions["speech.settings"] = settings
    token = settings.speech_server_token.get_secret_value().encode()
    app.register_blueprint(transcriptions.bp)
    app.register_blueprint(speech.bp)

    @app.before_request
    def _auth() -> Any:
        g.t0 = time.perf_counter()
        if not token or request.path in PUBLIC:
            return None
        given = request.headers.get("Authorization", "")
        if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token)):
            return error_response(401, "Missing or wrong API key (Authorization: Bearer ...).", None, "invalid_api_key")
        return None

    @app.after_request
    def _count(resp: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unknown"
        REQUESTS.labels(endpoint, str(resp.status_code)).inc()
        if endpoint.startswith("/v1/audio/transcriptions") and resp.status_code == 200:
            SECONDS.labels("transcriptions").observe(time.perf_counter() - g.get("t0", time.perf_counter()))
        return resp

    @app.errorhandler(SpeechApiError)
    def _refused(exc: SpeechApiError) -> Response:
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.kind)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        return error_response(413, f"The request is larger than {settings.speech_server_max_upload_bytes} bytes "
                              "(SPEECH_SERVER_MAX_UPLOAD_BYTES).", "file", "file_too_large")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return error_response(exc.code or 500, exc.description or exc.name, None, exc.name.lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        log.exception("speech server: %s %s failed", request.method, request.path)
        return error_response(500, f"The server failed on this request ({type(exc).__name__}).", None,
                              "internal_error", "server_error")

    @app.get("/v1/models")
    def models() -> Response:
        return jsonify({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "voiceagent"}
                                                   for m in engines.model_ids()]})

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "stt": engines.stt_models[-1], "voices": list(engines.voices),
                        "batch": engines.batcher.enabled, "pool": engines.pool.stats()})

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])

    return app
