"""A call's recording (RECORD_CALLS) as an HTTP answer, for ``GET /calls/{id}/recording`` and the call page.

FreeSWITCH wrote the file into RECORDINGS_DIR; the record names it.  Only a plain file name
inside that directory is ever opened (the name comes from Redis, so it is checked like input).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from flask import Response, current_app, send_file

from ..records.models import CallRecord
from .errors import ApiError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.wav$")


def recording_file(settings: Any, rec: CallRecord) -> Optional[Path]:
    """The recording's path when the call has one and the file is there (None otherwise)."""
    name = rec.recording
    if not name or not _NAME.match(name) or name.startswith("."):
        return None
    base = Path(getattr(settings, "recordings_dir", "/tmp/voiceagent-recordings"))
    path = base / name
    return path if path.is_file() else None


def send_recording(rec: CallRecord) -> Response:
    """The WAV (range requests answered, so an <audio> element can seek), or 404 naming why not."""
    if not rec.recording:
        raise ApiError(404, f"call {rec.id} has no recording (RECORD_CALLS was off)")
    path = recording_file(current_app.extensions["voiceagent.settings"], rec)
    if path is None:
        raise ApiError(404, f"the recording of call {rec.id} is not in RECORDINGS_DIR")
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)
