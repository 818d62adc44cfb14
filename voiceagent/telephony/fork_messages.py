"""What a fork connection yields (metadata, audio, text) and the error for sending on a closed one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Metadata:
    data: dict


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # L16 little-endian, whole samples
    rate: int

    def __repr__(self) -> str:
        return f"Audio({len(self.pcm)} bytes @ {self.rate} Hz)"


@dataclass(frozen=True)
class Text:
    values: list          # the JSON values of the frame (send_text payloads may be coalesced)
    raw: str = field(default="", repr=False)


Message = Union[Metadata, Audio, Text]


class ForkClosed(ConnectionError):
    """Sending on a fork whose WebSocket is already closed."""
