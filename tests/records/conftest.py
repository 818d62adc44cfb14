import uuid

import pytest
import redis

from voiceagent.records.client import CallClient


@pytest.fixture
def prefix():
    p = f"vatest-rec-{uuid.uuid4().hex[:8]}"
    yield p
    r = redis.Redis()
    keys = list(r.scan_iter(f"{p}:*"))
    if keys:
        r.delete(*keys)


@pytest.fixture
def client(prefix):
    return CallClient(redis.Redis(), prefix)
