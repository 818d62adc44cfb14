"""OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``, for every refusal.

Clients written for OpenAI read ``error.message`` (and often ``param``); a 5xx carries no traceback."""
from __future__ import annotations

from typing import Optional

from flask import Response, jsonify

__all__ = ["SpeechApiError", "error_response"]


class SpeechApiError(Exception):
    """A request the server refuses: status, message, the offending field (``param``) and a code."""

    def __init__(self, status: int, message: str, param: Optional[str] = None, code: Optional[str] = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


def error_response(status: int, message: str, param: Optional[str] = None, code: Optional[str] = None,
                   kind: str = "invalid_request_error") -> Response:
    resp = jsonify({"error": {"message": message, "type": kind, "param": param, "code": code}})
    resp.status_code = status
    return resp
