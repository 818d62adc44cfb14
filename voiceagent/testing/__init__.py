"""Test doubles that speak real protocols (used by tests, the benchmark and the demo)."""
