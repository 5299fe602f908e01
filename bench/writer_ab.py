"""One request's access-record write alone: this tree's ``AuditWriter`` against another tree's, alternating on one
SQLite platform database (sequential writes of one record, as a single client makes them).

    .venv/bin/python bench/writer_ab.py /work/wt-records-base [writes]

Prints the median, p90 and p99 of each. The other tree's ``audit/records.py`` is loaded under another module name;
both use this tree's chain code (``audit/chain.py``, whose format both share).
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.records import AccessRecord, AuditWriter  # noqa: E402
from govshare.platformdb import make_engine  # noqa: E402
from migrations import ensure_current  # noqa: E402


def record(n: int) -> AccessRecord:
    return AccessRecord(
        at=datetime.now(UTC),
        request_id=f"r{n}",
        trace_id="0" * 32,
        department="land",
        application="a",
        key_id="k",
        operator=None,
        purpose="p",
        resource="market.enterprise",
        operation="list",
        items_returned=["name"] * 10,
        row_count=1000,
    )


async def main() -> None:
    other = Path(sys.argv[1]).resolve()
    writes = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    spec = importlib.util.spec_from_file_location("other_records", other / "audit" / "records.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_records"] = module
    spec.loader.exec_module(module)
    engine = make_engine(f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'platform.db'}")
    await ensure_current(engine)
    writers = {"other": module.AuditWriter(engine), "this": AuditWriter(engine)}
    times: dict[str, list[float]] = {name: [] for name in writers}
    for n in range(writes):
        for name, writer in writers.items():
            started = time.perf_counter()
            await writer.write([record(n)])
            times[name].append(time.perf_counter() - started)
    for name, measured in times.items():
        measured.sort()
        print(
            f"{name}: p50 {statistics.median(measured) * 1000:.3f} ms, p90 {measured[int(len(measured) * 0.9)] * 1000:.3f}"
            f", p99 {measured[int(len(measured) * 0.99)] * 1000:.3f}"
        )
    for writer in writers.values():
        await writer.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
