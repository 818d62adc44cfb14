"""The call pages under ``/ui``: a calls list with filters and one page per call (transcript, cut-offs,
tool calls, a latency waterfall, the recording), rendered on the server from the records.

A browser cannot send the API's bearer header, so the pages have a login form: the API_TOKEN typed
once sets a signed session cookie (HttpOnly, SameSite=Strict, path /ui) that names a digest of the
token, so a new token logs every browser out.  The JSON API never reads that cookie.  Transcripts
are caller input: the templates escape everything (Jinja autoescape) and the pages allow no
script at all (Content-Security-Policy), so an utterance can only ever be text.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from datetime import timedelta
from typing import Any, Dict, Optional, Tuple, Union

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, session, url_for
from pydantic import ValidationError
from werkzeug.wrappers.response import Response as BaseResponse

from ..records.models import Outcome
from .calls import client, page
from .errors import field_errors
from .models import CallQuery
from .openapi import html_page
from .page_views import turn_views, when
from .recordings import recording_file, send_recording

bp = Blueprint("pages", __name__, url_prefix="/ui", template_folder="templates")

OPEN = ("pages.login", "pages.stylesheet")   # reachable without logging in
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
STATES = ("queued", "requested", "claimed", "dialing", "ringing", "answered", "offered", "confirmed", "answering",
          "active", "ending", "ended")
PageAnswer = Union[str, Response, Tuple[str, int]]


def configure(app: Flask, settings: Any, token: bytes) -> None:
    """The session cookie's key and attributes, and the digest a logged-in session holds."""
    secret = getattr(settings, "api_session_secret", None)
    given = secret.get_secret_value().encode() if secret is not None else b""
    if given:
        key = given
    elif token:
        key = hmac.new(token, b"voiceagent call pages", hashlib.sha256).digest()
    else:
        key = os.urandom(32)  # no token, no login: nothing to keep across restarts
    app.secret_key = key
    app.config.update(SESSION_COOKIE_NAME="voiceagent_ui", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/ui",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=float(getattr(settings, "api_session_hours", 12.0))))
    app.extensions["voiceagent.pages_login"] = (
        hmac.new(key, b"login:" + token, hashlib.sha256).hexdigest() if token else "")
    app.jinja_env.filters["when"] = when


def _login_digest() -> str:
    value: str = current_app.extensions.get("voiceagent.pages_login", "")
    return value


def _logged_in() -> bool:
    want = _login_digest()
    got = session.get("login")
    return not want or (isinstance(got, str) and hmac.compare_digest(got.encode(), want.encode()))


def _safe_next(target: Optional[str]) -> str:
    """Where to go after logging in: a page of ours only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target \
            and not any(c.isspace() for c in target):
        return target
    return url_for("pages.calls_list")


@bp.before_request
def _require_login() -> Optional[Tuple[str, int]]:
    if request.endpoint in OPEN or _logged_in():
        return None
    return render_template("login.html", next=request.full_path.rstrip("?"), error=""), 401


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.route("/login", methods=["GET", "POST"])
@html_page
def login() -> Union[BaseResponse, Tuple[str, int], str]:
    if request.method == "GET":
        return render_template("login.html", next=_safe_next(request.args.get("next")), error="")
    token = request.form.get("token", "")
    want = _login_digest()
    got = hmac.new(current_app.secret_key, b"login:" + token.encode(), hashlib.sha256).hexdigest()  # type: ignore[arg-type]
    if want and not hmac.compare_digest(got.encode(), want.encode()):
        return render_template("login.html", next=_safe_next(request.form.get("next")),
                               error="That is not the API token."), 401
    session.clear()
    session.permanent = True
    session["login"] = want
    return redirect(_safe_next(request.form.get("next")), code=303)


@bp.post("/logout")
@html_page
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("pages.login"), code=303)


@bp.get("/style.css")
@html_page
def stylesheet() -> Response:
    return Response(render_template("style.css"), mimetype="text/css", headers={"Cache-Control": "max-age=3600"})


@bp.get("/")
@bp.get("/calls")
@html_page
def calls_list() -> PageAnswer:
    wanted: Dict[str, str] = {k: v.strip() for k, v in request.args.items() if v.strip()}
    try:
        q = CallQuery.model_validate(wanted)
    except ValidationError as exc:
        return render_template("calls.html", calls=[], next_cursor=None, filters=wanted, states=STATES,
                               outcomes=[o.value for o in Outcome], errors=field_errors(exc)), 422
    recs, cursor = page(q)
    newer = {k: v for k, v in wanted.items() if k != "cursor"}
    return render_template("calls.html", calls=recs, next_cursor=cursor, filters=wanted, base_filters=newer,
                           states=STATES, outcomes=[o.value for o in Outcome], errors=[])


@bp.get("/calls/<call_id>")
@html_page
def call_page(call_id: str) -> PageAnswer:
    rec = client().get(call_id)
    if rec is None:
        return render_template("missing.html", call_id=call_id), 404
    has_recording = recording_file(current_app.extensions["voiceagent.settings"], rec) is not None
    return render_template("call.html", call=rec, turns=turn_views(rec), has_recording=has_recording)


@bp.get("/calls/<call_id>/recording")
@html_page
def call_recording(call_id: str) -> Union[Response, Tuple[str, int]]:
    rec = client().get(call_id)
    if rec is None:
        return render_template("missing.html", call_id=call_id), 404
    return send_recording(rec)
