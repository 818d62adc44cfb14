"""The REST API: Flask blueprints over the call client (``voiceagent api`` serves it)."""
from .app import create_app

__all__ = ["create_app"]
