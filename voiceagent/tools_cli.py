"""``voiceagent tools``: the tool plugins from the command line (``tools reload``, ``tools list``),
and the plugins' own settings sections for ``voiceagent config``."""
from __future__ import annotations

import sys
from typing import Any, List, Tuple

import click


def plugin_sections(settings: Any) -> Tuple[List[Tuple[str, List[Tuple[str, str, str]]]], List[str]]:
    """Each loaded plugin's ToolSettings as a section: (title, [(VAR, masked value, description)]),
    and the plugin problems (a bad value of a plugin's setting is one, naming the variable)."""
    from .config.base import shown
    from .dialog.tools import ToolRegistry

    reg = ToolRegistry.from_settings(settings)
    sections, seen = [], set()
    for name in reg.names():
        t = reg.get(name)
        if t is None or t.config is None or type(t.config) in seen:
            continue
        seen.add(type(t.config))
        model = type(t.config)
        title = model.__dict__.get("title") or f"tool {name}: its own settings ({t.source or 'code'})"
        rows = [(f.upper(), shown(getattr(t.config, f)), info.description or "")
                for f, info in model.model_fields.items()]
        sections.append((title, rows))
    return sections, list(reg.errors)


def print_plugin_sections(settings: Any) -> None:
    sections, problems = plugin_sections(settings)
    for title, rows in sections:
        click.echo(f"# === {title} ===")
        for var, value, description in rows:
            click.echo(f"{var}={value}")
            click.echo(f"    # {description}")
        click.echo("")
    for problem in problems:
        click.echo(f"# tool plugin problem: {problem}")


def register(main: click.Group) -> None:
    @main.group("tools")
    def tools_group() -> None:
        """The tool plugins (TOOLS_DIRS): reload them everywhere without a restart, list them."""

    @tools_group.command("reload")
    def reload_cmd() -> None:
        """Have every voice worker and API process reload TOOLS_DIRS (live calls go on; their next turn
        sees the new tools).  Prints what this machine's files load to, and any problem."""
        import redis

        from .calls.inbox import make_redis
        from .config import ConfigError, RedisSettings, ToolsSettings, load_sections
        from .dialog.tool_reload import bump_generation, load_registry
        from .records.keys import Keys

        try:
            s: Any = load_sections(RedisSettings, ToolsSettings)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        reg = load_registry(s)  # what the processes will load (on this machine's files)
        try:
            generation = bump_generation(make_redis(s.redis_url, socket_timeout=s.redis_socket_timeout),
                                         Keys(s.redis_prefix))
        except redis.RedisError as exc:
            click.echo(f"cannot reach Redis at REDIS_URL ({exc}): nothing was reloaded", err=True)
            sys.exit(1)
        click.echo(f"tools generation {generation}: every process reloads {len(reg.names())} tool(s): "
                   + ", ".join(reg.names()))
        for problem in reg.errors:
            click.echo(f"problem: {problem}", err=True)
        sys.exit(1 if reg.errors else 0)

    @tools_group.command("list")
    def list_cmd() -> None:
        """The tools TOOLS_DIRS loads to here, whether TOOLS_DISABLED disables them, and plugin problems."""
        from .config import ConfigError, ToolsSettings, load_sections
        from .dialog.tool_reload import load_registry

        try:
            s = load_sections(ToolsSettings)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        reg = load_registry(s)
        for name in reg.names():
            t = reg.get(name)
            state = "disabled" if name in reg.disabled else "enabled"
            click.echo(f"{name}\t{state}\t{t.source if t is not None else ''}")
        for problem in reg.errors:
            click.echo(f"problem: {problem}", err=True)
        sys.exit(1 if reg.errors else 0)
