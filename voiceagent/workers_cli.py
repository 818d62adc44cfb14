"""``voiceagent voice``: run a voice worker (ESL + fork server + calls)."""
from __future__ import annotations

import sys

import click


def register(main: click.Group) -> None:
    @main.command("voice")
    def voice_cmd() -> None:
        """Run a voice worker until SIGTERM (which drains live calls first)."""
        from .calls.worker import VoiceWorker
        from .config import ConfigError, load_settings
        from .observability.logs import setup_logging

        try:
            settings = load_settings()
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        setup_logging(settings.log_level, settings.log_format)
        factory = admission = None
        if settings.dialog == "conversation":
            from .calls.voice_dialog import VoiceServices

            services = VoiceServices(settings)
            services.warm()
            factory, admission = services.dialog, services.overloaded
        worker = VoiceWorker(settings, dialog_factory=factory)
        worker.admission_check = admission
        worker.serve_forever()
