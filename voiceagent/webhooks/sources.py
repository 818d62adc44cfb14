"""The webhook sources allowed to trigger calls, read from WEBHOOKS_FILE, and their auth check.

Why a file and not a JSON environment variable: a source holds a multi-line message template,
a list of numbers, a choice question; YAML keeps those readable and commented, like
PROFILES_FILE.  Secrets need not sit in it: ``secret_env`` names the environment variable
holding one.  Every source must authenticate (``bearer`` token or ``hmac`` signature of the raw
body); a webhook places phone calls, so there is no anonymous source.  Both are compared with
``hmac.compare_digest``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from typing import Any, Dict, List, Literal, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from ..records.models import CallRequest, ChoiceQuestion, ToolRun
from .template import Template, TemplateError

Kind = Literal["grafana", "alertmanager", "call"]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class SourceError(ValueError):
    """WEBHOOKS_FILE is unreadable or a source in it is invalid (the message names it)."""


class AuthFailed(Exception):
    """The delivery's token or signature is missing or wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceAuth(_Strict):
    """``bearer``: ``Authorization: Bearer <secret>`` (Grafana's and Alertmanager's authorization
    settings); ``hmac``: ``header`` holds the hex HMAC-SHA256 of the raw body (``sha256=`` prefix allowed)."""

    type: Literal["bearer", "hmac"]
    secret: SecretStr = Field(default=SecretStr(""), description="The shared secret (or use secret_env).")
    secret_env: Optional[str] = Field(default=None, description="Environment variable holding the secret.")
    header: str = Field(default="X-Signature-256", description="The hmac signature's header.")

    @field_validator("header")
    @classmethod
    def _header(cls, v: str) -> str:
        if not _HEADER.match(v):
            raise ValueError("must be a header name")
        return v

    @model_validator(mode="after")
    def _resolve(self) -> "SourceAuth":
        if self.secret_env:
            value = os.environ.get(self.secret_env, "")
            if not value:
                raise ValueError(f"secret_env {self.secret_env} is not set in the environment")
            self.secret = SecretStr(value)
        if len(self.secret.get_secret_value()) < 16:
            raise ValueError("the secret must be at least 16 characters")
        return self

    def check(self, headers: Mapping[str, str], raw: bytes) -> None:
        key = self.secret.get_secret_value().encode()
        headers = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
        if self.type == "bearer":
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key):
                raise AuthFailed("a valid 'Authorization: Bearer <secret>' header is required")
            return
        given_sig = headers.get(self.header.lower(), "").strip().lower().removeprefix("sha256=")
        expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given_sig.encode(), expected.encode()):
            raise AuthFailed(f"the {self.header} header must be the HMAC-SHA256 (hex) of the body")


class Source(_Strict):
    """One sender: how it authenticates, whom its calls go to and what they say."""

    name: str = ""
    kind: Kind = Field(description="grafana, alertmanager, or call (generic JSON: n8n, Home Assistant, scripts).")
    auth: SourceAuth
    to: List[str] = Field(default_factory=list, max_length=10, description="Numbers to call (each gets a call), "
                          "or templates of them ('{{ order.phone }}'); empty: a call source's payload says ('to').")
    message: Optional[str] = Field(default=None, max_length=4000, description="Template of the opening message.")
    instructions: Optional[str] = Field(default=None, max_length=4000, description="Template of the call's purpose.")
    profile: Optional[str] = None
    caller_id_number: Optional[str] = None
    caller_id_name: Optional[str] = None
    choice: Optional[ChoiceQuestion] = None
    tool: Optional[ToolRun] = None
    priority: Literal["high", "bulk"] = "high"
    call_resolved: bool = Field(default=False, description="Alerts: call for resolved notifications too.")
    ring_timeout: Optional[int] = None
    max_duration: Optional[float] = None

    @field_validator("message", "instructions")
    @classmethod
    def _template(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            try:
                Template(v)
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _as_request(self) -> "Source":
        """The fixed part must already make a valid call request (numbers, profile, choice ...)."""
        if self.kind != "call" and not self.to:
            raise ValueError(f"to: a {self.kind} source needs the number(s) to call")
        fixed = self.request_fields()
        for number in self.to:
            if "{{" in number:  # a template (the number is in the payload): checked when rendered
                try:
                    Template(number)
                except TemplateError as exc:
                    raise ValueError(f"to: {exc}") from None
        for number in [n for n in self.to if "{{" not in n] or ["0"]:
            try:
                CallRequest.model_validate({**fixed, "to": number})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
        return self

    def request_fields(self) -> Dict[str, Any]:
        """The call request's fields this source fixes (not to, message, instructions)."""
        out: Dict[str, Any] = {}
        for name in ("profile", "caller_id_number", "caller_id_name", "ring_timeout", "max_duration"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.choice is not None:
            out["choice"] = self.choice.model_dump()
        if self.tool is not None:
            out["tool"] = self.tool.model_dump()
        return out


def parse_sources(data: Any) -> Dict[str, Source]:
    """``{"sources": {name: {...}}}`` (or the mapping itself) as Source objects."""
    if isinstance(data, dict) and "sources" in data:
        data = data["sources"]
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SourceError("expected a mapping of source names to sources")
    out: Dict[str, Source] = {}
    for name, spec in data.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise SourceError(f"source name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(spec, dict):
            raise SourceError(f"source {name}: expected a mapping")
        try:
            out[name] = Source.model_validate({**spec, "name": name})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(source)'}: "
                                 f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors())
            raise SourceError(f"source {name}: {problems}") from None
    return out


def load_sources(path: str) -> Dict[str, Source]:
    """The sources of WEBHOOKS_FILE (YAML or JSON); none when ``path`` is empty."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    return parse_sources(data)
