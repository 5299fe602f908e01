"""Logging: every logger of ours under one root (``govshare.*``), and one configuration for all of them.

``logger(__name__)`` gives ``govshare.<module>`` (``govshare.resolvers.data``, ``govshare.server``), so
configuring the ``govshare`` logger covers every module. ``configure`` installs the one handler: plain text, or
with ``log_format = "json"`` one JSON object a line (python-json-logger) that carries the request id and
trace id of the request being handled, set by ``in_request`` when the request's context is made
(resolvers/context.py), so a line can be matched to the access records and the ``X-Request-Id`` header.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

ROOT = "govshare"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"

# (request id, trace id) of the request this task is handling; None outside one.
_request: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("govshare_request", default=None)


def logger(name: str) -> logging.Logger:
    """The logger of module ``name`` (pass ``__name__``), under the ``govshare`` root."""
    return logging.getLogger(name if name == ROOT or name.startswith(ROOT + ".") else f"{ROOT}.{name}")


def in_request(request_id: str, trace_id: str) -> None:
    """Lines logged from now on in this task (a request's) carry its request id and trace id."""
    _request.set((request_id, trace_id))


class RequestIds(logging.Filter):
    """Adds ``request_id`` and ``trace_id`` (None outside a request) to every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _request.get()
        record.request_id, record.trace_id = ids if ids is not None else (None, None)
        return True


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    return logging.Formatter(TEXT_FORMAT)


def handler(log_format: str, stream=None) -> logging.Handler:
    """A handler writing ``log_format`` lines (text or json), with the request ids on each record."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(formatter(log_format))
    out.addFilter(RequestIds())
    return out


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """The process's one logging configuration: a root handler for our loggers, the server's and the libraries'."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "govshare", False)]:
        root.removeHandler(old)
    out = handler(log_format)
    out.govshare = True  # type: ignore[attr-defined]  # replaced, not doubled, when configured again
    root.addHandler(out)
    root.setLevel(level)
    logging.getLogger("casbin").setLevel(logging.WARNING)  # it logs every rule it loads


class QueryStringsHidden(logging.Filter):
    """uvicorn's access lines without the query string of ``paths``: a GET /graphql carries the whole query in its
    URL, ID numbers included, and no log line may hold them (``GET /graphql?… HTTP/1.1`` instead); nor of the paths
    below them (``/graphql/``, which Starlette redirects to /graphql, query string and all)."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        super().__init__()
        self.paths = paths

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client address, method, path with its query string, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            path = args[2].split("?", 1)[0]
            # below them too: `/graphql/?query=…` is redirected to /graphql with its query string, after its line
            if any(path == hidden or path.startswith(hidden + "/") for hidden in self.paths):
                record.args = (args[0], args[1], f"{path}?…", *args[3:])
        return True


UVICORN_ACCESS = "uvicorn.access"


def hide_query_strings(paths: tuple[str, ...]) -> QueryStringsHidden:
    """From now on uvicorn's access lines leave out the query strings of ``paths`` (until ``show_query_strings``)."""
    hidden = QueryStringsHidden(paths)
    logging.getLogger(UVICORN_ACCESS).addFilter(hidden)
    return hidden


def show_query_strings(hidden: QueryStringsHidden) -> None:
    logging.getLogger(UVICORN_ACCESS).removeFilter(hidden)
