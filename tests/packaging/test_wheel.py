"""The built wheel carries every data file the runtime needs.

The wheel is built from this checkout, installed into a fresh virtualenv (its dependencies are borrowed
from the running environment through a .pth line, so nothing is downloaded), and a check script run
from outside the checkout must find the default greeting, the emulator's data, the built-in tool
plugins and the packaged models through the *installed* package.
"""
import json
import os
import shlex
import shutil
import sys
import sysconfig
import venv
from pathlib import Path

from tests.fork_helpers import run_isolated

REPO = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, sys
from pathlib import Path
import voiceagent
from voiceagent.calls.worker import default_greeting_path
from voiceagent.dialog.tools import builtin_tools_dir
from voiceagent.emulator.core import default_conf_dir
from voiceagent.emulator import events as emu_events
from voiceagent.speech.models import resolve_piper_voice, resolve_whisper
from voiceagent.speech.vad import make_vad

out = {
    "package": voiceagent.__file__,
    "greeting": default_greeting_path(),
    "conf": str(default_conf_dir()),
    "tools": sorted(p.name for p in builtin_tools_dir().glob("*.py")),
    "whisper": str(resolve_whisper("base", cache_dir=sys.argv[1])),
    "piper": [str(p) for p in resolve_piper_voice("en_US-joe-medium")],
}
out["greeting_ok"] = Path(out["greeting"]).is_file()
out["dialplan"] = sorted(p.name for p in Path(out["conf"]).rglob("*.xml"))
out["templates"] = len(emu_events.templates()["events"])
make_vad("silero")  # the Silero model inside faster-whisper's assets
print(json.dumps(out))
"""


def run(args, cwd=None, env=None, timeout=300):
    """A child process without gevent's pipes and child watcher (see ``run_isolated``): this test runs late
    in the suite, and its run must not depend on what earlier tests left in the event loop."""
    if cwd is not None:
        args = ["/bin/sh", "-c", f"cd {shlex.quote(str(cwd))} && exec " + " ".join(shlex.quote(str(a)) for a in args)]
    rc, out, err = run_isolated([str(a) for a in args], timeout=timeout, env=env)
    return rc, out, err


def test_wheel_installs_with_its_data_and_resolves_models(tmp_path):
    # from a copy of the checkout's files: a build/ left by an earlier build would hide a missing pattern
    src = tmp_path / "src"
    if (REPO / ".git").exists():
        rc, out, err = run([shutil.which("git"), "-C", REPO, "ls-files", "-co", "--exclude-standard"])
        assert rc == 0, err
        files = out.splitlines()
    else:  # an exported tree (scripts/sabotage.py's copies): everything but build products
        skip = {".venv", "build", "dist", "out", "__pycache__", ".pytest_cache"}
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(REPO).parts) and ".egg-info" not in str(p)]
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    dist = tmp_path / "dist"
    rc, _, err = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src])
    assert rc == 0, err[-3000:]
    wheel = next(dist.glob("voiceagent-*.whl"))
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    rc, _, err = run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", wheel])
    assert rc == 0, err[-3000:]
    rc, out, err = run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    assert rc == 0, err
    fresh_site = Path(out.strip())
    # dependencies from the running environment, after the wheel's own files (never this checkout)
    (fresh_site / "zz_borrowed_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    check = tmp_path / "check.py"
    check.write_text(CHECK)
    rc, stdout, err = run([py, check, tmp_path / "models"], cwd=run_dir, env=env)
    assert rc == 0, err[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(env_dir)), f"imported {out['package']}, not the installed wheel"
    assert out["greeting_ok"] and out["greeting"].startswith(str(env_dir)), out["greeting"]
    assert out["conf"].startswith(str(env_dir)) and "50_voiceagent.xml" in out["dialplan"], out
    assert out["tools"] == sorted(p.name for p in (REPO / "tools").glob("*.py")), out["tools"]
    assert out["templates"] > 10, out["templates"]
    assert Path(out["whisper"], "model.bin").is_file()
    assert all(Path(p).is_file() for p in out["piper"])
    # the voice command starts far enough to print its configuration from the installed package
    rc, stdout, err = run([env_dir / "bin" / "voiceagent", "config"], cwd=run_dir, env=env, timeout=120)
    assert rc == 0 and "ESL_NODES" in stdout, err[-2000:]
