"""Fixtures of the schedule tests: the API server, the emulator and voice workers, a Redis prefix."""
from tests.api.conftest import api, start_api  # noqa: F401 - fixtures
from tests.calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
