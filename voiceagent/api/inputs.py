"""Reading a request: the JSON body and the query string, validated by a pydantic model.

A body is read only as ``application/json`` (415 otherwise), must parse (400) and be an object
(422); an empty body counts as ``{}`` so ``POST /calls/{id}/hangup`` needs none.  The body limit
(API_MAX_BODY_BYTES) is Flask's MAX_CONTENT_LENGTH: werkzeug answers 413 before reading more.
"""
from __future__ import annotations

import json
from typing import Type, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from .errors import ApiError, invalid

M = TypeVar("M", bound=BaseModel)

#: The deepest JSON a body may hold.  No request needs more than a few levels; a deeper one could
#: still run a later serializer (the record's JSON, a tool's arguments) out of stack.
MAX_DEPTH = 32


def _deeper_than(data: object, limit: int) -> bool:
    """Whether ``data`` nests lists/objects more than ``limit`` levels (without recursing itself)."""
    level = [data]
    for _ in range(limit + 1):
        nxt: list = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        if not nxt:
            return False
        level = nxt
    return True


def raw_body() -> bytes:
    """The body, or 413 past the limit: werkzeug checks a declared length itself, but a chunked
    body it would cut at the limit silently, so that one is read here with one byte to spare."""
    limit = request.max_content_length
    if request.content_length is not None or limit is None:
        return request.get_data(cache=True)
    stream = request.environ["wsgi.input"]
    data = b""
    while len(data) <= limit:
        chunk = stream.read(limit + 1 - len(data))
        if not chunk:
            return data
        data += chunk
    raise ApiError(413, f"the body is larger than {limit} bytes")


def parse_json(raw: bytes) -> object:
    """JSON text to data: 400 for text that is not JSON or is nested deeper than MAX_DEPTH."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # '[[[[...' within the size limit: the parser's own stack runs out
        raise ApiError(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None
    if _deeper_than(data, MAX_DEPTH):
        raise ApiError(400, f"the body is nested deeper than {MAX_DEPTH} levels")
    return data


def body(model: Type[M]) -> M:
    raw = raw_body()
    if not raw.strip():
        data: object = {}
    else:
        mime = request.mimetype or ""
        if mime != "application/json" and not mime.endswith("+json"):
            raise ApiError(415, f"the body must be application/json, not {mime or 'untyped'}")
        data = parse_json(raw)
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object", [{"field": "(body)", "message": "must be an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None


def query(model: Type[M]) -> M:
    """The query string as ``model`` (a parameter given twice is an error: which would count?)."""
    args = request.args
    repeated = sorted(k for k in args if len(args.getlist(k)) > 1)
    if repeated:
        raise ApiError(422, f"parameter given twice: {repeated[0]}",
                       [{"field": k, "message": "given more than once"} for k in repeated])
    try:
        return model.model_validate(dict(args))
    except ValidationError as exc:
        raise invalid(exc) from None
