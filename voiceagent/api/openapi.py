"""The OpenAPI 3.1 document, generated from the routes and the pydantic models they declare.

Why our own generator and not flask-openapi3 or spectree: it needs no dependency beyond Flask
and pydantic (both already pinned), and the models that validate requests are the only source:
:func:`operation` records on each view which models it reads and returns, and :func:`document`
walks the app's URL map, so a route without a declaration, or a model the document does not
define, cannot slip in (the tests check both).  OpenAPI 3.1 schemas are JSON Schema 2020-12,
which is what ``model_json_schema`` emits, so the models' schemas go in unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Type

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .errors import CODES
from .models import ErrorBody

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Dict[int, Optional[Type[BaseModel]]]
    body: Optional[Type[BaseModel]] = None
    query: Optional[Type[BaseModel]] = None
    public: bool = False             # no bearer token (/health)
    errors: Tuple[int, ...] = field(default=())
    content_type: str = "application/json"


def operation(summary: str, *, responses: Dict[int, Optional[Type[BaseModel]]], body: Optional[Type[BaseModel]] = None,
              query: Optional[Type[BaseModel]] = None, public: bool = False, errors: Tuple[int, ...] = (),
              content_type: str = "application/json") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare what a view reads and answers (read by :func:`document` and by the auth check)."""
    op = Operation(summary, responses, body, query, public, errors, content_type)

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view.api_operation = op  # type: ignore[attr-defined]
        return view
    return mark


def operation_of(view: Any) -> Optional[Operation]:
    return getattr(view, "api_operation", None)


def html_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as one of the HTML pages (api/pages.py): not an API operation, so not in the
    document, and authenticated by the pages' login cookie instead of the bearer token."""
    view.html_page = True  # type: ignore[attr-defined]
    return view


def is_html_page(view: Any) -> bool:
    return bool(getattr(view, "html_page", False))


def _path(rule: str) -> Tuple[str, List[str]]:
    names = re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule)
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), names


def document(app: Flask, title: str = "voiceagent API", version: str = "1") -> Dict[str, Any]:
    ops: List[Tuple[str, str, str, Operation]] = []
    for rule in app.url_map.iter_rules():
        if is_html_page(app.view_functions[rule.endpoint]):
            continue
        op = operation_of(app.view_functions[rule.endpoint])
        if op is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) declares no operation")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            ops.append((rule.rule, method, rule.endpoint, op))
    models: Set[Type[BaseModel]] = {ErrorBody}
    for _, _, _, op in ops:
        models |= {m for m in (op.body, op.query, *op.responses.values()) if m is not None}
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=REF)
    ref_of: Dict[Type[BaseModel], Dict[str, Any]] = {m: refs[(m, "validation")] for m in ordered}
    paths: Dict[str, Dict[str, Any]] = {}
    for rule_text, method, endpoint, op in ops:
        path, params = _path(rule_text)
        item: Dict[str, Any] = {"operationId": endpoint.replace(".", "_") + "_" + method.lower(),
                                "summary": op.summary, "tags": [endpoint.split(".")[0]], "responses": {}}
        parameters = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in params]
        if op.query is not None:
            props = op.query.model_json_schema(ref_template=REF).get("properties", {})
            for name, schema in props.items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": schema,
                                   **({"description": schema["description"]} if "description" in schema else {})})
        if method == "POST" and path == "/calls":
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                               "description": "Placing again with the same key returns the first call's id."})
        if parameters:
            item["parameters"] = parameters
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref_of[op.body]}}}
        for status, model in op.responses.items():
            if model is None:
                item["responses"][str(status)] = {"description": op.content_type,
                                                  "content": {op.content_type: {"schema": {"type": "string"}}}}
            else:
                item["responses"][str(status)] = {"description": model.__doc__.strip().splitlines()[0]
                                                  if model.__doc__ else model.__name__,
                                                  "content": {"application/json": {"schema": ref_of[model]}}}
        errors = set(op.errors) | ({401} if not op.public else set()) | {500}
        if op.body is not None:
            errors |= {400, 413, 415, 422}
        if op.query is not None:
            errors.add(422)
        for status in sorted(errors):
            item["responses"][str(status)] = {"description": CODES[status],
                                              "content": {"application/json": {"schema": ref_of[ErrorBody]}}}
        if op.public:
            item["security"] = []
        paths.setdefault(path, {})[method.lower()] = item
    return {"openapi": "3.1.0", "info": {"title": title, "version": version},
            "components": {"schemas": defs.get("$defs", {}),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": dict(sorted(paths.items()))}
