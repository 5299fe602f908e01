"""Logging: every logger of ours under the govshare root, and JSON lines naming the request they were logged in."""

from __future__ import annotations

import ast
import io
import json
import logging
from pathlib import Path

from govshare import logs

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "govshare",
    "catalog",
    "connectors",
    "policies",
    "schema",
    "resolvers",
    "audit",
    "demo",
    "applications",
    "admin",
)


def _sources() -> list[Path]:
    return [REPO / "server.py", REPO / "cli.py", *(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))]


def test_every_logger_of_ours_is_under_the_govshare_root():
    outside = []
    for path in _sources():
        if path == REPO / "govshare" / "logs.py":  # the one place that maps a module's name under the root
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logging"
            ):
                continue
            name = node.args[0] if node.args else None
            literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if not (literal and (name.value == "govshare" or name.value.startswith("govshare."))) and not (
                literal and name.value in ("casbin",)
            ):  # a library's, to quieten it
                outside.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not outside, f"use govshare.logs.logger(__name__): {outside}"


def test_module_loggers_are_named_after_their_module():
    assert logs.logger("resolvers.data").name == "govshare.resolvers.data"
    assert logs.logger("govshare.notify").name == "govshare.notify"
    assert logs.logger("govshare").name == "govshare"
    from connectors import sql
    from resolvers import data

    assert sql.log.name == "govshare.connectors.sql" and data.log.name == "govshare.resolvers.data"


def test_json_lines_carry_the_request_ids_inside_a_request_only():
    import contextvars

    stream = io.StringIO()
    handler = logs.handler("json", stream)
    log = logs.logger("tests.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("outside")

        def inside():
            logs.in_request("r-1", "a" * 32)
            log.warning("inside %s", "电子证照")

        contextvars.copy_context().run(inside)
        log.info("after")
    finally:
        log.removeHandler(handler)
    outside, within, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (
        outside["message"] == "outside" and outside["request_id"] is None and outside["logger"] == "govshare.tests.logs"
    )
    assert within == within | {
        "message": "inside 电子证照",
        "level": "WARNING",
        "request_id": "r-1",
        "trace_id": "a" * 32,
    }
    assert after["request_id"] is None


def test_text_lines_are_unchanged():
    stream = io.StringIO()
    handler = logs.handler("text", stream)
    log = logs.logger("tests.text")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("policy version %s in force", 3)
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().endswith(" INFO govshare.tests.text: policy version 3 in force\n")
