"""A seeded property-style fuzz of POST /calls (hypothesis is not installed): whatever the body,
the answer is a JSON 202/400/413/415/422, never a 5xx."""
import json
import random

import pytest

FIELDS = ["to", "caller_id_number", "caller_id_name", "profile", "message", "instructions", "choice",
          "variables", "ring_timeout", "max_duration", "gateway", "deadline_seconds", "idempotency_key", "", "\u0000"]
STRINGS = ["", " ", "+15550100", "sip:ann@example.com", "1" * 40, "{x}", "a" * 3000, "\u202e\U0001f600", "${x}",
           "&park()", "NaN", "-1", "🙂" * 10, "\\", "%s%n", "\ud800"]


def _value(rng, depth=0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 5, 30, 301, 2 ** 63, 1e308, -1e-9, 4 * 3600 + 1])
    if kind in (3, 4, 5):
        return rng.choice(STRINGS)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        return {"question": _value(rng, depth + 1),
                "options": [{"value": _value(rng, depth + 1), "digit": _value(rng, depth + 1),
                             "words": _value(rng, depth + 1)} for _ in range(rng.randrange(11))]}
    return {rng.choice(STRINGS + FIELDS): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _body(rng):
    body = {"to": "+15550100"} if rng.random() < 0.5 else {}
    for _ in range(rng.randrange(6)):
        body[rng.choice(FIELDS)] = _value(rng)
    return body


@pytest.mark.parametrize("seed", range(3))
def test_random_bodies_never_get_a_5xx(api, seed):
    rng = random.Random(seed)
    statuses = set()
    for i in range(80):
        headers = {"Content-Type": rng.choice(["application/json"] * 6 + ["text/plain", "application/x+json", ""])}
        if rng.random() < 0.2:
            headers["Idempotency-Key"] = rng.choice(["k", "", "x" * 200, f"fuzz-{seed}-{i % 5}"])
        if rng.random() < 0.1:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            data = json.dumps(_body(rng) if rng.random() < 0.9 else _value(rng), allow_nan=True).encode()
        r = api.http.post(api.url + "/calls", data=data, headers=headers)
        assert r.status_code < 500, (seed, i, data[:300], r.text[:300])
        assert r.status_code in (202, 400, 413, 415, 422), (seed, i, r.status_code)
        assert "error" in r.json() or r.status_code == 202
        statuses.add(r.status_code)
    assert 422 in statuses  # the generator reaches validation, not only the JSON parser
