"""One real speech server (a subprocess with the real models) for the package's tests, with a bearer token, a
small upload limit (so 'too large' needs no big file) and batching on (CPU's 'auto' is off)."""
import pytest

from tests.speech_server_proc import TOKEN, running

MAX_UPLOAD = 400_000


@pytest.fixture(scope="package")
def server(tmp_path_factory):
    yield from running(tmp_path_factory.mktemp("speech-server"), SPEECH_SERVER_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
                       SPEECH_SERVER_BATCH="on")


@pytest.fixture
def http(server):
    """A requests session with the server's token."""
    import requests

    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    yield s
    s.close()
