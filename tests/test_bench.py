"""The benchmark suite runs, in its tiny mode, and reports every figure. No timing is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

KEYS = (
    "enforced_over_unenforced",
    "enforced_over_raw_sql",
    "policy_lines_100k_over_100",
    "naive_over_enforced",
    "http_lookup_over_handwritten",
    "statements_per_source_level",
    "cache_hit_over_miss",
    "lookup_p50_ms",
    "lookup_p99_ms",
    "catalog_10k_over_100",
    "catalog_10k_rss_mb",
    "catalog_requests_during_rebuild",
    "subject_index_100_over_none",
    "subject_index_1000_over_none",
    "usage_report_one_resource_ms",
    "usage_report_every_resource_ms",
    "usage_tables_together_over_apart",
)


def test_the_bench_reports_every_figure(tmp_path):
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env |= {"BENCH_TINY": "1", "BENCH_RESULTS": str(results)}
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py")],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    document = json.loads(results.read_text())
    assert document["tiny"] is True
    for key in KEYS:
        assert isinstance(document[key], (int, float)), key
        # a tiny catalog's build may end within one request: no request need fall inside it (a full run's must)
        assert document[key] >= 0 if key == "catalog_requests_during_rebuild" else document[key] > 0, key


def test_the_committed_results_have_every_figure():
    document = json.loads((REPO / "bench" / "results.json").read_text())
    assert document["tiny"] is False
    for key in KEYS:
        assert isinstance(document[key], (int, float)), key
