"""Test data that ships with the repository (a clone must be self-contained)."""
from pathlib import Path
from typing import List

FREESWITCH_TRACES = Path(__file__).resolve().parent / "freeswitch"


def trace_files(pattern: str = "*.esl.bin") -> List[Path]:
    """The captures matching ``pattern``; raises (a collection error, not an empty test set) when none are there."""
    found = sorted(FREESWITCH_TRACES.glob(pattern))
    if not found:
        raise RuntimeError(f"no FreeSWITCH captures matching {pattern!r} in {FREESWITCH_TRACES}")
    return found
