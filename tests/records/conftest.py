import pytest
import redis

from voiceagent.records.client import CallClient

from ..calls.conftest import redis_prefix  # noqa: F401  (fixture: a key prefix of this test, cleaned after it)


@pytest.fixture
def prefix(redis_prefix):  # noqa: F811
    return redis_prefix


@pytest.fixture
def client(prefix):
    return CallClient(redis.Redis(), prefix)
