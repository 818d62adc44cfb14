"""``voiceagent speech-server``: OpenAI-compatible STT/TTS for voice workers elsewhere (Procfile.speech).

Reads only the speech sections (models, voices, the server's own settings), so a bad setting of
another concern cannot stop it; prints the URL to give the workers (STT_URL / TTS_URL)."""
from __future__ import annotations

import logging
import signal
import sys
from typing import Any, Optional

import click


def register(main: click.Group) -> None:
    @main.command("speech-server")
    @click.option("--host", default=None, help="Override SPEECH_SERVER_HOST.")
    @click.option("--port", type=int, default=None, help="Override SPEECH_SERVER_PORT (0 = pick one).")
    @click.option("--batch/--no-batch", default=None, help="Override SPEECH_SERVER_BATCH (on / off).")
    def speech_server(host: Optional[str], port: Optional[int], batch: Optional[bool]) -> None:
        """Serve /v1/audio/transcriptions, /v1/audio/speech, /v1/models, /health, /metrics."""
        import gevent

        from ..config import ConfigError, LoggingSettings, SpeechServerSettings, SpeechSettings, load_sections
        from ..speech.models import ModelNotAvailable
        from .server import make_speech_server

        overrides = {k: v for k, v in (("speech_server_host", host), ("speech_server_port", port),
                                       ("speech_server_batch", None if batch is None else "on" if batch else "off"))
                     if v is not None}
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            s: Any = load_sections(SpeechSettings, SpeechServerSettings, LoggingSettings, **overrides)
            server = make_speech_server(s)
        except (ConfigError, ModelNotAvailable) as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        server.start()
        host_shown = server.address[0]
        click.echo(f"voiceagent speech-server listening on http://{host_shown}:{server.server_port}/v1 "
                   f"(batching {'on' if server.engines.batcher.enabled else 'off'})", err=True)
        gevent.signal_handler(signal.SIGTERM, server.stop)
        gevent.signal_handler(signal.SIGINT, server.stop)
        server.serve_forever()
