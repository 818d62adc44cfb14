"""Clients and helpers for the built-in tool plugins that talk to other systems (tools/ stays one file each)."""
