"""The worker processes of `govshare serve --workers N`: uvicorn's configuration of each, and what the supervisor
needs to start them.

uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``) starts every worker with multiprocessing's spawn: the
child first runs the parent's main module again, then unpickles its configuration, and only then starts the thread
that answers the supervisor's health check, which kills a worker that has not answered within
``timeout_worker_healthcheck``. The parent here is the ``govshare`` command, whose module imports the whole
application (4-5 s on a loaded 2-core machine): so while it supervises, this light module stands in as the main
module (``light_main``), and the configuration names the app factory by its import string, imported by uvicorn
in the worker once its health check answers. The settings the command resolved come pickled with the
configuration (``WorkerConfig``): no file or environment variable is read again in a worker. The supervisor
(``Supervisor``) tells the metrics of every worker that leaves (``govshare.metrics``: multiprocess mode).

Imports only ``govshare.config`` and ``govshare.metrics`` (and uvicorn).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from govshare import metrics
from govshare.config import Settings

APP_FACTORY = "server:worker_app"  # called with the settings, in the worker


class WorkerConfig(uvicorn.Config):
    """uvicorn's configuration of a worker: ``APP_FACTORY`` called with ``settings``, which travel with it."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(APP_FACTORY, factory=True, **options)
        self.settings = settings

    def load_app(self) -> Any:
        return functools.partial(super().load_app(), self.settings)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, which marks each worker that leaves it (died and replaced, rolled over on SIGHUP, removed
    on SIGTTOU) as dead for the metrics, as prometheus-client documents: its live gauges go, its counters stay."""

    def keep_subprocess_alive(self) -> None:
        with self._leaving():
            super().keep_subprocess_alive()

    def handle_signals(self) -> None:
        with self._leaving():
            super().handle_signals()

    @contextlib.contextmanager
    def _leaving(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        yield
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                metrics.process_dead(pid)


@contextlib.contextmanager
def light_main() -> Iterator[None]:
    """While the block runs, processes spawned start from this module instead of the command's main module."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = sys.modules[__name__]
    try:
        yield
    finally:
        sys.modules["__main__"] = main
