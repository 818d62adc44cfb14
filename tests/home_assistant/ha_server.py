"""A local stand-in for Home Assistant's REST API, speaking its shapes: ``GET /api/`` (``{"message": "API
running."}``), ``GET /api/states`` and ``/api/states/<id>``, ``POST /api/services/<domain>/<service>`` (the
changed states; with ``?return_response`` ``{"changed_states", "service_response"}``, and 400 when a service's
response is asked for or missing the wrong way round, as Home Assistant answers), ``POST /api/template`` (the
area map), ``POST /api/conversation/process`` (Assist answers the test queues), bearer auth (401 otherwise).
It records every request (path, query, JSON body) and can hang (the client's timeout must end it)."""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs

from tests.http_standin import HttpStandIn

TOKEN = "ha-test-token-0123456789"

STATES: List[Dict[str, Any]] = [
    {"entity_id": "light.porch", "state": "off", "attributes": {"friendly_name": "Porch Light"}},
    {"entity_id": "light.porch_lantern", "state": "off", "attributes": {"friendly_name": "Porch Lantern"}},
    {"entity_id": "light.kitchen_ceiling", "state": "on", "attributes": {"friendly_name": "Ceiling Light",
                                                                          "brightness": 128}},
    {"entity_id": "light.bedroom_ceiling", "state": "off", "attributes": {"friendly_name": "Ceiling Light"}},
    {"entity_id": "switch.garden_pump", "state": "off", "attributes": {"friendly_name": "Garden Pump"}},
    {"entity_id": "lock.front_door", "state": "locked", "attributes": {"friendly_name": "Front Door"}},
    {"entity_id": "cover.garage_door", "state": "closed", "attributes": {"friendly_name": "Garage Door",
                                                                        "device_class": "garage"}},
    {"entity_id": "climate.thermostat", "state": "heat", "attributes": {
        "friendly_name": "Thermostat", "temperature": 66, "current_temperature": 64.5, "unit_of_measurement": "°F"}},
    {"entity_id": "sensor.basement_humidity", "state": "61.25", "attributes": {
        "friendly_name": "Basement Humidity", "unit_of_measurement": "%", "device_class": "humidity"}},
    {"entity_id": "binary_sensor.basement_leak", "state": "off", "attributes": {
        "friendly_name": "Basement Leak", "device_class": "moisture"}},
    {"entity_id": "weather.home", "state": "partlycloudy", "attributes": {"friendly_name": "Forecast Home",
                                                                          "temperature": 71}},
]
AREAS = [["kitchen", "Kitchen", ["light.kitchen_ceiling"]], ["bedroom", "Bedroom", ["light.bedroom_ceiling"]],
         ["garage", "Garage", ["cover.garage_door"]], ["porch", "Porch", ["light.porch", "light.porch_lantern"]]]
FORECAST = {"weather.home": {"forecast": [{"datetime": "2024-06-01T12:00:00+00:00", "condition": "sunny",
                                           "temperature": 75.4, "templow": 58, "precipitation_probability": 10}]}}
NEW_STATE = {"turn_on": "on", "turn_off": "off", "lock": "locked", "unlock": "unlocked", "open_cover": "opening",
             "close_cover": "closing"}
RESPONDING = {("weather", "get_forecasts")}


def assist(response_type: str, speech: str = "", code: Optional[str] = None, **data: Any) -> Dict[str, Any]:
    """An Assist ``response`` as /api/conversation/process has it."""
    body: Dict[str, Any] = {"targets": [], "success": [], "failed": [], **data}
    if code:
        body = {"code": code}
    return {"response_type": response_type, "language": "en", "data": body,
            "speech": {"plain": {"speech": speech, "extra_data": None}} if speech else {}}


class HomeAssistantStandIn(HttpStandIn):
    def __init__(self) -> None:
        super().__init__()
        self.states = {s["entity_id"]: copy.deepcopy(s) for s in STATES}
        self.areas = copy.deepcopy(AREAS)
        self.token = TOKEN
        self.assist_answers: List[Dict[str, Any]] = []   # responses in order (then a no_intent_match error)
        self.requests: List[Dict[str, Any]] = []
        self._conversations = 0

    @property
    def url(self) -> str:
        return self.origin

    def service_calls(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith("/api/services/")]

    def conversations(self) -> List[Dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/api/conversation/process"]

    def _app(self, environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size else b""
        body = json.loads(raw) if raw else None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.requests.append({"method": method, "path": path, "query": query, "body": body})
        if self.hang:
            self.hold()
            return self._send(start_response, 503, {"message": "gone"})
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.token}":
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"401: Unauthorized"]
        if path == "/api/":
            return self._send(start_response, 200, {"message": "API running."})
        if path == "/api/states" and method == "GET":
            return self._send(start_response, 200, list(self.states.values()))
        if path.startswith("/api/states/") and method == "GET":
            st = self.states.get(path.rsplit("/", 1)[1])
            return self._send(start_response, 200 if st else 404, st or {"message": "Entity not found."})
        if path == "/api/template" and method == "POST":
            text = json.dumps(self.areas) if "area_entities" in (body or {}).get("template", "") else ""
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [text.encode()]
        if path.startswith("/api/services/") and method == "POST":
            return self._service(start_response, path, body or {}, "return_response" in query)
        if path == "/api/conversation/process" and method == "POST":
            return self._converse(start_response, body or {})
        return self._send(start_response, 404, {"message": "not found"})

    def _service(self, start_response, path, body, want_response):
        domain, service = path[len("/api/services/"):].split("/", 1)
        responds = (domain, service) in RESPONDING
        if want_response != responds:  # Home Assistant: 400 either way round
            return self._send(start_response, 400, {"message": "Service call requires responses but caller did not "
                                                               "ask for responses" if responds else
                                                    "Service does not support responses"})
        if responds:
            return self._send(start_response, 200, {"changed_states": [], "service_response": FORECAST})
        changed = []
        st = self.states.get(body.get("entity_id", ""))
        if st is not None:
            if service in NEW_STATE:
                st["state"] = NEW_STATE[service]
            if service == "set_temperature":
                st["attributes"]["temperature"] = body.get("temperature")
            changed.append(st)
        return self._send(start_response, 200, changed)

    def _converse(self, start_response, body):
        conv = body.get("conversation_id")
        if not conv:
            self._conversations += 1
            conv = f"01J0CONV{self._conversations:04d}"
        response = self.assist_answers.pop(0) if self.assist_answers else assist(
            "error", "Sorry, I couldn't understand that", code="no_intent_match")
        return self._send(start_response, 200, {"response": response, "conversation_id": conv,
                                                "continue_conversation": False})

    @staticmethod
    def _send(start_response, status: int, payload: Any):
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]
