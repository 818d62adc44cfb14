"""Home Assistant's REST API, as much of it as the phone needs, with every failure a sentence for the caller.

- ``GET /api/states`` and ``/api/states/<entity_id>``: ``{entity_id, state, attributes{friendly_name, ...}}``;
- ``POST /api/services/<domain>/<service>``: the changed states, or with ``?return_response``
  ``{"changed_states": [...], "service_response": {...}}`` (``weather.get_forecasts``);
- ``POST /api/template``: the area of each entity (states carry no area): ``areas()``/``area_entities()``;
- ``POST /api/conversation/process``: Assist (``text``, ``language``, ``agent_id``, ``conversation_id``).

All with ``Authorization: Bearer <long-lived token>``.  The entity list is cached for ``HA_CACHE_SECONDS`` per
URL so a call's follow-ups do not fetch it again.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .settings import HomeAssistantSettings

log = logging.getLogger(__name__)

NOT_SET_UP = "Sorry, Home Assistant is not set up on this line, so I can't control the home."
UNREACHABLE = "Sorry, I can't reach Home Assistant right now. Please try again later."
SLOW = "Sorry, Home Assistant didn't answer in time. Please try again in a moment."
REFUSED = "Sorry, Home Assistant refused my access, so I can't control the home right now."
FAILED = "Sorry, Home Assistant couldn't do that."

# one JSON list [[area id, area name, [entity ids]], ...] (area_entities covers entities placed via their device)
AREA_TEMPLATE = ("{% set ns = namespace(out=[]) %}{% for a in areas() %}"
                 "{% set ns.out = ns.out + [[a, area_name(a), area_entities(a)]] %}{% endfor %}{{ ns.out | tojson }}")


class Unavailable(Exception):
    """Home Assistant cannot be used right now: ``spoken`` is what the caller hears, ``why`` what is logged."""

    def __init__(self, spoken: str, why: str) -> None:
        super().__init__(why)
        self.spoken = spoken
        self.why = why


class State(BaseModel):
    """One entity as ``/api/states`` has it (plus the area the template gave)."""

    model_config = ConfigDict(extra="ignore")
    entity_id: str = Field(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$")
    state: str = ""
    attributes: Dict[str, Any] = Field(default_factory=dict)
    area_id: str = ""
    area_name: str = ""

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        friendly = self.attributes.get("friendly_name")
        if isinstance(friendly, str) and friendly.strip():
            return " ".join(friendly.split())
        return self.entity_id.split(".", 1)[1].replace("_", " ")


_cache: Dict[str, Tuple[float, List[State]]] = {}
_cache_lock = threading.Lock()


class HaClient:
    def __init__(self, settings: HomeAssistantSettings, http: Any) -> None:
        self.s = settings
        self.http = http

    def _request(self, method: str, path: str, *, body: Any = None, params: Optional[dict] = None) -> Any:
        if not self.s.ready():
            raise Unavailable(NOT_SET_UP, "not configured: set HA_URL and HA_TOKEN")
        headers = {"Authorization": f"Bearer {self.s.ha_token.get_secret_value()}", "Accept": "application/json"}
        try:
            r = self.http.request(method, self.s.ha_url + path, json=body, params=params, headers=headers,
                                  timeout=self.s.ha_timeout)
        except requests.Timeout:
            raise Unavailable(SLOW, f"{path}: no answer within {self.s.ha_timeout:g} s") from None
        except requests.RequestException as exc:
            raise Unavailable(UNREACHABLE, f"{path}: cannot reach Home Assistant: {type(exc).__name__}") from None
        if r.status_code in (401, 403):
            raise Unavailable(REFUSED, f"{path}: HTTP {r.status_code}: the token is not accepted")
        if r.status_code == 400:
            raise Unavailable(FAILED, f"{path}: HTTP 400: {r.text[:200]}")
        if r.status_code != 200 and r.status_code != 201:
            raise Unavailable(UNREACHABLE, f"{path}: HTTP {r.status_code}")
        if path == "/api/template":
            return r.text
        try:
            return r.json()
        except ValueError:
            raise Unavailable(UNREACHABLE, f"{path}: the answer is not JSON") from None

    # --- states ------------------------------------------------------------------------------------
    def states(self) -> List[State]:
        """Every entity with its area; cached for HA_CACHE_SECONDS."""
        key = self.s.ha_url
        now = time.monotonic()
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and now - hit[0] < self.s.ha_cache_seconds:
            return hit[1]
        raw = self._request("GET", "/api/states")
        if not isinstance(raw, list):
            raise Unavailable(UNREACHABLE, "/api/states: not a list")
        states = []
        for item in raw:
            try:
                states.append(State.model_validate(item))
            except ValidationError:
                continue  # one odd entity does not hide the others
        self._add_areas(states)
        with _cache_lock:
            _cache[key] = (now, states)
        return states

    def _add_areas(self, states: List[State]) -> None:
        try:
            text = self._request("POST", "/api/template", body={"template": AREA_TEMPLATE})
            areas = json.loads(text)
        except (Unavailable, ValueError) as exc:
            log.info("home assistant: no areas (%s); matching by name only", getattr(exc, "why", exc))
            return
        where: Dict[str, Tuple[str, str]] = {}
        for row in areas if isinstance(areas, list) else []:
            if isinstance(row, list) and len(row) == 3 and isinstance(row[2], list):
                for entity_id in row[2]:
                    where[str(entity_id)] = (str(row[0]), str(row[1] or row[0]))
        for st in states:
            st.area_id, st.area_name = where.get(st.entity_id, ("", ""))

    def state(self, entity_id: str) -> State:
        raw = self._request("GET", f"/api/states/{entity_id}")
        try:
            fresh = State.model_validate(raw)
        except ValidationError:
            raise Unavailable(UNREACHABLE, f"/api/states/{entity_id}: not a state") from None
        known = next((s for s in self.states() if s.entity_id == entity_id), None)
        if known is not None:
            fresh.area_id, fresh.area_name = known.area_id, known.area_name
        return fresh

    def call_service(self, domain: str, service: str, data: Dict[str, Any], *,
                     return_response: bool = False) -> Any:
        params = {"return_response": "true"} if return_response else None
        answer = self._request("POST", f"/api/services/{domain}/{service}", body=data, params=params)
        forget(self.s.ha_url)  # states changed: the next read fetches them
        return answer

    # --- Assist ------------------------------------------------------------------------------------
    def converse(self, text: str, language: str, conversation_id: Optional[str]) -> Any:
        body: Dict[str, Any] = {"text": text, "language": language}
        if self.s.ha_agent_id:
            body["agent_id"] = self.s.ha_agent_id
        if conversation_id:
            body["conversation_id"] = conversation_id
        return self._request("POST", "/api/conversation/process", body=body)


def forget(url: str) -> None:
    with _cache_lock:
        _cache.pop(url, None)
