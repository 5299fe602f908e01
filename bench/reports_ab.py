"""The usage report's counting alone: this tree's ``oversight.usage.figures`` against another tree's, alternating on
one SQLite platform database of ``bench.synthetic_records`` (as ``make bench``'s reports figure builds it).

    .venv/bin/python bench/reports_ab.py /tmp/feedback-old [records] [rounds]

Each round counts every dimension (``usage.DIMENSIONS``, the figures of a report's eight tables) over the last 30
days, for every resource and for the busy one, first with one tree, then the other (then the other first, next
round); prints each tree's median seconds a round and their ratio. The other tree's ``oversight/usage.py`` is loaded
under another module name; everything else is this tree's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench  # noqa: E402
import migrations  # noqa: E402
from audit.tables import access_records  # noqa: E402
from catalog.loader import load_catalog  # noqa: E402
from govshare.platformdb import make_engine  # noqa: E402
from oversight import usage  # noqa: E402


def other_usage(tree: Path):
    spec = importlib.util.spec_from_file_location("other_usage", tree / "oversight" / "usage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_usage"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def main(tree: Path, records: int, rounds: int) -> None:
    other = other_usage(tree)
    catalog = load_catalog(REPO / "catalog" / "demo")
    folder = Path(tempfile.mkdtemp(prefix="govshare-reports-ab-"))
    engine = make_engine(f"sqlite+aiosqlite:///{folder / 'platform.db'}")
    await migrations.ensure_current(engine)
    made = bench.synthetic_records(catalog, records, 1)
    async with engine.begin() as conn:
        for chunk in range(0, len(made), 5000):
            await conn.execute(access_records.insert(), made[chunk : chunk + 5000])
    when = usage.Period(bench.REPORT_LAST - timedelta(days=29), bench.REPORT_LAST)

    async def count(module) -> dict:
        found = {}
        async with engine.connect() as conn:
            for resources in (None, [bench.REPORT_BUSY]):
                for by in usage.DIMENSIONS:
                    found[str(resources), by] = await module.figures(conn, resources, when, by)
        return found

    this_found, other_found = await count(usage), await count(other)
    assert {k: {key: tuple(v.__dict__.values()) for key, v in f.items()} for k, f in this_found.items()} == {
        k: {key: tuple(v.__dict__.values()) for key, v in f.items()} for k, f in other_found.items()
    }, "the two trees count differently"
    times: dict[str, list[float]] = {"this": [], "other": []}
    for n in range(rounds):
        for name in ("this", "other") if n % 2 == 0 else ("other", "this"):
            started = time.perf_counter()
            await count(usage if name == "this" else other)
            times[name].append(time.perf_counter() - started)
    await engine.dispose()
    this, that = statistics.median(times["this"]), statistics.median(times["other"])
    print(f"{records:,} records, {rounds} rounds of {2 * len(usage.DIMENSIONS)} counts each")
    print(f"this tree   {this * 1000:.0f} ms a round")
    print(f"other tree  {that * 1000:.0f} ms a round ({tree})")
    print(f"this / other  {this / that:.3f}")


if __name__ == "__main__":
    asyncio.run(
        main(
            Path(sys.argv[1]),
            int(sys.argv[2]) if len(sys.argv) > 2 else 100_000,
            int(sys.argv[3]) if len(sys.argv) > 3 else 11,
        )
    )
