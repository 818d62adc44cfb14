"""A real API server (gevent's WSGIServer on a free port) over real Redis, under a test prefix."""
import types

import pytest
import redis
import requests

from tests.calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
from voiceagent.api.server import make_server
from voiceagent.config import (ApiSettings, DialSettings, JobsSettings, RecordsSettings, RedisSettings,
                               ScheduleSettings, ToolsSettings, WebhookSettings, load_sections)
from voiceagent.records.client import CallClient

TOKEN = "test-api-token-5f1c"


def api_settings(prefix, **overrides):
    overrides.setdefault("api_token", TOKEN)
    """The sections ``voiceagent api`` reads (api_cli.py), for a test's prefix."""
    return load_sections(ApiSettings, RedisSettings, RecordsSettings, DialSettings, JobsSettings, ScheduleSettings,
                         WebhookSettings, ToolsSettings, redis_prefix=prefix, api_port=0, **overrides)


@pytest.fixture
def start_api(redis_prefix):  # noqa: F811 - the fixture imported above
    servers = []

    def start(**overrides):
        s = api_settings(redis_prefix, **overrides)
        server = make_server(s)
        server.start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {s.api_token.get_secret_value()}"
        client = CallClient(redis.Redis(), redis_prefix)
        # calls waiting to be dialed: queued (the RQ queue, where POST /calls puts them) or requested
        waiting = lambda: sum(client.records.queued_counts().values()) + client.records.pending_count()
        return types.SimpleNamespace(url=url, http=session, settings=s, prefix=redis_prefix, client=client,
                                     waiting=waiting)

    yield start
    for server in servers:
        server.stop(timeout=2)


@pytest.fixture
def api(start_api):
    return start_api()
