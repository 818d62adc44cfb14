"""What the ESL client raises and returns: its errors and the ``Reply`` of one command."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from greenswitch import esl as gs


class EslError(Exception):
    """Base class of ESL client errors."""


class EslNotConnected(EslError, gs.NotConnectedError):
    """No usable connection to FreeSWITCH right now (also a greenswitch ``NotConnectedError``,
    which is what its ``connect`` raises)."""


class EslDisconnected(EslNotConnected):
    """The connection dropped while this command was waiting for its reply."""


class EslTimeout(EslError):
    """FreeSWITCH did not answer in time."""


class EslAuthError(EslError):
    """FreeSWITCH rejected the Event Socket password (or the ACL rejected us)."""


class CommandError(EslError):
    """FreeSWITCH answered ``-ERR ...`` (or ``-USAGE: ...``); ``reply`` holds its text."""

    def __init__(self, command: str, reply: str) -> None:
        self.command = command
        self.reply = reply.strip()
        super().__init__(f"{command.split(' ', 1)[0]!s}: {self.reply}")


@dataclass
class Reply:
    """A ``command/reply`` or ``api/response``.

    ``headers`` is a dict because greenswitch's ``authenticate`` reads
    ``reply.headers['Reply-Text']``; ``body`` is the raw api output.
    """

    headers: Dict[str, str]
    body: bytes = b""

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    @property
    def text(self) -> str:
        """Reply-Text for command replies, the decoded body for api responses."""
        if self.headers.get("Content-Type") == "api/response":
            return self.body.decode("utf-8", errors="replace")
        return self.reply_text

    data = text  # greenswitch's name


def bare(exc: object, node: str) -> str:
    """The error's text without its leading ``ESL <node>: `` (for lines that carry that prefix)."""
    text, prefix = str(exc), f"ESL {node}: "
    while text.startswith(prefix):
        text = text[len(prefix):]
    return text
