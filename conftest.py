# gevent must patch the standard library before anything imports socket, ssl, threading
# or an HTTP client; pytest loads this file before the test modules and the package.
from gevent import monkey

monkey.patch_all()
