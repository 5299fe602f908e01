"""The decision case files (tests/cases/*.toml, format in tests/README.md): every case in-process against the policy
engine; those of files marked ``http = true`` also over HTTP on the three source engines, where the answer and the
access record must carry the same decision. And the runner itself: a malformed file fails loudly, a wrong
expectation fails."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from applications.tables import applications
from audit.tables import access_records
from catalog.loader import load_catalog
from catalog.model import Catalog
from govshare.platformdb import bump_policy_version, make_engine
from policies import documents
from policies.model import Allow
from policies.tables import grants
from tests.conftest import REPO, World, _api, copy_var, make_settings
from tests.decision_cases import (
    REASONS,
    CaseFailed,
    CaseFile,
    CaseFileError,
    case_files,
    check,
    decide,
    engine_for,
    load_case_file,
)

DEMO = load_catalog(REPO / "catalog" / "demo")
ALLOW = set(Allow)


def _params(paths: list[Path]):
    """One test per case; a file that cannot be read is one test that fails with the loader's message."""
    for path in paths:
        try:
            loaded = load_case_file(path)
        except CaseFileError:
            yield pytest.param(path, None, id=f"{path.stem}:MALFORMED")
            continue
        for case in loaded.cases:
            yield pytest.param(path, case.why, id=f"{path.stem}:{case.why}")


def _run_case(path: Path, why: str | None) -> None:
    loaded, engine = engine_for(path)  # a malformed file raises CaseFileError here, naming itself and the case
    (case,) = [c for c in loaded.cases if c.why == why]
    check(decide(engine, case), case)


@pytest.mark.parametrize("path, why", list(_params(case_files())))
def test_decision(path, why):
    _run_case(path, why)


def test_every_decision_code_has_a_case():
    decided = {e.reason for path in case_files() for case in load_case_file(path).cases for e in case.items.values()}
    assert decided == REASONS, sorted(REASONS - decided)


# ---------------------------------------------------------------------------------------------------------------
# The runner can fail


def _every_case(path: Path):
    loaded, engine = engine_for(path)
    return [(case, decide(engine, case)) for case in loaded.cases]


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_every_expectation_of_every_case_can_fail(path):
    """Each expected reason, mask, row set and grant list changed in turn: the runner refuses each."""
    for case, decision in _every_case(path):
        for item, expected in case.items.items():
            other = next(r for r in sorted(REASONS) if r != expected.reason)
            wrong = dataclasses.replace(case, items={**case.items, item: dataclasses.replace(expected, reason=other)})
            with pytest.raises(CaseFailed, match=f"{path.name}: {case.why}"):
                check(decision, wrong)
            masked = dataclasses.replace(expected, mask="full" if expected.mask != "full" else None)
            with pytest.raises(CaseFailed):
                check(decision, dataclasses.replace(case, items={**case.items, item: masked}))
        with pytest.raises(CaseFailed, match=r"\(grants_used\)"):
            check(decision, dataclasses.replace(case, grants_used=(*case.grants_used, "G-other")))
        other_rows = ((("countyCode", ("000000",)),),) if case.rows is None else None
        with pytest.raises(CaseFailed, match=r"\(rows\)"):
            check(decision, dataclasses.replace(case, rows=other_rows))


def test_a_changed_reason_in_a_copy_of_a_case_file_fails_naming_the_file_and_case(tmp_path):
    text = (REPO / "tests" / "cases" / "grant-periods.toml").read_text(encoding="utf-8")
    before = 'items = { name = { reason = "GRANT_EXPIRED", by = "G-spring" } }'
    assert text.count(before) == 1
    copy = tmp_path / "grant-periods-changed.toml"
    copy.write_text(text.replace(before, before.replace("GRANT_EXPIRED", "GRANT")), encoding="utf-8")
    with pytest.raises(CaseFailed) as failed:
        for why in [c.why for c in load_case_file(copy).cases]:
            _run_case(copy, why)
    message = str(failed.value)
    assert message.startswith("grant-periods-changed.toml: at the end exactly: expired")
    assert "expected {'reason': 'GRANT'" in message and "decided {'reason': 'GRANT_EXPIRED'" in message


MINIMAL = """description = "a minimal file"
at = 2026-12-01T09:00:00+08:00

[catalog.departments]
police = ["police.household-admin"]
land = ["land.property-registration"]

[[catalog.resources]]
code = "police.person"
provider = "police"
share_type = "conditional"
items = [{ name = "idNumber" }, { name = "name" }]

[[grant]]
id = "G-1"
consumer = "land"
resource = "police.person"
items = ["name"]
purposes = ["land.property-registration"]
valid_from = 2026-01-01T00:00:00+08:00
valid_until = 2031-01-01T00:00:00+08:00

[[case]]
why = "the one case"
department = "land"
purpose = "land.property-registration"
resource = "police.person"
items = { name = "GRANT" }
grants_used = ["G-1"]
"""


@pytest.mark.parametrize(
    "change, says",
    [
        (
            ('items = { name = "GRANT" }', 'items = { name = "GRANT" }\ncolour = "blue"'),
            "case[0] 'the one case': unknown key 'colour'",
        ),
        (('items = { name = "GRANT" }\n', ""), "case[0] 'the one case': missing key 'items'"),
        (('items = { name = "GRANT" }', "items = {}"), "case[0] 'the one case'.items: expected a table of item"),
        (
            ('items = { name = "GRANT" }', 'items = { name = { mask = "full" } }'),
            "case[0] 'the one case'.items.name: missing key 'reason'",
        ),
        (
            ('items = { name = "GRANT" }', 'items = { name = "ALLOWED" }'),
            "case[0] 'the one case'.items.name.reason: 'ALLOWED' is not a decision code",
        ),
        (('grants_used = ["G-1"]', 'grants_used = ["G-9"]'), "case 'the one case': names 'G-9'"),
        (
            ('purpose = "land.property-registration"\nresource', 'purpose = "land.other"\nresource'),
            "'land.other' is not registered for land",
        ),
        (
            ("at = 2026-12-01T09:00:00+08:00", "at = 2026-12-01T09:00:00"),
            "at: expected a TOML date-time with an offset",
        ),
        (('items = ["name"]', 'items = ["nickname"]'), "grant[0] (G-1).items: ITEM_NOT_FOUND"),
        (("valid_until = 2031", "until = 2031"), "grant[0] (G-1): unknown key 'until'"),
        (
            ('share_type = "conditional"', 'share_type = "sometimes"'),
            "catalog (police, police.person): share_type FIELD_INVALID",
        ),
        (("[[case]]", '[[deny]]\ndepartment = "land"\n\n[[case]]'), "POLICY_FIELD_REQUIRED"),
        (('description = "a minimal file"\n', ""), "file: missing key 'description'"),
        (('why = "the one case"', 'why = "the one case"\nwhy2 = 1'), "unknown key 'why2'"),
        (
            ('department = "land"\npurpose', 'department = ["land"]\npurpose'),
            "case[0] 'the one case': department: expected text",
        ),
    ],
)
def test_a_malformed_case_file_is_refused_naming_the_file_and_the_case(tmp_path, change, says):
    before, after = change
    assert before in MINIMAL
    path = tmp_path / "broken.toml"
    path.write_text(MINIMAL.replace(before, after, 1), encoding="utf-8")
    with pytest.raises(CaseFileError) as refused:
        load_case_file(path)
    assert "broken.toml" in str(refused.value) and says in str(refused.value), str(refused.value)
    # In the suite, such a file is one failing test, not a skipped one.
    (param,) = list(_params([path]))
    assert param.id == "broken:MALFORMED"
    with pytest.raises(CaseFileError, match=r"broken\.toml"):
        _run_case(*param.values)


def test_the_minimal_file_itself_runs(tmp_path):
    path = tmp_path / "minimal.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    (param,) = list(_params([path]))
    _run_case(*param.values)


def test_a_file_marked_http_refuses_what_http_cannot_ask(tmp_path):
    path = tmp_path / "web.toml"
    path.write_text(
        MINIMAL.replace("at = 2026", "http = true\nat = 2026").replace(
            'items = { name = "GRANT" }', 'items = { name = "GRANT", nope = "ITEM_UNKNOWN" }'
        ),
        encoding="utf-8",
    )
    with pytest.raises(CaseFileError, match="an unknown item is no field of the schema"):
        load_case_file(path)


# ---------------------------------------------------------------------------------------------------------------
# A thin sample over HTTP: the files marked http = true, on each source engine, with the file's policies in place
# of the demo's


def _differences_from_demo(loaded: CaseFile) -> list[str]:
    """Where the excerpt says something else than the demo catalog the server runs under."""
    found = []
    for code in loaded.catalog.departments:
        if code not in DEMO.departments:
            found.append(f"department {code} is not in the demo catalog")
    for code, purpose in loaded.catalog.purposes.items():
        if DEMO.purpose_for(purpose.department, code) is None:
            found.append(f"purpose {code} is not registered for {purpose.department} in the demo catalog")
    for code, resource in loaded.catalog.resources.items():
        demo = DEMO.resources.get(code)
        if demo is None:
            found.append(f"resource {code} is not in the demo catalog")
            continue
        for name in ("provider", "share_type", "related_departments"):
            if getattr(resource, name) != getattr(demo, name):
                found.append(f"{code}.{name}: {getattr(resource, name)!r}, the demo's {getattr(demo, name)!r}")
        for item in resource.items:
            there = demo.item(item.name)
            if there is None:
                found.append(f"{code} has no item {item.name} in the demo catalog")
                continue
            mine = (
                resource.share_type_of(item),
                item.type,
                item.filterable,
                item.text_length,
                item.parts,
                item.reveals,
            )
            theirs = (
                demo.share_type_of(there),
                there.type,
                there.filterable,
                there.text_length,
                there.parts,
                there.reveals,
            )
            if mine != theirs:
                found.append(f"{code}.{item.name}: {mine}, the demo's {theirs}")
    return found


async def _world_with_the_files_policies(world: World, var: Path, loaded: CaseFile) -> World:
    """A copy of the demo world whose platform database holds the file's grants and policy document only."""
    copy_var(world.settings.var_dir, var)
    settings = make_settings(var)
    platform = make_engine(settings.platform_url)
    try:
        async with platform.begin() as conn:
            await conn.execute(grants.delete())
            await conn.execute(applications.delete())
            for g in loaded.grants:  # as rows, past the store's checks (the file's own checks ran on loading)
                await conn.execute(
                    grants.insert().values(
                        id=g.id,
                        kind=g.kind.value,
                        consumer=g.consumer,
                        resource=g.resource,
                        items=list(g.items),
                        purposes=list(g.purposes),
                        valid_from=g.valid_from.astimezone(UTC),
                        valid_until=g.valid_until.astimezone(UTC),
                        row_scope={k: list(v) for k, v in g.row_scope.items()},
                        masks=dict(g.masks),
                        legal_basis=g.legal_basis,
                        created_by="case file",
                        created_at=datetime(2025, 1, 1, tzinfo=UTC),
                        revoked_at=g.revoked_at.astimezone(UTC) if g.revoked_at else None,
                    )
                )
            await documents.save(conn, DEMO, loaded.document, author="case file", reason=loaded.path.name)
            await bump_policy_version(conn)
    finally:
        await platform.dispose()
    return World(settings, world.keys, world.showcase, world.engine)


def _source_values(world: World, catalog: Catalog, resource: str, item: str) -> set:
    target = catalog.resources[resource]
    column = target.item(item).column
    return {r["v"] for r in world.rows(target.provider, f"SELECT DISTINCT {column} AS v FROM {target.table}")}


async def _check_over_http(api, world: World, loaded: CaseFile, case) -> None:
    resource = DEMO.resources[case.resource]
    field = f"{resource.api_name}List"
    items = list(case.items)
    response = await api.post(
        f"{{ {field}(first: 50) {{ items {{ {' '.join(items)} }} }} }}",
        department=case.department,
        purpose=case.purpose,
    )
    where = f"{case.name} over HTTP on {world.engine}"
    assert response.status_code == 200, (where, response.text)
    result = response.json()
    denied = {i: e.reason for i, e in case.items.items() if e.reason not in ALLOW}
    allowed = [i for i in items if i not in denied]
    masked = sorted(i for i, e in case.items.items() if e.mask or any(c.mask for c in e.covers or ()))
    errors = [e["extensions"] for e in result.get("errors", [])]
    assert all("item" in e for e in errors), (where, errors)  # no request-level refusal
    in_some_rows = {e["item"] for e in errors if e["code"] == "ITEM_OUT_OF_SCOPE"}
    assert in_some_rows <= set(allowed), (where, errors)
    # The answer: one error per denied item with its code; denied items null in every row, allowed ones shown.
    assert sorted((e["item"], e["code"]) for e in errors if e["code"] != "ITEM_OUT_OF_SCOPE") == sorted(
        denied.items()
    ), (where, errors)
    page = result["data"][field]
    if not allowed:
        assert page is None, (where, result)
    else:
        rows = page["items"]
        assert rows, (where, "no rows to check the decision on")
        for item in items:
            values = [row[item] for row in rows]
            if item in denied:
                assert values == [None] * len(rows), (where, item)
            elif item not in in_some_rows:
                assert any(v is not None for v in values), (where, item)
            if item not in denied and item not in masked:  # in clear: the source's own values
                shown = {v for v in values if isinstance(v, (str, int)) and v is not None}
                assert shown <= _source_values(world, DEMO, case.resource, item), (where, item)
    body = json.dumps(result, ensure_ascii=False)
    for item in denied:  # no value of a denied item anywhere in the answer (unless another item's value holds it)
        answered = [str(v) for v in (row.get(i) for row in (page or {}).get("items", []) for i in allowed) if v]
        for value in _source_values(world, DEMO, case.resource, item):
            text = str(value) if value is not None else ""
            if len(text) >= 2 and not any(text in a for a in answered):
                assert text not in body, (where, item, text)
    # The access record says the same.
    async with api.app.state.runtime.engine.connect() as conn:
        (record,) = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).all()
    assert (record.resource, record.purpose) == (case.resource, case.purpose), where
    assert record.items_denied == denied, where
    assert sorted(record.items_returned) == sorted(allowed), where
    assert sorted(record.items_masked) == masked, where
    assert tuple(sorted(record.grants_used)) == case.grants_used, where
    assert record.outcome == ("denied" if not allowed else "partial" if denied else "allowed"), where


HTTP_FILES = [path for path in case_files() if load_case_file(path).http]


def test_a_thin_sample_runs_over_http():
    assert 1 <= len(HTTP_FILES) < len(case_files())


@pytest.mark.parametrize("path", HTTP_FILES, ids=lambda p: p.stem)
async def test_case_file_over_http(world, tmp_path, path):
    loaded = load_case_file(path)
    assert not (found := _differences_from_demo(loaded)), f"{path.name}: its catalog excerpt is not the demo's: {found}"
    copied = await _world_with_the_files_policies(world, tmp_path / "var", loaded)
    now = [loaded.at]
    async for api in _api(copied, clock=lambda: now[0]):
        for case in loaded.cases:
            now[0] = case.at
            await _check_over_http(api, copied, loaded, case)


def test_the_example_in_the_tests_readme_is_a_case_file_that_runs(tmp_path):
    readme = (REPO / "tests" / "README.md").read_text(encoding="utf-8")
    example = readme.split("### A whole file\n\n```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(example, encoding="utf-8")
    (param,) = list(_params([path]))
    _run_case(*param.values)
