"""Every error the API returns, as one JSON shape: ``{"error": {"code", "message", "fields"}}``.

A client handles one shape whatever went wrong (bad JSON, auth, validation, an unknown route);
``fields`` names each invalid input by its dotted path (``choice.options.1.digit``), so a form
can point at it.  Unexpected exceptions become a 500 without a traceback (logged once).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Sequence

from flask import Flask, Response
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

#: The machine-readable code of each status the API returns.
CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "validation_failed",
         429: "too_many_requests",
         500: "internal_error", 503: "unavailable"}


class ApiError(Exception):
    """Raised by a view: becomes the JSON error with ``status``."""

    def __init__(self, status: int, message: str, fields: Optional[List[Dict[str, str]]] = None,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}


def field_errors(exc: ValidationError, rename: Optional[Dict[str, str]] = None) -> List[Dict[str, str]]:
    """pydantic's errors as ``[{"field": "a.b.0", "message": ...}]`` (``rename`` maps a top-level name)."""
    out = []
    for err in exc.errors():
        loc: Sequence[Any] = err["loc"]
        if loc and rename and str(loc[0]) in rename:
            loc = (rename[str(loc[0])], *loc[1:])
        out.append({"field": ".".join(str(p) for p in loc) or "(body)",
                    "message": str(err["msg"]).removeprefix("Value error, ")})
    return out


def invalid(exc: ValidationError, rename: Optional[Dict[str, str]] = None) -> ApiError:
    fields = field_errors(exc, rename)
    return ApiError(422, "invalid " + ", ".join(f["field"] for f in fields), fields)


def error_response(status: int, message: str, fields: Optional[List[Dict[str, str]]] = None,
                   headers: Optional[Dict[str, str]] = None) -> Response:
    body = {"error": {"code": CODES.get(status, "error"), "message": message, "fields": fields or []}}
    resp = Response(json.dumps(body), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def install(app: Flask) -> None:
    """Route every error of ``app`` through :func:`error_response`."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.fields, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else {}  # type: ignore[attr-defined]
        return error_response(status, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error in the API", exc_info=exc)
        return error_response(500, "internal error (logged on the server)")
