"""Procfile entry point of the voice worker (same as ``voiceagent voice``)."""
from gevent import monkey

monkey.patch_all()

from voiceagent.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["voice"])
