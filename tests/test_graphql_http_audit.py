"""The GraphQL-over-HTTP audit of the `graphql-http` npm package (its server audits: media types, GET, status codes,
parameters) against a real govshare server, with a department's key and purpose on every request: 0 errors and
0 warnings (and every audit passing: the optional ones included)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO, REQUIRE_SERVICES, _world
from tests.served import serving

AUDIT = REPO / "interop" / "graphql-http"


def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    reason = "node and npm are needed for the graphql-http audit (interop/graphql-http)"
    if REQUIRE_SERVICES:
        pytest.fail(reason)
    pytest.skip(reason)


def _installed(npm: str) -> None:
    """`npm ci` (from the lock, preferring npm's cache) unless node_modules was installed from this very lock."""
    lock = (AUDIT / "package-lock.json").read_bytes()
    stamp = AUDIT / "node_modules" / ".govshare-lock-sha256"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    subprocess.run(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
        cwd=AUDIT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    stamp.write_text(digest)


@pytest.fixture(scope="module")
async def audit_world(tmp_path_factory):
    return await _world(tmp_path_factory.mktemp("var-audit"))


def test_the_graphql_http_audit_passes_with_no_error_and_no_warning(audit_world):
    node, npm = _require_node()
    _installed(npm)
    # With the operator required, as in production (Art 22): the audit's requests name one.
    with serving(dataclasses.replace(audit_world.settings, operator_required=True)) as url:
        run = subprocess.run(
            [node, "audit.mjs", f"{url}/graphql"],
            cwd=AUDIT,
            env={
                **os.environ,
                "GOVSHARE_AUDIT_KEY": audit_world.keys["market"],
                "GOVSHARE_AUDIT_PURPOSE": "market.licence-review",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    failing = [f"{r['status']} {r['id']} {r['name']}: {r['reason']}" for r in report["results"] if r["status"] != "ok"]
    print("graphql-http audit:", report["counts"], *failing, sep="\n  ")
    assert report["counts"]["error"] == 0 and report["counts"]["warn"] == 0, failing
    assert report["counts"]["notice"] == 0, failing  # the optional audits pass too
    assert report["counts"]["ok"] == len(report["results"]) >= 60
