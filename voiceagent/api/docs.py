"""GET /openapi.json and GET /docs (the same document as a plain HTML page).

The page is self-contained (no Swagger UI or Redoc from a CDN): it works on a machine without
internet and carries no third-party script into a page that holds the operator's token.
"""
from __future__ import annotations

import html
import json
from typing import Any, Dict

from flask import Blueprint, Response, current_app, jsonify

from .openapi import document, operation

bp = Blueprint("docs", __name__)


def _doc() -> Dict[str, Any]:
    cached: Dict[str, Any] = current_app.extensions.setdefault("voiceagent.openapi", document(current_app))
    return cached


@bp.get("/openapi.json")
@operation("The OpenAPI 3.1 document of this API", responses={200: None})
def openapi_json() -> Response:
    return jsonify(_doc())


def _schema_name(ref: Dict[str, Any]) -> str:
    return str(ref.get("$ref", "")).rsplit("/", 1)[-1]


def render(doc: Dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(doc['info']['title'])}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}code,pre{background:#f4f4f4}"
             "h3{margin-bottom:.2em}.m{font-weight:bold;text-transform:uppercase}</style></head><body>",
             f"<h1>{e(doc['info']['title'])}</h1><p>Send <code>Authorization: Bearer &lt;API_TOKEN&gt;</code> "
             "except where marked public. Errors are <code>{\"error\": {\"code\", \"message\", \"fields\"}}</code>. "
             "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            public = " (public)" if op.get("security") == [] else ""
            parts.append(f"<h3 id='{e(op['operationId'])}'><span class='m'>{e(method)}</span> <code>{e(path)}</code>"
                         f"{public}</h3><p>{e(op['summary'])}</p><ul>")
            for p in op.get("parameters", []):
                parts.append(f"<li>{e(p['in'])} <code>{e(p['name'])}</code> {e(p.get('description', ''))}</li>")
            body = op.get("requestBody")
            if body:
                name = e(_schema_name(body["content"]["application/json"]["schema"]))
                parts.append(f"<li>body: <a href='#schema-{name}'>{name}</a></li>")
            codes = ", ".join(op["responses"])
            parts.append(f"<li>responses: {e(codes)}</li></ul>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(f"<h3 id='schema-{e(name)}'>{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


@bp.get("/docs")
@operation("This API's operations and schemas as an HTML page", responses={200: None}, content_type="text/html")
def docs_page() -> Response:
    return Response(render(_doc()), mimetype="text/html")
