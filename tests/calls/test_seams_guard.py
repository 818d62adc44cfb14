"""FreeSWITCH's dialect stays in voiceagent/telephony/: no header names or event names as strings in
voiceagent/calls/ (they read typed events), and no getattr probing across the ports."""
import ast
import re
from pathlib import Path

CALLS = Path(__file__).resolve().parents[2] / "voiceagent" / "calls"

# Header names ("Hangup-Cause", "Caller-Caller-ID-Number", ...), event names ("CHANNEL_ANSWER",
# "PLAYBACK_STOP", "DTMF", "BACKGROUND_JOB", "CUSTOM") and mod_audio_fork subclasses.
HEADER = re.compile(r"^(Unique-ID|Event-(Name|Subclass|Date-Timestamp)|Hangup-Cause|Playback-(File-Path|Status)|"
                    r"DTMF-(Digit|Duration|Source)|Application(-\w+)*|Call-Direction|Caller-[\w-]+|Answer-State|"
                    r"Channel-[\w-]+|Job-(UUID|Command[\w-]*)|FreeSWITCH-[\w-]+|Media-Bug-[\w-]+|variable_\w+)$")
EVENT = re.compile(r"^(CHANNEL_[A-Z_]+|PLAYBACK_(START|STOP)|DTMF|BACKGROUND_JOB|CUSTOM|MEDIA_BUG_(START|STOP)|"
                   r"HEARTBEAT|mod_audio_fork::\w+)$")


def _docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def dialect_strings(path: Path):
    tree = ast.parse(path.read_text())
    docs = {id(c) for c in _docstrings(tree)}
    hits = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs and (HEADER.match(node.value) or EVENT.match(node.value))]
    for node in sorted(hits, key=lambda n: (n.lineno, n.col_offset)):
        yield f"{path.name}:{node.lineno}: {node.value!r}"


def test_no_freeswitch_header_or_event_names_in_calls():
    found = [hit for p in sorted(CALLS.glob("*.py")) for hit in dialect_strings(p)]
    assert not found, "FreeSWITCH dialect outside telephony/ (use telephony.events):\n" + "\n".join(found)


def test_the_guard_sees_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""Docs may say PLAYBACK_STOP."""\nx = ev.get("Hangup-Cause")\nif ev.name == "CHANNEL_ANSWER": pass\n'
                   'y = "mod_audio_fork::play_audio"\n')
    assert [h.split(": ", 1)[1] for h in dialect_strings(bad)] == [
        "'Hangup-Cause'", "'CHANNEL_ANSWER'", "'mod_audio_fork::play_audio'"]


# the session <-> worker and dialog <-> call joins are typed (calls/ports.py): nothing probes them
PORT_MODULES = ("session.py", "session_fork.py", "playout.py", "voice_dialog.py", "voice_services.py", "worker.py",
                "outbound.py", "greeting.py", "fork_intake.py", "observers.py")


def test_no_getattr_probing_across_the_ports():
    found = []
    for name in PORT_MODULES:
        tree = ast.parse((CALLS / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
                found.append(f"{name}:{node.lineno}")
    assert not found, found
