"""A small seeded generator of valid and invalid values from the API's OpenAPI 3.1 (JSON Schema
2020-12) document: what schemathesis/hypothesis would do, in the part of JSON Schema pydantic emits
($ref, anyOf, enum/const, object/array/string/integer/number/boolean/null with their bounds).

It is deliberately plain: ``valid(schema)`` aims inside every constraint the schema states (field
validators the schema cannot state, like a dialable number, still reject some), ``invalid(schema)``
breaks exactly one thing (type, bound, enum, a required or unknown property, one nested value).
"""
import math
import random
import re
from typing import Any, Dict, List, Optional

# strings tried first for a valid value: ones the API's own validators accept somewhere
GOOD_STRINGS = ["+15550100", "+15550123", "sip:ann@example.com", "fs1", "carrier1", "default", "Oslo", "hello",
                "Hello, this is the clinic.", "yes", "no", "1", "1000", "NORMAL_CLEARING", "USER_BUSY", "k-1",
                "2025-03-01T08:00:00Z", "1700000000", "answered", "outbound", "ended"]
# strings that have broken parsers elsewhere: control characters, surrogates, markup, injection
NASTY_STRINGS = ["", " ", "\u0000", "\n", "a" * 5000, "\u202e\U0001f600", "${x}", "&park()", "{x}", "NaN", "-1",
                 "\\", "%s%n", "\ud800", "'; DROP TABLE calls; --", "<script>", "../../etc/passwd", "🙂" * 50,
                 "1e999", "null", "[]", "{}", "sip:", "+", "\t\r"]
NASTY_NUMBERS = [0, -1, 1, 2 ** 63, -(2 ** 63), 1e308, -1e-9, 0.5, 10 ** 30, 4 * 3600 + 1, 86401]


class SchemaFuzz:
    def __init__(self, doc: Dict[str, Any], rng: random.Random) -> None:
        self.schemas = doc.get("components", {}).get("schemas", {})
        self.rng = rng

    # ------------------------------------------------------------------ schema helpers
    def resolve(self, schema: Dict[str, Any]) -> Dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def _branch(self, schema: Dict[str, Any]) -> Dict[str, Any]:
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._branch(self.rng.choice(schema[key]))
        if "allOf" in schema and schema["allOf"]:
            return self._branch(schema["allOf"][0])
        return schema

    @staticmethod
    def _type(schema: Dict[str, Any]) -> Optional[str]:
        t = schema.get("type")
        if isinstance(t, list):
            return t[0] if t else None
        if t is None and "properties" in schema:
            return "object"
        return t

    # ------------------------------------------------------------------ valid
    def valid(self, schema: Dict[str, Any], depth: int = 0) -> Any:
        s = self._branch(schema)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return self.rng.choice(s["enum"])
        t = self._type(s)
        if t == "object":
            return self._valid_object(s, depth)
        if t == "array":
            lo = s.get("minItems", 0)
            hi = min(s.get("maxItems", lo + 3), lo + 3)
            return [self.valid(s.get("items", {}), depth + 1) for _ in range(self.rng.randint(lo, max(lo, hi)))]
        if t == "string":
            return self._valid_string(s)
        if t == "integer":
            return int(self._valid_number(s, integer=True))
        if t == "number":
            return self._valid_number(s, integer=False)
        if t == "boolean":
            return self.rng.random() < 0.5
        if t == "null":
            return None
        return self.any_value(depth)

    def _valid_object(self, s: Dict[str, Any], depth: int) -> Dict[str, Any]:
        props = s.get("properties", {})
        required = set(s.get("required", []))
        out: Dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or (depth < 3 and self.rng.random() < 0.2):
                out[name] = self.valid(sub, depth + 1)
        extra = s.get("additionalProperties")
        if isinstance(extra, dict) and depth < 3:
            for i in range(self.rng.randrange(3)):
                out[f"{self.rng.choice(['name', 'day', 'x'])}{i}"] = self.valid(extra, depth + 1)
        return out

    def _valid_string(self, s: Dict[str, Any]) -> str:
        lo, hi = s.get("minLength", 0), s.get("maxLength", 200)
        pattern = s.get("pattern")

        def fits(v: str) -> bool:
            return lo <= len(v) <= hi and (pattern is None or re.search(pattern, v) is not None)

        pool = [v for v in GOOD_STRINGS if fits(v)]
        if pool and self.rng.random() < 0.85:
            return self.rng.choice(pool)
        word = "".join(self.rng.choice("abcdefghij_0123") for _ in range(max(lo, min(hi, self.rng.randint(1, 12)))))
        return word if fits(word) else (pool[0] if pool else word)

    def _valid_number(self, s: Dict[str, Any], integer: bool) -> float:
        lo = s.get("minimum", s.get("exclusiveMinimum", -1000))
        hi = s.get("maximum", s.get("exclusiveMaximum", lo + 1000))
        if "exclusiveMinimum" in s:
            lo = lo + (1 if integer else 1e-3)
        if "exclusiveMaximum" in s:
            hi = hi - (1 if integer else 1e-3)
        if integer:
            return self.rng.randint(math.ceil(lo), max(math.ceil(lo), math.floor(hi)))
        return round(self.rng.uniform(lo, max(lo, hi)), 3)

    # ------------------------------------------------------------------ invalid
    def invalid(self, schema: Dict[str, Any], depth: int = 0) -> Any:
        """A value that breaks one stated constraint (at this level or one nested value)."""
        s = self._branch(schema)
        t = self._type(s)
        moves: List[str] = ["type"]
        if "enum" in s or "const" in s:
            moves.append("enum")
        if t == "object":
            moves += ["unknown"] + (["missing"] if s.get("required") else [])
            moves += ["nested"] if s.get("properties") else []
        elif t == "array":
            moves += ["items"] + (["too_many"] if "maxItems" in s else []) + (["too_few"] if s.get("minItems") else [])
        elif t == "string":
            moves += (["too_long"] if "maxLength" in s else []) + (["too_short"] if s.get("minLength") else [])
            moves += ["pattern"] if "pattern" in s else []
        elif t in ("integer", "number"):
            moves += ["above", "below", "fraction"] if t == "integer" else ["above", "below"]
        move = self.rng.choice(moves)
        if move == "type":
            wrong = {"object": ["x", 1, [1], True], "array": [{"a": 1}, "x", 3], "string": [1, [], {}, True],
                     "integer": ["1", [], {}, 1.5], "number": ["x", [], {}], "boolean": ["yes", 2, {}],
                     "null": [0, "x"]}
            return self.rng.choice(wrong.get(t or "", ["x", 1, [], {}]))
        if move == "enum":
            return self.rng.choice(["not-an-option", "", "ANSWERED", 7])
        if move == "unknown":
            out = self._valid_object(s, depth)
            out[self.rng.choice(["unknown_field", "", "\u0000", "__proto__"])] = self.any_value(depth + 1)
            return out
        if move == "missing":
            out = self._valid_object(s, depth)
            out.pop(self.rng.choice(s["required"]), None)
            return out
        if move == "nested":
            out = self._valid_object(s, depth)
            name = self.rng.choice(list(s["properties"]))
            out[name] = self.invalid(s["properties"][name], depth + 1) if depth < 4 else None
            return out
        if move == "items":
            return [self.invalid(s.get("items", {}), depth + 1)]
        if move == "too_many":
            return [self.valid(s.get("items", {}), depth + 1) for _ in range(s["maxItems"] + 1)]
        if move == "too_few":
            return []
        if move == "too_long":
            return "x" * (s["maxLength"] + 1)
        if move == "too_short":
            return "x" * (s["minLength"] - 1)
        if move == "pattern":
            return self.rng.choice(["not valid!", " ", "a b", "${x}", "\u0000"])
        if move == "above":
            return (s.get("maximum", s.get("exclusiveMaximum", 10 ** 9))) + (1 if t == "integer" else 0.5)
        if move == "below":
            return (s.get("minimum", s.get("exclusiveMinimum", -(10 ** 9)))) - (1 if t == "integer" else 0.5)
        return 1.5  # "fraction": an integer given with a fraction

    # ------------------------------------------------------------------ anything
    def any_value(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(8 if depth < 3 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.choice([True, False])
        if kind == 2:
            return self.rng.choice(NASTY_NUMBERS)
        if kind in (3, 4):
            return self.rng.choice(NASTY_STRINGS + GOOD_STRINGS)
        if kind == 5:
            return [self.any_value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.rng.choice(NASTY_STRINGS + GOOD_STRINGS): self.any_value(depth + 1)
                for _ in range(self.rng.randrange(4))}
