"""A FreeSWITCH emulator for trying the agent without a phone and for tests.

``FreeSwitchEmulator`` listens for Event Socket connections like FreeSWITCH 1.10.12 with
mod_event_socket/mod_commands/mod_dptools/mod_audio_fork, routes emulated inbound calls
through the repo's XML dialplan (``freeswitch/conf/dialplan``), plays broadcast files into a
recording of what the caller heard, and forks caller audio over WebSocket
(``fork_client.ForkClient``).  Header names and order come from real captures
(``data/event_templates.json``).
"""
from .channel import Channel
from .core import FreeSwitchEmulator

__all__ = ["FreeSwitchEmulator", "Channel"]
