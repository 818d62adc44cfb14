"""A local stand-in for the WeatherFlow Tempest REST API: serves Tempest-shaped observation JSON
(tests/data/tempest/), or an error status, junk, or no answer at all, and records what it was asked."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs

from tests.http_standin import HttpStandIn

DATA = Path(__file__).resolve().parents[1] / "data" / "tempest"


def sample(name: str = "observations_foggy.json") -> Dict[str, Any]:
    return json.loads((DATA / name).read_text())


class TempestStandIn(HttpStandIn):
    def __init__(self, body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.body: Any = body if body is not None else sample()
        self.status = 200
        self.raw: Optional[bytes] = None   # served as is instead of the JSON body (junk)
        self.requests: List[Dict[str, Any]] = []
    @property
    def base_url(self) -> str:
        return f"{self.origin}/swd/rest"

    def obs(self, **changes: Any) -> None:
        """Change fields of the served ``obs[0]``."""
        body = copy.deepcopy(self.body)
        body["obs"][0].update(changes)
        self.body = body

    def _app(self, environ, start_response):
        self.requests.append({"path": environ["PATH_INFO"], "query": parse_qs(environ.get("QUERY_STRING", ""))})
        if self.hang:
            self.hold()
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"gone"]
        if self.status != 200:
            start_response(f"{self.status} Error", [("Content-Type", "application/json")])
            return [json.dumps({"status": {"status_code": 3, "status_message": "INTERNAL ERROR"}}).encode()]
        payload = self.raw if self.raw is not None else json.dumps(self.body).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [payload]
