"""The ``voiceagent`` command: one subcommand per capability."""
from __future__ import annotations

# Every subcommand runs on gevent; patch before anything imports socket, ssl or threading.
from gevent import monkey

monkey.patch_all()

import sys

import click


@click.group()
def main() -> None:
    """voiceagent: a self-hosted AI assistant that answers and places phone calls."""


@main.command("config")
def config_cmd() -> None:
    """Print the effective configuration (secrets masked)."""
    from .config import ConfigError, Settings, load_settings

    try:
        s = load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    fields = Settings.model_fields
    for name, value in s.masked().items():
        desc = fields[name.lower()].description or ""
        click.echo(f"{name}={value}")
        click.echo(f"    # {desc}")


def _register_optional() -> None:
    """Subcommands living in their own modules register themselves here."""
    import importlib

    for mod in ("voiceagent.workers_cli", "voiceagent.emulator.cli", "voiceagent.demo", "voiceagent.bench_cli"):
        try:
            m = importlib.import_module(mod)
        except ImportError as exc:  # a module not written yet must not break the CLI
            if exc.name != mod:
                raise
            continue
        m.register(main)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    main()
