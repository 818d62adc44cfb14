"""/openapi.json is generated from the routes and models: every route present, every reference defined."""
import re

import jsonschema


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_the_document_lists_every_route_and_defines_every_schema_it_references(api):
    from voiceagent.api import create_app

    doc = api.http.get(api.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    app = create_app(api.settings, api.client)
    routes = {(re.sub(r"<([^>]+)>", r"{\1}", rule.rule), m.lower()) for rule in app.url_map.iter_rules()
              for m in rule.methods - {"HEAD", "OPTIONS"} if not rule.endpoint.startswith("pages.")}  # HTML, not API
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    assert ("/calls", "post") in documented and ("/calls/{call_id}/transfer", "post") in documented
    assert ("/calls/{call_id}/recording", "get") in documented and not any(p.startswith("/ui") for p, _ in documented)
    schemas = doc["components"]["schemas"]
    for ref in set(_refs(doc)):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    post = doc["paths"]["/calls"]["post"]
    body = schemas[post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"to", "choice", "variables", "ring_timeout", "max_duration"} <= set(body["properties"])
    assert body["additionalProperties"] is False
    assert {"202", "401", "413", "415", "422"} <= set(post["responses"])
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert doc["paths"]["/health"]["get"]["security"] == []
    listing = {p["name"] for p in doc["paths"]["/calls"]["get"]["parameters"]}
    assert {"state", "direction", "outcome", "number", "since", "until", "limit", "cursor"} <= listing


def test_the_docs_page_is_self_contained_html_listing_every_operation(api):
    r = api.http.get(api.url + "/docs")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    doc = api.http.get(api.url + "/openapi.json").json()
    for ops in doc["paths"].values():
        for op in ops.values():
            assert f"id='{op['operationId']}'" in r.text
    assert "<script" not in r.text and "http://" not in r.text and "https://" not in r.text
