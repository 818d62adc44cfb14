"""A seeded property-style fuzz of every operation /openapi.json declares (hypothesis and
schemathesis are not installed: tests/api/schema_fuzz.py generates from the schemas).

For each operation it sends valid, invalid and junk path ids, query strings, headers and bodies,
and checks the properties every answer must have: never a 5xx, a 2xx only with a documented
status, and every 4xx in the one error shape ``{"error": {"code", "message", "fields"}}``.
Operations added later (schedules, webhooks) are covered as soon as they are in the document.
"""
import json
import os
import random
import uuid
from collections import Counter
from urllib.parse import quote

import pytest
import requests

from tests.api.schema_fuzz import NASTY_STRINGS, SchemaFuzz
from voiceagent.dialog.tools import builtin_tools_dir

PLUGINS = os.path.join(os.path.dirname(__file__), "..", "e2e", "tool_plugins")
PER_OPERATION = 20
BAD_IDS = [str(uuid.UUID(int=0)), "x" * 300, "..", "%", "\u202e\U0001f600", " ", "null", "a b", "\u0000", "-1",
           "a/b", "<x>", "${x}", "\ud800"]
CONTENT_TYPES = ["application/json"] * 6 + ["text/plain", "application/x+json", "", "application/json; charset=latin-1",
                                            "multipart/form-data"]


def _junk_body(rng, fz):
    """Bytes no valid request has: not JSON, not an object, nested past any parser's depth, NaN."""
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if kind == 1:
        return json.dumps(fz.any_value()).encode()
    if kind == 2:
        return b"[" * rng.choice([500, 5000, 30000])
    if kind == 3:
        return ('{"a":' * rng.choice([200, 3000, 20000]) + "1" + "}" * 3000).encode()[:60000]
    if kind == 4:
        return b'{"to": NaN, "ring_timeout": Infinity}'
    if kind == 5:
        return b"\xef\xbb\xbf{}"
    return rng.choice(NASTY_STRINGS).encode("utf-8", "surrogatepass")


def _query_text(v):
    """A query value as bytes (a lone surrogate is sent as its UTF-8-ish bytes, as a broken client would)."""
    return (v if isinstance(v, str) else json.dumps(v)).encode("utf-8", "surrogatepass")


def _request(rng, fz, path, method, op, known):
    """(url path, params, headers, data) for one request to ``op``."""
    url = path
    for p in op.get("parameters", []):
        if p["in"] == "path":
            good = known.get(p["name"], [])
            v = rng.choice(good) if good and rng.random() < 0.65 else rng.choice(BAD_IDS)
            url = url.replace("{" + p["name"] + "}", quote(v.encode("utf-8", "surrogatepass"), safe=""))
    params = []
    headers = {}
    for p in op.get("parameters", []):
        if p["in"] == "path" or rng.random() < 0.5:
            continue
        roll = rng.random()
        value = (fz.valid(p["schema"]) if roll < 0.6 else fz.invalid(p["schema"]) if roll < 0.85
                 else rng.choice(NASTY_STRINGS))
        if p["in"] == "query":
            params.append((p["name"], _query_text(value)))
            if rng.random() < 0.05:
                params.append((p["name"], _query_text(value)))  # given twice
        elif p["in"] == "header" and isinstance(value, str) and value.isprintable() and value.isascii() \
                and value == value.strip():  # what an HTTP client can send at all
            headers[p["name"]] = value
    if "parameters" in op and rng.random() < 0.1:
        params.append((rng.choice(["unknown", "", "limit[]"]), "1"))
    data = None
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        roll = rng.random()
        headers["Content-Type"] = rng.choice(CONTENT_TYPES) if roll >= 0.8 else "application/json"
        if roll < 0.45:
            data = json.dumps(fz.valid(schema)).encode()
        elif roll < 0.8:
            data = json.dumps(fz.invalid(schema)).encode()
        else:
            data = _junk_body(rng, fz)
    return url, params, headers, data


def _error_shape_problem(r):
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str) or not isinstance(err.get("message"), str):
        return f"no error.code/message: {body!r:.300}"
    fields = err.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, dict) and isinstance(f.get("field"), str)
                                               and isinstance(f.get("message"), str) for f in fields):
        return f"error.fields is not [{{field, message}}]: {fields!r:.300}"
    return None


@pytest.fixture
def fuzz_api(start_api):
    return start_api(tools_dirs=f"{builtin_tools_dir()},{PLUGINS}", tool_timeout=0.2)


def _known_ids(api):
    """Path values that exist: a queued call, a live-looking one, an ended one, and every tool name."""
    place = lambda: api.http.post(api.url + "/calls", json={"to": "+15550100", "message": "Hi"}).json()["id"]  # noqa
    queued, ended = place(), place()
    api.http.delete(f"{api.url}/calls/{ended}")
    tools = [t["name"] for t in api.http.get(api.url + "/tools").json()["tools"]]
    return {"call_id": [queued, ended], "name": tools}


@pytest.mark.parametrize("seed", range(3))
def test_every_operation_answers_without_a_5xx_and_errors_in_one_shape(fuzz_api, seed):
    api = fuzz_api
    doc = api.http.get(api.url + "/openapi.json").json()
    known = _known_ids(api)
    seen = Counter()
    problems = []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            # one stream per operation: an operation added later does not change what the others get
            rng = random.Random(f"{seed}:{method}:{path}")
            fz = SchemaFuzz(doc, rng)
            documented = {int(s) for s in op["responses"]}
            for _ in range(PER_OPERATION):
                url, params, headers, data = _request(rng, fz, path, method, op, known)
                auth = {} if rng.random() < 0.05 else dict(api.http.headers)
                r = requests.request(method.upper(), api.url + url, params=params, data=data,
                                     headers={**auth, **headers}, timeout=10)
                seen[(method, path, r.status_code // 100)] += 1
                where = f"{method.upper()} {url} {params} {(data or b'')[:200]!r} -> {r.status_code}"
                if r.status_code >= 500:
                    problems.append(f"5xx: {where}: {r.text[:300]}")
                elif r.status_code >= 400 and (p := _error_shape_problem(r)):
                    problems.append(f"error shape: {where}: {p}")
                elif r.status_code < 300 and r.status_code not in documented:
                    problems.append(f"undocumented {r.status_code}: {where}")
                if r.status_code == 202 and isinstance(r.json(), dict) and "id" in r.json():
                    known["call_id"].append(r.json()["id"])  # later requests can use the calls placed
    assert not problems, "\n".join(problems[:20])
    total = sum(seen.values())
    assert 200 <= total * 3 <= 2400, total  # a few hundred requests over the three seeds
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    rejected = {(m, p) for (m, p, c) in seen if c == 4}
    # the generator is caught by validation on every operation that takes a body, and gets past it
    assert {op for op in ops if "requestBody" in doc["paths"][op[1]][op[0]]} <= rejected
    for method, path in (("post", "/calls"), ("post", "/tools/{name}/execute")):
        assert _valid_reaches_2xx(api, doc, seed, method, path, known), (method, path)


def _valid_reaches_2xx(api, doc, seed, method, path, known, tries=40):
    """Valid bodies (and known path ids) get a 2xx within a few tries: the schemas say what the API takes."""
    op = doc["paths"][path][method]
    fz = SchemaFuzz(doc, random.Random(f"valid:{seed}:{path}"))
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    for _ in range(tries):
        url = path
        for p in op.get("parameters", []):
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", quote(fz.rng.choice(known[p["name"]]), safe=""))
        r = api.http.request(method.upper(), api.url + url, json=fz.valid(schema))
        if r.status_code < 300:
            return True
    return False
