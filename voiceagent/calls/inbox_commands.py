"""The commands any process may send to a live call through Redis, and their validation.

Redis is a control channel: whoever can write to it can act on calls, so nothing from an inbox
reaches FreeSWITCH unchecked.  Every command is a strict pydantic model (unknown fields and
wrong types rejected, lengths bounded).  ``play`` is the dangerous one: ``uuid_broadcast`` reads
its argument as ``app::args`` (``system::...``, ``bridge::...``), ``file!CAUSE`` (hang up after
playing) and ``{var=value}file``, so a play file must be an absolute path in a plain character
set, and the worker also checks that it resolves (``..``, symlinks) into ``PLAYBACK_DIR`` or one
of ``MEDIA_DIRS`` (:func:`resolve_media_path`).
"""
from __future__ import annotations

import os
import re
from typing import Annotated, Iterable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

SAY_MAX_CHARS = 1000
PLAY_MAX_CHARS = 512

# a play file: absolute, plain characters only (no '::', '!', '{', '[', '$', '%', spaces, quotes)
_PLAY_RE = re.compile(r"^/[A-Za-z0-9/._+-]+$")
_FORBIDDEN_IN_PLAY = ("::", "!", "{", "[", "$", "\\")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SayCommand(_Cmd):
    type: Literal["say"]
    text: str = Field(min_length=1, max_length=SAY_MAX_CHARS)

    @field_validator("text")
    @classmethod
    def _printable(cls, v: str) -> str:
        if _CONTROL_RE.search(v) or not v.strip():
            raise ValueError("text must be printable and not blank")
        return v


class PlayCommand(_Cmd):
    type: Literal["play"]
    file: str = Field(min_length=2, max_length=PLAY_MAX_CHARS)

    @field_validator("file")
    @classmethod
    def _plain_absolute_path(cls, v: str) -> str:
        problem = media_path_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class HangupCommand(_Cmd):
    type: Literal["hangup"]
    cause: str = Field(default="NORMAL_CLEARING", pattern=r"^[A-Z_]{3,40}$")


class TransferCommand(_Cmd):
    type: Literal["transfer"]
    # an extension of the XML dialplan: no ':' (sip: URIs, app::args), no spaces, no '{'
    destination: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+*#_.-]+$")
    dialplan: Literal["XML"] = "XML"  # never 'inline' (it runs applications named in the destination)
    context: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


CallCommand = Annotated[Union[SayCommand, PlayCommand, HangupCommand, TransferCommand], Field(discriminator="type")]
_command_adapter: TypeAdapter = TypeAdapter(CallCommand)


class InboxMessage(BaseModel):
    """One entry of a worker's inbox list."""

    model_config = ConfigDict(extra="forbid", strict=True)
    call_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
    command: CallCommand
    sent: Optional[float] = None


def parse_command(data: object) -> CallCommand:
    """Validate a command; raises pydantic.ValidationError naming the bad field."""
    return _command_adapter.validate_python(data)


def describe_error(exc: ValidationError) -> str:
    """A ValidationError on one line (pydantic's own text spans several)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "message"
        parts.append(f"{loc}: {err.get('msg', '')}")
    return "; ".join(parts)


def media_path_problem(path: str) -> str:
    """Why ``path`` cannot be handed to uuid_broadcast ('' = its syntax is fine)."""
    for bad in _FORBIDDEN_IN_PLAY:
        if bad in path:
            return f"play file must not contain {bad!r}"
    if not path.startswith("/"):
        return "play file must be an absolute path"
    if not _PLAY_RE.match(path):
        return "play file may only contain letters, digits and / . _ + -"
    if ".." in path.split("/"):
        return "play file must not contain '..'"
    return ""


def resolve_media_path(path: str, roots: Iterable[os.PathLike]) -> str:
    """``path`` resolved (symlinks, ``..``), if it lies inside one of ``roots``; else ValueError.

    The check runs on the worker's file system, which is FreeSWITCH's in shared mode; a file
    that does not exist here is checked by its normalised path.
    """
    problem = media_path_problem(path)
    if problem:
        raise ValueError(problem)
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(os.fspath(root))
        if real == base:
            continue
        if os.path.commonpath([real, base]) == base:
            if media_path_problem(real):  # a symlink may point at a name we would refuse
                raise ValueError(f"play file resolves to a path that is not allowed: {real}")
            return real
    raise ValueError("play file is outside PLAYBACK_DIR and MEDIA_DIRS")
