"""``voiceagent voice``: run a voice worker (ESL + fork server + calls)."""
from __future__ import annotations

import sys

import click


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def register(main: click.Group) -> None:
    @main.command("voice")
    def voice_cmd() -> None:
        """Run a voice worker until SIGTERM (which drains live calls first)."""
        from .config import ConfigError, load_settings
        from .startup import preflight

        try:
            settings = load_settings()
            preflight(settings)  # files, ports, Redis: before loading models, one line per problem
        except ConfigError as exc:
            _fail(str(exc))
        from .calls.worker import VoiceWorker
        from .observability.logs import setup_from_settings
        from .observability.tracing import setup_tracing

        setup_from_settings(settings)
        setup_tracing(settings, "voice")
        factory = admission = None
        if settings.dialog == "conversation":
            from .calls.voice_dialog import VoiceServices

            services = VoiceServices(settings)
            services.warm()
            services.watch_tools()  # POST /tools/reload, `voiceagent tools reload`: no restart needed
            factory, admission = services.dialog, services.overloaded
        worker = VoiceWorker(settings, dialog_factory=factory)
        worker.admission_check = admission
        try:
            worker.serve_forever()
        except OSError as exc:  # start() lost a race for a port the preflight found free
            _fail(f"invalid configuration: voice worker could not start: {' '.join(str(exc).split())} "
                  "(check FORK_HOST/FORK_PORT and METRICS_HOST/METRICS_PORT)")
