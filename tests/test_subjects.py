"""Who looked at my data: every access to records about one person or enterprise, found by the keyed hash of its
number in the access records' subject index (README "Who looked at my data")."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select, text

from audit.chain import verify
from audit.tables import access_records, access_subjects
from schema.plans import PlanExecutor
from tests.test_migrations import platform_url  # noqa: F401 - the fixture

SUBJECT = """query($id: String, $code: String, $first: Int, $after: String) {
  subjectAccesses(idNumber: $id, creditCode: $code, first: $first, after: $after) {
    items { department departmentName application operator purpose purposeName resource operation grantsUsed
            itemsReturned itemsMasked subjectItems outcome }
    hasNextPage endCursor } }"""
OFFICER = {"X-Operator": "hall-officer-7"}
HALL = "bigdata"  # the demo's coordinating authority runs the service hall (its key has the role subject_service)
MARKET = ("market", "market.licence-review")
LAND = ("land", "land.property-registration")
HRSS = ("hrss", "hrss.insurance-enrolment")
UNTOUCHED = "11010519491231002X"  # GB 11643's own example: valid, and no one of the demo world (Linyi, 3713..)


async def lookup(api, *, id_number=None, credit_code=None, first=20, after=None, key=None, headers=OFFICER):
    return await api.query(
        SUBJECT,
        HALL if key is None else None,
        None,
        variables={"id": id_number, "code": credit_code, "first": first, "after": after},
        headers=headers,
        **({"key": key} if key is not None else {}),
    )


def accesses(answer: dict) -> list[dict]:
    assert "errors" not in answer, answer
    return answer["data"]["subjectAccesses"]["items"]


def since_lookup(answer: dict) -> list[tuple]:
    """The accesses newer than the newest subject lookup (the one a test made first), oldest first, as (department,
    purpose, resource, operation, items returned, items masked, items naming the subject)."""
    found = []
    for a in accesses(answer):
        if a["operation"] == "subject":
            break
        found.append(
            (
                a["department"],
                a["purpose"],
                a["resource"],
                a["operation"],
                tuple(a["itemsReturned"]),
                tuple(a["itemsMasked"]),
                tuple(a["subjectItems"]),
            )
        )
    return found[::-1]


def enterprise_and_its_representative(world) -> tuple[str, str]:
    code = world.showcase["enterprise"]
    rep = world.row("market", "SELECT legal_rep_id_number FROM enterprise WHERE credit_code = ?", code)
    return code, rep["legal_rep_id_number"]


@pytest.mark.parametrize("plans", [True, False], ids=["plans", "generic"])
async def test_a_lookup_finds_exactly_the_accesses_through_a_list_a_lookup_a_link_and_entities(
    api, world, monkeypatch, plans
):
    monkeypatch.setattr(PlanExecutor, "plans", plans)
    enterprise, rep = enterprise_and_its_representative(world)
    # The shared world has accesses of other tests: what this test does comes after its own first lookups.
    for subject in ({"credit_code": enterprise}, {"id_number": rep}):
        accesses(await lookup(api, **subject))
    untouched = await lookup(api, id_number=UNTOUCHED)
    assert {a["operation"] for a in accesses(untouched)} <= {"subject"}  # at most this test's lookups, before

    # a list (land: the legal representative's ID number is conditional, denied to it: not an access to him)
    listed = await api.query(
        """query($c: String!) { enterpriseList(filter: {creditCode: {eq: $c}}) {
             items { name legalRepIdNumber } } }""",
        *LAND,
        variables={"c": enterprise},
    )
    assert listed["data"]["enterpriseList"]["items"][0]["legalRepIdNumber"] is None
    # a lookup
    looked = await api.query("query($id: String!) { person(idNumber: $id) { name } }", *MARKET, variables={"id": rep})
    assert looked["data"]["person"]["name"]
    # a list with a link to the representative's household registration (market's own resource, then a hop)
    linked = await api.query(
        """query($c: String!) { enterpriseList(filter: {creditCode: {eq: $c}}) {
             items { name legalRepresentative { name } } } }""",
        *MARKET,
        variables={"c": enterprise},
    )
    assert linked["data"]["enterpriseList"]["items"][0]["legalRepresentative"]["name"]
    # Apollo Federation's _entities
    entity = await api.query(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        *MARKET,
        variables={"r": [{"__typename": "Person", "idNumber": rep}]},
    )
    assert entity["data"]["_entities"][0]["name"]

    assert since_lookup(await lookup(api, credit_code=enterprise)) == [
        ("land", LAND[1], "market.enterprise", "list", ("name",), (), ("creditCode",)),
        ("market", MARKET[1], "market.enterprise", "list", ("name",), (), ("creditCode",)),
    ]
    assert since_lookup(await lookup(api, id_number=rep)) == [
        ("market", MARKET[1], "police.person", "lookup", ("name",), (), ("idNumber",)),
        ("market", MARKET[1], "market.enterprise", "list", ("name",), (), ("legalRepIdNumber",)),
        ("market", MARKET[1], "police.person", "link", ("name",), (), ("idNumber",)),
        ("market", MARKET[1], "police.person", "entity", ("name",), (), ("idNumber",)),
    ]
    # The number no one touched was asked once: that lookup is all there is.
    again = await lookup(api, id_number=UNTOUCHED)
    assert since_lookup(again) == []
    assert (accesses(again)[0]["department"], accesses(again)[0]["resource"]) == (HALL, "platform.subject-index")
    found = accesses(await lookup(api, id_number=rep))[1]  # [0] is the lookup just made
    assert found["departmentName"] == "临沂市市场监督管理局" and found["purposeName"] == "营业执照登记审核"
    assert found["grantsUsed"] and all(g.startswith("G-") for g in found["grantsUsed"])  # market reads persons by grant


async def test_a_masked_list_and_a_list_not_selecting_the_number_still_index_their_subjects(api, world):
    """hrss sees 罗庄区's ID numbers masked: its answers are accesses to those people all the same, and so are the
    rows of a list that does not select the number at all."""
    accesses(await lookup(api, id_number=UNTOUCHED))  # whatever other tests did, this test's accesses come after
    page = "{ personList(first: 3) { items { idNumber name } } }"
    masked = (await api.query(page, *HRSS))["data"]["personList"]["items"]
    names_only = (await api.query("{ personList(first: 3) { items { name } } }", *HRSS))["data"]["personList"]["items"]
    assert [r["name"] for r in masked] == [r["name"] for r in names_only]
    for row in masked:
        assert "*" in row["idNumber"]
        head, tail = row["idNumber"][:6], row["idNumber"][-4:]
        (person,) = [
            p["id_number"]
            for p in world.rows("police", "SELECT id_number FROM person WHERE name = ?", row["name"])
            if p["id_number"].startswith(head) and p["id_number"].endswith(tail)
        ]
        found = [
            (a["department"], a["resource"], a["operation"], a["itemsReturned"], a["itemsMasked"])
            for a in accesses(await lookup(api, id_number=person))
            if a["department"] == "hrss"
        ][:2]
        assert found == [
            ("hrss", "police.person", "list", ["name"], []),
            ("hrss", "police.person", "list", ["idNumber", "name"], ["idNumber"]),
        ]


async def test_the_pages_follow_one_another(own_api, own_world):
    rep = enterprise_and_its_representative(own_world)[1]
    for _ in range(3):
        await own_api.query("query($id: String!) { person(idNumber: $id) { name } }", *MARKET, variables={"id": rep})
    first = (await lookup(own_api, id_number=rep, first=2))["data"]["subjectAccesses"]
    assert len(first["items"]) == 2 and first["hasNextPage"]
    rest = (await lookup(own_api, id_number=rep, first=2, after=first["endCursor"]))["data"]["subjectAccesses"]
    # newest first, the second page before the first page's last: the hall's first lookup, newer, is not on it
    assert [a["operation"] for a in first["items"] + rest["items"]] == ["lookup", "lookup", "lookup"]
    assert not rest["hasNextPage"] and rest["endCursor"] is None


async def _scan(engine, needles: list[str]) -> list[tuple[str, str]]:
    """Every (table, column) of the platform database holding one of ``needles`` in any form it could be stored."""
    found = []
    async with engine.connect() as conn:
        tables = [r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    shown = value.hex() if isinstance(value, bytes) else str(value)
                    if any(n in shown or n.lower() in shown.lower() for n in needles):
                        found.append((table, column))
    return found


async def test_no_number_is_stored_only_its_keyed_hash(own_api, own_world):
    enterprise, rep = enterprise_and_its_representative(own_world)
    await own_api.query(
        """query($c: String!) { enterpriseList(filter: {creditCode: {eq: $c}}) {
             items { name creditCode legalRepIdNumber legalRepresentative { name } } } }""",
        *MARKET,
        variables={"c": enterprise},
    )
    await own_api.query("{ personList(first: 50) { items { idNumber name } } }", *HRSS)
    accesses(await lookup(own_api, id_number=rep))
    accesses(await lookup(own_api, credit_code=enterprise))
    engine = own_api.app.state.runtime.engine
    async with engine.connect() as conn:
        indexed = (await conn.execute(select(access_subjects))).all()
    hrss_rows = [
        r["id_number"] for r in own_world.rows("police", "SELECT id_number FROM person WHERE county_code = '371311'")
    ]
    assert len(indexed) > 50 and all(len(r.subject_hash) == 64 for r in indexed)
    assert await _scan(engine, [enterprise, rep, *hrss_rows]) == []
    # and the hash is keyed: not the plain SHA-256 of the number
    import hashlib

    plain = {hashlib.sha256(n.encode()).hexdigest() for n in (enterprise, rep)}
    assert plain.isdisjoint(r.subject_hash for r in indexed)


async def _tamper(engine, *statements) -> None:
    async with engine.begin() as conn:  # a database administrator: drop the guards, then edit
        for trigger in ("access_subjects_no_update", "access_subjects_no_delete"):
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        for statement in statements:
            await conn.execute(text(statement))


@pytest.mark.parametrize(
    "tampering, problem",
    [
        (
            "DELETE FROM access_subjects WHERE record_seq = {seq} AND subject_hash = (SELECT MIN(subject_hash) FROM access_subjects WHERE record_seq = {seq})",
            "changed",
        ),
        ("UPDATE access_subjects SET subject_hash = '{other}' WHERE record_seq = {seq}", "changed"),
        ("UPDATE access_subjects SET item = 'legalRepIdNumber' WHERE record_seq = {seq}", "changed"),
        (
            "INSERT INTO access_subjects (record_seq, item, subject_hash) VALUES ({seq}, 'idNumber', '{other}')",
            "changed",
        ),
        ("INSERT INTO access_subjects (record_seq, item, subject_hash) VALUES (1, 'idNumber', '{other}')", "changed"),
        (
            "INSERT INTO access_subjects (record_seq, item, subject_hash) VALUES (999, 'idNumber', '{other}')",
            "inserted",
        ),
        ("UPDATE access_subjects SET record_seq = 1 WHERE record_seq = {seq}", "changed"),
    ],
    ids=["deleted", "hash altered", "item altered", "added", "added to another record", "naming no record", "moved"],
)
async def test_a_changed_subject_row_breaks_the_chain(own_api, own_world, tampering, problem):
    rep = enterprise_and_its_representative(own_world)[1]
    await own_api.query("{ enterpriseList(first: 1) { items { name } } }", *LAND)  # seq 1: one enterprise
    answer = await own_api.query(
        "query($id: String!) { person(idNumber: $id) { name } }", *MARKET, variables={"id": rep}
    )
    assert answer["data"]["person"]["name"]
    engine = own_api.app.state.runtime.engine
    async with engine.connect() as conn:
        assert await verify(conn, "access") == (2, None)
        seq = (
            await conn.execute(select(access_records.c.seq).where(access_records.c.resource == "police.person"))
        ).scalar()
    await _tamper(engine, tampering.format(seq=seq, other="ab" * 32))
    async with engine.connect() as conn:
        _, broken = await verify(conn, "access")
    assert broken is not None and broken.problem == problem
    assert broken.seq == {"inserted": 999}.get(
        problem, 1 if "record_seq = 1" in tampering or "(1," in tampering else seq
    )


def test_govshare_audit_verify_fails_on_a_deleted_subject_row(own_folder):
    import asyncio
    import dataclasses

    from audit.records import AuditWriter
    from govshare.platformdb import make_engine
    from tests.conftest import access_record
    from tests.test_cli import govshare_in_process

    database = own_folder / "var" / "platform.db"

    async def write() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{database}")
        writer = AuditWriter(engine)
        try:
            subjects = [("creditCode", "ab" * 32), ("legalRepIdNumber", "cd" * 32)]
            await writer.write([dataclasses.replace(access_record(2), subjects=subjects)])
        finally:
            await writer.close()
            await engine.dispose()

    asyncio.run(write())
    ok = govshare_in_process(own_folder, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(database) as conn:
        conn.execute("DROP TRIGGER access_subjects_no_delete")
        conn.execute("DELETE FROM access_subjects WHERE item = 'legalRepIdNumber'")
    broken = govshare_in_process(own_folder, "audit", "verify")
    assert broken.returncode == 1 and "access 记录链在第 1 条处断开：changed" in broken.stderr, broken.stderr


async def test_a_key_without_the_role_is_refused_and_the_refusal_recorded(own_api, own_world):
    rep = enterprise_and_its_representative(own_world)[1]
    refused = await lookup(own_api, id_number=rep, key=own_world.keys["market"])
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["SUBJECT_SERVICE_ONLY"]
    async with own_api.app.state.runtime.engine.connect() as conn:
        record = (await conn.execute(select(access_records).order_by(access_records.c.seq.desc()).limit(1))).one()
        subjects = (await conn.execute(select(access_subjects).where(access_subjects.c.record_seq == record.seq))).all()
    assert (record.department, record.operation, record.outcome, record.error_code) == (
        "market",
        "subject",
        "denied",
        "SUBJECT_SERVICE_ONLY",
    )
    assert subjects == []  # nothing was answered about anyone


async def test_the_lookup_is_recorded_with_its_officer_under_the_subject_asked(own_api, own_world):
    rep = enterprise_and_its_representative(own_world)[1]
    response = await own_api.post(
        SUBJECT, department=HALL, variables={"id": rep}, headers={"X-Operator": "hall-officer-7"}
    )
    assert response.status_code == 200 and "errors" not in response.json()
    async with own_api.app.state.runtime.engine.connect() as conn:
        record = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).one()
        subjects = (await conn.execute(select(access_subjects).where(access_subjects.c.record_seq == record.seq))).all()
    assert (record.department, record.operator, record.resource, record.operation, record.outcome) == (
        HALL,
        "hall-officer-7",
        "platform.subject-index",
        "subject",
        "allowed",
    )
    assert [(s.item, len(s.subject_hash)) for s in subjects] == [("idNumber", 64)]
    # the next lookup of the same person shows this one (the hall looked at the person's data too)
    assert [(a["operation"], a["operator"]) for a in accesses(await lookup(own_api, id_number=rep))] == [
        ("subject", "hall-officer-7")
    ]


@pytest.mark.parametrize(
    "variables, code",
    [
        ({"id": "371311197811261793"}, "ID_NUMBER_INVALID"),  # the check digit of README's example, changed
        ({"id": "37131119781326179X"}, "ID_NUMBER_INVALID"),  # no 13th month
        ({"code": "91371300MA3C1234X9"}, "CREDIT_CODE_INVALID"),
        ({}, "SUBJECT_ARGUMENT_REQUIRED"),
        ({"id": "371311197811261792", "code": "91110000600037341L"}, "SUBJECT_ARGUMENT_REQUIRED"),
        ({"id": "371311197811261792", "after": "not-a-cursor"}, "BAD_CURSOR"),
        ({"id": "371311197811261792", "first": 0}, "PAGE_SIZE_TOO_LARGE"),
    ],
)
async def test_bad_arguments_are_refused_with_a_code(own_api, variables, code):
    answer = await own_api.query(SUBJECT, HALL, None, variables=variables, headers=OFFICER)
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]
    assert "371311197811261793" not in str(answer)  # the number asked is not quoted back


async def test_the_officer_is_required(own_api):
    answer = await own_api.query(SUBJECT, HALL, None, variables={"id": "371311197811261792"}, headers={})
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["OPERATOR_REQUIRED"]


def test_the_coordinator_looks_a_subject_up_from_the_command_line(own_folder):
    import asyncio
    import dataclasses

    from audit.records import AuditWriter
    from govshare.keys import platform_secret
    from govshare.platformdb import make_engine
    from govshare.subjects import SubjectKey
    from tests.conftest import access_record
    from tests.test_cli import govshare_in_process

    person = "371311197811261792"
    key = SubjectKey(platform_secret(own_folder / "var" / "subject.key", create=False))
    database = own_folder / "var" / "platform.db"

    async def write() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{database}")
        writer = AuditWriter(engine)
        try:
            record = dataclasses.replace(access_record(1), subjects=[("legalRepIdNumber", key.digest(person))])
            await writer.write([record, access_record(3)])
        finally:
            await writer.close()
            await engine.dispose()

    asyncio.run(write())
    run = govshare_in_process(own_folder, "audit", "subject", "--id-number", person, "--by", "officer-1")
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    assert "land/a" in line and "market.enterprise list" in line and "涉及信息项 legalRepIdNumber" in line
    assert person not in run.stdout
    again = govshare_in_process(own_folder, "audit", "subject", "--id-number", person, "--by", "officer-2")
    lines = again.stdout.splitlines()
    assert len(lines) == 2 and "经办人 officer-1" in lines[0] and "platform.subject-index subject" in lines[0]
    refused = govshare_in_process(own_folder, "audit", "subject", "--id-number", person[:-1] + "3", "--by", "o")
    assert refused.returncode != 0 and "ID_NUMBER_INVALID" in refused.stderr + refused.stdout
    assert govshare_in_process(own_folder, "audit", "verify").returncode == 0


async def test_a_data_error_report_is_an_access_to_its_record_and_stores_no_number(own_api, own_world):
    from tests.test_corrections import report

    rep = enterprise_and_its_representative(own_world)[1]
    filed = await report(own_api, "market", MARKET[1], rep)
    assert filed["data"]["reportDataError"]["id"], filed
    found = accesses(await lookup(own_api, id_number=rep))
    assert [(a["department"], a["resource"], a["operation"], a["subjectItems"]) for a in found] == [
        ("market", "police.person", "report", ["idNumber"])
    ]
    assert await _scan(own_api.app.state.runtime.engine, [rep]) == []


# The subject index (audit/tables.py: access_subject_keys by a 64-bit prefix of the hash, up to the position in
# access_subject_index; the records after it read from access_subjects): records written by a writer that brings it up
# to date every 3 subject rows, so that records 1-4 are in the index and record 5 is in its tail.
SOMEONE = "ab" * 32
TWIN = "ab" * 8 + "cd" * 24  # another subject whose hash begins alike: the same index key
OTHER = "ef" * 32
WRITTEN = [
    [("idNumber", SOMEONE), ("legalRepIdNumber", OTHER)],
    [("idNumber", TWIN)],
    [("creditCode", SOMEONE)],
    [("idNumber", SOMEONE), ("legalRepIdNumber", SOMEONE)],
    [("idNumber", SOMEONE)],
]


async def _indexed_platform(url: str):
    import dataclasses

    from audit.records import AuditWriter
    from govshare.platformdb import make_engine
    from migrations import ensure_current
    from tests.conftest import access_record

    engine = make_engine(url)
    await ensure_current(engine)
    writer = AuditWriter(engine)
    writer.index_after = 3
    try:
        for i, subjects in enumerate(WRITTEN):  # one transaction each
            await writer.write([dataclasses.replace(access_record(i), subjects=sorted(subjects))])
            if i == 3:  # the 3rd subject row since the last time: record 4's transaction was followed by indexing
                await wait_for_index_head(engine, 4)
    finally:
        await writer.close()
    await wait_for_index_head(engine, 4)
    return engine


async def wait_for_index_head(engine, expected: int) -> None:
    """Wait (60 s at most) for the subject index's head to be at ``expected``: the writer's thread indexes after it
    has told the requests of its transaction."""
    import asyncio
    import time

    from audit.tables import access_subject_index

    deadline = time.monotonic() + 60
    while True:
        async with engine.connect() as conn:
            head = (await conn.execute(select(access_subject_index.c.seq))).scalar_one()
        if head == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert head == expected


@pytest.mark.parametrize("platform_url", ["sqlite", "postgres"], indirect=True)
async def test_a_lookup_reads_the_index_and_the_records_after_its_head_alike(platform_url):
    """The writer indexes between transactions (records 1-4 here), the lookup reads the rest from the subject rows:
    every access comes, newest first, page after page across the two, and a subject whose hash shares the index key
    (its first 64 bits) is told apart by the full hash."""
    from audit.tables import access_subject_keys
    from govshare.subjects import index_key
    from resolvers import subjects
    from resolvers.data import decode_cursor

    engine = await _indexed_platform(platform_url)
    try:
        async with engine.connect() as conn:
            keys = set((await conn.execute(select(access_subject_keys))).all())
            assert await verify(conn, "access") == (5, None)
        assert keys == {(index_key(SOMEONE), s) for s in (1, 2, 3, 4)} | {(index_key(OTHER), 1)}
        found = await subjects.read(engine, SOMEONE, 10)
        assert [(a.seq, a.items) for a in found.accesses] == [
            (5, ("idNumber",)),
            (4, ("idNumber", "legalRepIdNumber")),
            (3, ("creditCode",)),
            (1, ("idNumber",)),
        ]
        assert not found.has_next_page
        pages, cursor = [], None
        while True:
            page = await subjects.read(engine, SOMEONE, 1, decode_cursor(cursor) if cursor else None)
            pages.append([a.seq for a in page.accesses])
            if not page.has_next_page:
                break
            cursor = page.end_cursor
        assert pages == [[5], [4], [3], [1]]
        assert [a.seq for a in (await subjects.read(engine, TWIN, 10)).accesses] == [2]
        assert [a.seq for a in (await subjects.read(engine, OTHER, 10)).accesses] == [1]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "tampering, problem, seq",
    [
        ("DELETE FROM access_subject_keys WHERE record_seq = 3", "changed", 3),
        ("UPDATE access_subject_keys SET subject_key = subject_key + 1 WHERE record_seq = 3", "changed", 3),
        ("INSERT INTO access_subject_keys (subject_key, record_seq) VALUES (7, 2)", "changed", 2),
        ("INSERT INTO access_subject_keys (subject_key, record_seq) VALUES (7, 99)", "inserted", 99),
        ("UPDATE access_subject_index SET seq = 5", "changed", 5),  # over record 5, whose keys are not there
        ("UPDATE access_subject_index SET seq = 9", "inserted", 6),  # past the chain's head
    ],
    ids=["key deleted", "key altered", "key added", "key of no record", "head over the tail", "head past the chain"],
)
async def test_a_changed_subject_index_breaks_the_chain(platform_url, tampering, problem, seq):
    """A database administrator hiding an access from the lookup by the index (its key deleted, altered, or its
    record left behind the index's head) is found by verify, as is a key naming no record."""
    from resolvers import subjects

    engine = await _indexed_platform(platform_url)
    try:
        with pytest.raises(Exception, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM access_subject_keys WHERE record_seq = 3"))
        async with engine.begin() as conn:
            for trigger in ("access_subject_keys_no_update", "access_subject_keys_no_delete"):
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
            await conn.execute(text(tampering))
        if "DELETE" in tampering:  # what the attack gains: the lookup by the index no longer lists record 3
            assert [a.seq for a in (await subjects.read(engine, SOMEONE, 10)).accesses] == [5, 4, 1]
        async with engine.connect() as conn:
            _, broken = await verify(conn, "access")
        assert broken is not None and (broken.problem, broken.seq) == (problem, seq)
    finally:
        await engine.dispose()


async def test_an_index_that_cannot_be_written_fails_no_request_and_hides_no_access(platform_url, caplog):
    """The index is written after the requests of a transaction are told: when it cannot be (its head refused here),
    the records are written and answered all the same, the failure is logged, and the lookup still lists every
    access, from the subject rows after the index's head."""
    import dataclasses

    from audit.records import AuditWriter
    from govshare.platformdb import make_engine
    from migrations import ensure_current
    from resolvers import subjects
    from tests.conftest import access_record

    engine = make_engine(platform_url)
    await ensure_current(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TRIGGER refused BEFORE UPDATE ON access_subject_index BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    writer = AuditWriter(engine)
    writer.index_after = 1
    try:
        with caplog.at_level("ERROR", logger="govshare.audit.records"):
            for i in range(3):
                await writer.write([dataclasses.replace(access_record(i), subjects=[("idNumber", SOMEONE)])])
    finally:
        await writer.close()
    try:
        assert any("the subject index could not be brought up to date" in r.getMessage() for r in caplog.records)
        assert [a.seq for a in (await subjects.read(engine, SOMEONE, 10)).accesses] == [3, 2, 1]
    finally:
        await engine.dispose()


async def test_index_batches_never_cut_a_record(platform_url):
    """A batch of at most one row still takes each record whole (one with more rows than a batch on its own, the
    others up to the last record read whole), so the index's head never passes a record with keys missing."""
    import dataclasses

    from audit.chain import index_sync
    from audit.records import AuditWriter
    from audit.tables import access_subject_index, access_subject_keys
    from govshare.platformdb import make_engine, make_sync_engine
    from migrations import ensure_current
    from tests.conftest import access_record

    engine = make_engine(platform_url)
    await ensure_current(engine)
    writer = AuditWriter(engine)
    try:
        for i, named in enumerate(WRITTEN):
            await writer.write([dataclasses.replace(access_record(i), subjects=sorted(named))])
    finally:
        await writer.close()
    sync = make_sync_engine(engine)
    assert sync is not None
    heads = []
    try:
        for _ in range(6):
            with sync.begin() as conn:
                done = index_sync(conn, "access", max_rows=1)
                heads.append(conn.execute(select(access_subject_index.c.seq)).scalar_one())
            if done:
                break
        with sync.connect() as conn:
            keys = len(conn.execute(select(access_subject_keys)).all())
    finally:
        sync.dispose()
    try:
        assert heads == [1, 2, 3, 4, 5] and keys == 6
        async with engine.connect() as conn:
            assert await verify(conn, "access") == (5, None)
    finally:
        await engine.dispose()
