"""The ``voiceagent`` command: one subcommand per capability."""
from __future__ import annotations

# Every subcommand runs on gevent; patch before anything imports socket, ssl or threading.
from gevent import monkey

monkey.patch_all()

import sys

import click


#: Subcommands living in their own modules, imported only when used (``voiceagent voice`` does
#: not pay for the emulator's imports; a bad setting is reported in well under a second).
_SUBCOMMANDS = {
    "voice": "voiceagent.workers_cli",
    "emulator": "voiceagent.emulator.cli",
    "demo": "voiceagent.demo",
    "bench": "voiceagent.bench_cli",
    "call": "voiceagent.calls_cli",
    "events": "voiceagent.calls_cli",
    "api": "voiceagent.api_cli",
    "jobs": "voiceagent.jobs.worker_cli",
    "tools": "voiceagent.tools_cli",
    "speech-server": "voiceagent.speech_server.cli",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list:
        return sorted(set(super().list_commands(ctx)) | set(_SUBCOMMANDS))

    def get_command(self, ctx: click.Context, name: str):
        if name not in self.commands and name in _SUBCOMMANDS:
            _load(_SUBCOMMANDS[name])
        return super().get_command(ctx, name)


def _load(mod: str) -> None:
    import importlib

    try:
        m = importlib.import_module(mod)
    except ImportError as exc:  # a module not written yet must not break the CLI
        if exc.name != mod:
            raise
        return
    m.register(main)


@click.group(cls=_LazyGroup)
def main() -> None:
    """voiceagent: a self-hosted AI assistant that answers and places phone calls."""


@main.command("config")
def config_cmd() -> None:
    """Print the effective configuration by section (secrets masked)."""
    from .config import ConfigError, load_settings

    try:
        s = load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    fields = type(s).model_fields
    for section, values in s.masked_by_section():
        click.echo(f"# === {section.title} ===")
        if not values:
            click.echo("    # (no settings yet)")
        for name, value in values.items():
            click.echo(f"{name}={value}")
            click.echo(f"    # {fields[name.lower()].description or ''}")
        click.echo("")
    from .tools_cli import print_plugin_sections

    print_plugin_sections(s)  # each loaded plugin's own settings (ToolSettings), masked the same way


if __name__ == "__main__":  # pragma: no cover
    main()
