"""A real govshare server for tests that speak HTTP over the wire (keep-alive connections, node's fetch, gql):
uvicorn serving ``create_app(settings)`` on a free port of 127.0.0.1, in a thread of the test process with its own
event loop, stopped (and its thread joined) on leaving."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import uvicorn

from govshare.config import Settings
from server import create_app

START_TIMEOUT = 60


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a server answering with ``settings`` until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(START_TIMEOUT * 20):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
