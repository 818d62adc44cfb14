"""The runtime never imports test helpers, and the emulator's modules import on their own.

Each check runs in a fresh interpreter: in this one, pytest has long imported voiceagent.testing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RUNTIME_ENTRY_POINTS = ["voiceagent.cli", "voiceagent.calls.worker", "voiceagent.calls.voice_dialog",
                        "voiceagent.demo", "voiceagent.dialog.kit", "voiceagent.emulator.stack"]


def _fresh(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_runtime_entry_points_do_not_import_voiceagent_testing():
    # what workers/voice.py imports, then every runtime entry point, then a kit without an LLM (the
    # rule-based responder: it used to be voiceagent.testing's scripted HTTP server)
    code = f"""
import json, sys
from gevent import monkey
monkey.patch_all()
import voiceagent.cli
for name in {RUNTIME_ENTRY_POINTS!r}:
    __import__(name)
from voiceagent.config import load_settings
from voiceagent.dialog.kit import DialogKit
kit = DialogKit.from_settings(load_settings(llm_base_url="rule-based", profiles_file="", tools_dirs=""))
list(kit.conversation().respond("What time is it?"))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("voiceagent"))))
"""
    loaded = json.loads(_fresh(code).strip().splitlines()[-1])
    assert "voiceagent.dialog.kit" in loaded and "voiceagent.calls.worker" in loaded  # the check saw them
    assert [m for m in loaded if m == "voiceagent.testing" or m.startswith("voiceagent.testing.")] == []


EMULATOR_MODULES = sorted(p.stem for p in (REPO / "voiceagent" / "emulator").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", EMULATOR_MODULES)
def test_each_emulator_module_imports_first_in_a_fresh_interpreter(module):
    """A module that only imports when another one was imported first is half of an import cycle."""
    _fresh(f"import voiceagent.emulator.{module}")


def _runtime_imports(path: Path) -> set:
    """The package-relative modules a module imports when it is imported (top level, not TYPE_CHECKING)."""
    import ast

    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def test_the_emulator_s_modules_import_each_other_without_a_cycle():
    pkg = REPO / "voiceagent" / "emulator"
    graph = {p.stem: _runtime_imports(p) & set(EMULATOR_MODULES) for p in pkg.glob("*.py") if p.stem != "__init__"}
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
        state[m] = "open"
        for dep in sorted(graph.get(m, ())):
            visit(dep, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])
    assert "core" not in set().union(*(deps for m, deps in graph.items() if m != "stack")), \
        "the switch's parts see it through switch.Switch, never core"
