"""What a department's view of the schema costs in production (issue 11 part 4), on a catalog of many resources.

    .venv/bin/python bench/views.py              # 5,000 resources, 50 generated departments (a minute or two)
    BENCH_TINY=1 .venv/bin/python bench/views.py # 200 resources, 5 departments (seconds)

Generates a catalog of copies of the demo resources (links kept within each copy), 50 departments with three
purposes each and grants on a share of the resources, and measures: the schema build with and without the
views' index, and following a change to one resource; a request's view (cold: the first request of a department after a policy change, deciding
with a new engine; warm: the next one) and its validation; what one whole-department view would cost instead
(every resource decided); and, on the demo world over in-process HTTP, a lookup and a list in production
(views) against development (full schema). Prints a table; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from graphql import parse, specified_rules, validate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.checkpoints import generate_key  # noqa: E402
from bench import bench_settings, medians, ms, running  # noqa: E402  (bench/bench.py, beside this script)
from catalog.loader import load_catalog  # noqa: E402
from catalog.model import Catalog, Department, Purpose  # noqa: E402
from demo.build import build_demo  # noqa: E402
from govshare.config import load_settings  # noqa: E402
from policies.engine import PolicyEngine  # noqa: E402
from policies.model import Grant, GrantKind, PolicySet  # noqa: E402
from schema.builder import build_schema  # noqa: E402
from schema.views import SchemaViews  # noqa: E402

TINY = os.environ.get("BENCH_TINY") == "1"
RESOURCES = 200 if TINY else 5000
DEPARTMENTS = 5 if TINY else 50
RUNS = 5 if TINY else 101
SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)


def big_catalog(resources: int, departments: int) -> Catalog:
    """``resources`` copies of the demo resources (suffix nnnnn), and ``departments`` more departments."""
    demo = load_catalog(REPO / "catalog" / "demo")
    originals = sorted(demo.published(), key=lambda r: r.code)
    copies = {}
    for n in range(resources):
        block, index = divmod(n, len(originals))
        original = originals[index]
        suffix = f"{block:04d}"
        links = tuple(dataclasses.replace(link, target=f"{link.target}-{suffix}") for link in original.links)
        code = f"{original.code}-{suffix}"
        copies[code] = dataclasses.replace(original, code=code, api_name=f"{original.api_name}{suffix}", links=links)
    for code, resource in copies.items():  # a link to a copy not made (the last, partial block) is dropped
        copies[code] = dataclasses.replace(
            resource, links=tuple(link for link in resource.links if link.target in copies)
        )
    extra = {f"bench-{d:02d}": Department(f"bench-{d:02d}", f"部门{d:02d}", "") for d in range(departments)}
    purposes = {
        f"{code}.purpose-{p}": Purpose(f"{code}.purpose-{p}", f"事项{p}", code) for code in extra for p in range(3)
    }
    return Catalog({**demo.departments, **extra}, {**demo.purposes, **purposes}, copies, version=1)


def grants(catalog: Catalog, departments: int, block: str) -> PolicySet:
    """Each generated department: a grant on every item of one resource in ten (by turns), one purpose, and
    on the person and enterprise copies of ``block``, which the measured document reads."""
    made = []
    for n, resource in enumerate(sorted(catalog.published(), key=lambda r: r.code)):
        chosen = [f"bench-{n % departments:02d}"] if n % 10 == 0 else []
        if resource.code in (f"police.person-{block}", f"market.enterprise-{block}"):
            chosen = [f"bench-{d:02d}" for d in range(departments)]
        for department in chosen:
            made.append(
                Grant(
                    f"G-VIEW-{n:06d}-{department}",
                    GrantKind.GRANT,
                    department,
                    resource.code,
                    tuple(i.name for i in resource.items),
                    (f"{department}.purpose-0",),
                    SINCE,
                    UNTIL,
                )
            )
    return PolicySet(grants=tuple(made), version=1)


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def catalog_figures(rows: list[tuple[str, str]]) -> None:
    catalog = big_catalog(RESOURCES, DEPARTMENTS)
    var = Path(tempfile.mkdtemp(prefix="govshare-views-"))
    try:
        production = load_settings(env={}, var_dir=var, production=True)
        built = {}
        rows.append(("catalog", f"{RESOURCES} resources, {len(catalog.departments)} departments"))
        rows.append(
            (
                "build_schema (production), once for all departments",
                f"{timed(lambda: built.setdefault('schema', build_schema(catalog, production))):.2f} s",
            )
        )
        schema = built["schema"]
        rows.append(
            (
                "  of which the views' index (SchemaViews)",
                ms(statistics.median(timed(lambda: SchemaViews(schema._schema, catalog)) for _ in range(3))),
            )
        )
        # A published change to one resource: the schema in force followed (schema.builder previous=), its views too.
        victim = sorted(catalog.published(), key=lambda r: r.code)[RESOURCES // 3]
        changed = dataclasses.replace(
            catalog,
            resources={**catalog.resources, victim.code: dataclasses.replace(victim, name=victim.name + "（新）")},
        )
        rows.append(
            (
                "build_schema (production) following a change to one resource",
                ms(timed(lambda: build_schema(changed, production, previous=schema))),
            )
        )
        block = f"{(RESOURCES // 8) // 2:04d}"
        policies = grants(catalog, DEPARTMENTS, block)
        text = f"""{{ person{block}(idNumber: "371311197811261792") {{ name enterprises {{ name }} }}
            person{block}List(first: 5) {{ items {{ name countyCode }} }}
            enterprise{block}List(first: 5) {{ items {{ name }} }} }}"""
        document = parse(text)
        now = datetime.now(UTC)
        departments = [f"bench-{d:02d}" for d in range(DEPARTMENTS)]

        # The first request of each department after a policy change: a new engine, nothing decided yet.
        cold, warm = [], []
        engine = PolicyEngine(catalog, policies)
        for department in departments:
            view_for = functools.partial(schema.views.view_for, text, document, engine, department, now)
            cold.append(timed(view_for))
            warm.append(timed(view_for))
        rows.append(("a request's view, cold (new engine), median over departments", ms(statistics.median(cold))))
        rows.append(("a request's view, warm (same document, decisions memoised)", ms(statistics.median(warm))))
        view = schema.views.view_for(text, document, engine, departments[0], now)
        assert not validate(view, document, specified_rules), "the bench's document must be valid"
        # The largest view a document may ask for at the root (max_root_fields root fields, each another
        # resource), for a department granted none of them: every item decided under each of its purposes.
        wide = "{ " + " ".join(f"person{n:04d}List {{ items {{ gender }} }}" for n in range(10)) + " }"
        wide_document = parse(wide)
        engine_wide = PolicyEngine(catalog, policies)
        rows.append(
            (
                "a view of 10 resources at the root, cold (the most a document may reach there)",
                ms(timed(lambda: schema.views.view_for(wide, wide_document, engine_wide, "bench-01", now))),
            )
        )
        rows.append(
            ("  types in that view / in the full schema", f"{len(view.type_map)} / {len(schema._schema.type_map)}")
        )

        rows.append(
            (
                "validation on the view, uncached",
                ms(
                    statistics.median(
                        timed(lambda: validate(view, document, specified_rules, hide_suggestions=True))
                        for _ in range(RUNS)
                    )
                ),
            )
        )
        rows.append(
            (
                "validation on the full schema, uncached",
                ms(
                    statistics.median(
                        timed(lambda: validate(schema._schema, document, specified_rules)) for _ in range(RUNS)
                    )
                ),
            )
        )
        rules = tuple(specified_rules)
        schema.views.validate(view, text, document, rules)
        rows.append(
            (
                "validation on the view, cached",
                ms(
                    statistics.median(
                        timed(lambda: schema.views.validate(view, text, document, rules)) for _ in range(RUNS)
                    )
                ),
            )
        )

        # What a whole-department view would cost instead: every resource decided for one department, cold.
        engine = PolicyEngine(catalog, policies)
        department = departments[0]
        own = [p for p in catalog.purposes.values() if p.department == department]
        whole = timed(lambda: [schema.views.visible_items(engine, department, r, now) for r in catalog.published()])
        rows.append(
            (
                f"whole-department view instead: decisions alone, one department ({len(own)} purposes)",
                f"{whole:.2f} s ({whole / RESOURCES * 1000:.2f} ms a resource)",
            )
        )
    finally:
        shutil.rmtree(var, ignore_errors=True)


async def http_figures(rows: list[tuple[str, str]]) -> None:
    home = Path(tempfile.mkdtemp(prefix="govshare-views-http-"))
    try:
        settings = bench_settings(home / "var")
        world = await build_demo(settings, persons=1500, enterprises=400)
        person = world.showcase["person_luozhuang"]
        lookup = (
            "query($id: String!) { person(idNumber: $id) { idNumber name birthDate address enterprises { name } } }",
            {"id": person},
        )
        listing = ("{ personList(first: 50) { items { idNumber name countyCode } } }", {})
        caller = ("market", "market.licence-review")
        # production refuses the audit checkpoint file and its signing key under var_dir: beside it instead
        outside = home / "audit-outside-var"
        key = outside / "checkpoint-signing.key"
        generate_key(key)
        production = dataclasses.replace(
            settings,
            production=True,
            audit_signing_key_file=str(key),
            audit_checkpoint_file=str(outside / "audit-checkpoints.jsonl"),
        )
        async with running(settings, world.keys) as dev, running(production, world.keys) as prod:
            for name, (query, variables) in {"lookup": lookup, "list of 50": listing}.items():
                figures = await medians(
                    RUNS,
                    development=functools.partial(dev.post, caller, query, variables),
                    production=functools.partial(prod.post, caller, query, variables),
                )
                rows.append(
                    (
                        f"HTTP {name}: development / production",
                        f"{ms(figures['development'])} / {ms(figures['production'])} "
                        f"(x{figures['production'] / figures['development']:.3f})",
                    )
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    rows: list[tuple[str, str]] = []
    catalog_figures(rows)
    asyncio.run(http_figures(rows))
    width = max(len(k) for k, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
