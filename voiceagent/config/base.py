"""What every settings section shares: the environment mapping, the error type, URL helpers."""
from __future__ import annotations

import os
import socket
from ipaddress import ip_address
from typing import Any, ClassVar, Dict, List, Sequence, Tuple, Type
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

# LLM_BASE_URL value that chooses the built-in rule-based responder on purpose (no "not set" warning).
RULE_BASED = "rule-based"


class ConfigError(RuntimeError):
    """A setting is invalid; the message names the environment variable."""


class Section(BaseSettings):
    """One concern's settings: each field is the upper-case environment variable of its name.

    A process builds only the sections it reads (:func:`voiceagent.config.load_sections`), so a
    bad value of a section it never reads cannot stop it.  ``title`` heads the section in
    ``voiceagent config``.
    """

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", env_file=None)
    title: ClassVar[str] = ""

    @classmethod
    def own_fields(cls) -> List[str]:
        """The fields this section declares (not those of the sections composed with it)."""
        return [name for name in cls.__dict__.get("__annotations__", {}) if name in cls.model_fields]

    @classmethod
    def sections(cls) -> List[Type["Section"]]:
        """The sections this class is made of, in the order it names them (itself, for one section)."""
        return [c for c in cls.__mro__ if issubclass(c, Section) and c is not Section and "title" in c.__dict__]

    def masked(self) -> Dict[str, str]:
        """Effective values as strings, secrets replaced by '***' (or '' when unset), section by section."""
        out = {name: value for _, values in self.masked_by_section() for name, value in values.items()}
        for name in type(self).model_fields:  # fields of a composed class itself, if any
            out.setdefault(name.upper(), shown(getattr(self, name)))
        return out

    def masked_by_section(self) -> List[Tuple[Type["Section"], Dict[str, str]]]:
        """:meth:`masked`, grouped by section (what ``voiceagent config`` prints)."""
        return [(c, {n.upper(): shown(getattr(self, n)) for n in c.own_fields()}) for c in self.sections()]


def field_error(var: str, kind: str, msg: str, value: Any) -> ValidationError:
    """A validation error located at ``var`` (for checks across fields of a section)."""
    return ValidationError.from_exception_data(
        "Settings", [InitErrorDetails(type=PydanticCustomError(kind, msg), loc=(var.lower(),), input=value)])


def config_error(exc: ValidationError) -> ConfigError:
    """One line per problem, each starting with the variable it is about."""
    problems = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        # a check across settings (model validator) has no location: its message names them
        problems.append(f"{str(err['loc'][0]).upper()}: {msg}" if err["loc"] else msg)
    return ConfigError("invalid configuration: " + "; ".join(problems))


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ip_address(h).is_loopback
    except ValueError:
        return False  # a host name, '' or '0.0.0.0'-like wildcard: assume reachable from outside


#: Query parameters of a URL that hold credentials (redis-py reads ?password=).
_SECRET_PARAMS = ("password", "pass", "passwd", "secret", "token", "key", "api_key", "apikey")


def mask_url(value: str) -> str:
    """``value`` with a URL's credentials (``user:pass@``, ``?password=``) replaced by ``***``."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return value
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def check_url(v: str, schemes: Sequence[str], example: str) -> str:
    """Empty, or a URL with one of ``schemes`` and a host."""
    if not v:
        return v
    try:
        parts = urlsplit(v)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"bad port in {mask_url(v)!r}") from None
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in v):
        raise ValueError(f"expected a {'/'.join(schemes)} URL such as {example}, got {mask_url(v)!r}")
    return v


def shown(value: Any) -> str:
    """A value as ``voiceagent config`` prints it: secrets '***' (or '' when unset), URLs masked."""
    if isinstance(value, SecretStr):
        value = "***" if value.get_secret_value() else ""
    elif isinstance(value, dict):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    return mask_url(str(value))

