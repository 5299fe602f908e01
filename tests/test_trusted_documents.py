"""Trusted documents (safelisting): a key restricted to its application's registered documents sends nothing else;
a registered document, by text or by id, is decided and recorded exactly as any query; registrations reach every
process through the policy version, and each is a process record.

One demo world for the module, in production mode; each test makes keys of its own applications, so what one
registers is registered for nobody else."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from audit.chain import verify
from audit.tables import access_records, process_records
from govshare.keys import create_key
from policies import trusted
from policies.tables import trusted_documents
from tests.conftest import OPERATOR, StatementLog, _api, _world, production
from tests.test_cli import govshare_in_process

PURPOSE = "market.licence-review"
# Production validates against the department's view: market's holds no `phone` (not shared), so it is not asked.
LOOKUP = "query Applicant($id: String!) { person(idNumber: $id) { idNumber name gender birthDate address } }"
# Two operations in one document: a request picks one with operationName.
TWO = (
    "query Names($id: String!) { person(idNumber: $id) { name } }\n"
    "query Addresses($id: String!) { person(idNumber: $id) { address } }\n"
)
_names = itertools.count()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trusted")
    built = await _world(folder / "var")
    built.folder = folder  # where the command runs on the same var/
    built.settings = production(built.settings)
    return built


@pytest.fixture(scope="module")
async def api(world):
    async for api in _api(world):
        yield api


async def new_key(api, *, only: bool = True, department: str = "market", application: str | None = None):
    """(key id, key) of a new application of ``department`` (a name of its own unless given)."""
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        key_id, key = await create_key(
            conn,
            department=department,
            application=application or f"业务系统-{next(_names)}",
            departments=runtime.catalog.departments,
            trusted_documents_only=only,
        )
    return key_id, key


async def register(api, key_id: str, *texts: str) -> None:
    """Register ``texts`` for the key's application, as the command does, and bring it into force here."""
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        department, application = await trusted.application_of(conn, key_id)
        for n, text in enumerate(texts):
            await trusted.register(
                conn,
                department=department,
                application=application,
                name=f"doc{n}.graphql",
                text=text,
                operations=(),
                actor="security-officer",
                reason=None,
                now=runtime.clock(),
            )
    await runtime.changed()


async def send(api, key: str, body: dict, *, purpose: str = PURPOSE):
    return await api.client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {key}", "X-Purpose": purpose, "X-Operator": OPERATOR}
    )


async def count(api, table) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def records(api, request_id: str) -> list:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(access_records).where(access_records.c.request_id == request_id))).all()


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code
    return error


async def test_an_unregistered_query_from_a_restricted_key_is_refused_and_nothing_is_read_or_recorded(
    api, world, caplog
):
    key_id, key = await new_key(api)
    await register(api, key_id, TWO)  # something else is registered
    person = world.showcase["person_luozhuang"]
    before = await count(api, access_records)
    source = StatementLog(api, world, "police")
    try:
        with caplog.at_level(logging.WARNING, logger="govshare"):
            response = await send(api, key, {"query": LOOKUP, "variables": {"id": person}})
    finally:
        source.close()
    error = refused(response, 403, "DOCUMENT_NOT_TRUSTED")
    assert error["extensions"]["documentId"] == "sha256:" + sha(LOOKUP)
    assert "未登记" in error["message"]
    assert source.seen == [] and await count(api, access_records) == before
    assert any(key_id in r.getMessage() and "DOCUMENT_NOT_TRUSTED" in r.getMessage() for r in caplog.records)
    assert all(person not in r.getMessage() for r in caplog.records)
    english = await api.client.post(
        "/graphql",
        json={"query": LOOKUP, "variables": {"id": person}},
        headers={
            "Authorization": f"Bearer {key}",
            "X-Purpose": PURPOSE,
            "X-Operator": OPERATOR,
            "Accept-Language": "en",
        },
    )
    assert "not registered for this application" in refused(english, 403, "DOCUMENT_NOT_TRUSTED")["message"]


def _decided(record) -> dict:
    """What an access record says was decided and read (not who sent it, when, or its place in the chain)."""
    fields = ("resource", "operation", "purpose", "items_returned", "items_masked", "items_denied", "row_count")
    return {f: getattr(record, f) for f in (*fields, "grants_used", "outcome", "error_code", "policy_version")}


async def test_a_registered_document_is_decided_and_recorded_exactly_as_the_same_query_from_any_key(api, world):
    key_id, key = await new_key(api)
    await register(api, key_id, LOOKUP)
    person = world.showcase["person_luozhuang"]
    body = {"query": LOOKUP, "variables": {"id": person}}
    trusted_answer = await send(api, key, body)
    open_answer = await send(api, world.keys["market"], body)  # the demo's key: not restricted
    assert trusted_answer.status_code == open_answer.status_code == 200
    assert trusted_answer.json() == open_answer.json()
    assert trusted_answer.json()["data"]["person"]["name"] is not None
    (mine,) = await records(api, trusted_answer.headers["X-Request-Id"])
    (theirs,) = await records(api, open_answer.headers["X-Request-Id"])
    assert _decided(mine) == _decided(theirs)
    assert mine.key_id == key_id and mine.outcome == "allowed" and mine.row_count == 1


async def test_a_registered_document_runs_by_id_alone_in_either_wire_form(api, world):
    key_id, key = await new_key(api)
    await register(api, key_id, LOOKUP)
    person = world.showcase["person_luozhuang"]
    by_text = await send(api, key, {"query": LOOKUP, "variables": {"id": person}})
    for body in (
        {"documentId": "sha256:" + sha(LOOKUP), "variables": {"id": person}},  # GraphQL over HTTP
        {"documentId": sha(LOOKUP), "variables": {"id": person}},  # Relay, Hive: the bare hash
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(LOOKUP)}}, "variables": {"id": person}},
        {"query": LOOKUP, "documentId": "sha256:" + sha(LOOKUP), "variables": {"id": person}},  # both, matching
    ):
        response = await send(api, key, body)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == by_text.json()
        (record,) = await records(api, response.headers["X-Request-Id"])
        assert record.items_returned == ["idNumber", "name", "gender", "birthDate", "address"]


async def test_every_operation_of_a_registered_document_may_be_picked_by_operation_name(api, world):
    key_id, key = await new_key(api)
    await register(api, key_id, TWO)
    person = world.showcase["person_luozhuang"]
    for name, item in (("Names", "name"), ("Addresses", "address")):
        response = await send(
            api, key, {"documentId": "sha256:" + sha(TWO), "operationName": name, "variables": {"id": person}}
        )
        assert response.status_code == 200, response.text
        assert list(response.json()["data"]["person"]) == [item]
    # An operation the document does not hold is not run, whatever else is registered.
    missing = await send(
        api, key, {"documentId": "sha256:" + sha(TWO), "operationName": "Applicant", "variables": {"id": person}}
    )
    assert missing.json().get("data") is None


async def test_a_document_registered_for_one_application_admits_nothing_for_another(api, world):
    a_id, _ = await new_key(api)
    await register(api, a_id, LOOKUP)
    _, b_key = await new_key(api)  # another application of the same department
    person = world.showcase["person_luozhuang"]
    before = await count(api, access_records)
    refused(await send(api, b_key, {"query": LOOKUP, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")
    refused(
        await send(api, b_key, {"documentId": "sha256:" + sha(LOOKUP), "variables": {"id": person}}),
        403,
        "DOCUMENT_NOT_TRUSTED",
    )
    # Nor for an unrestricted key of another department: an id names only its own application's documents.
    refused(
        await send(api, world.keys["hrss"], {"documentId": sha(LOOKUP), "variables": {"id": person}}),
        403,
        "DOCUMENT_NOT_TRUSTED",
    )
    assert await count(api, access_records) == before


async def test_a_key_replacing_another_of_the_same_application_keeps_its_documents(api, world):
    first_id, _ = await new_key(api, application="营业执照审批系统-换发")
    await register(api, first_id, LOOKUP)
    _, second = await new_key(api, application="营业执照审批系统-换发")
    person = world.showcase["person_luozhuang"]
    assert (await send(api, second, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200
    refused(await send(api, second, {"query": TWO, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")


async def test_a_withdrawn_document_is_refused_by_text_and_by_id(api, world):
    key_id, key = await new_key(api)
    await register(api, key_id, LOOKUP)
    person = world.showcase["person_luozhuang"]
    assert (await send(api, key, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        department, application = await trusted.application_of(conn, key_id)
        await trusted.withdraw(
            conn,
            department=department,
            application=application,
            document="sha256:" + sha(LOOKUP),
            actor="security-officer",
            reason="系统下线该查询",
            now=runtime.clock(),
        )
    await runtime.changed()
    refused(await send(api, key, {"query": LOOKUP, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")
    refused(await send(api, key, {"documentId": sha(LOOKUP), "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")


async def test_the_text_is_not_normalised_so_changed_whitespace_is_another_document(api, world):
    key_id, key = await new_key(api)
    await register(api, key_id, LOOKUP)
    person = world.showcase["person_luozhuang"]
    for variant in (LOOKUP + "\n", LOOKUP.replace(" {", "{"), "  " + LOOKUP):
        error = refused(
            await send(api, key, {"query": variant, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED"
        )
        assert error["extensions"]["documentId"] == "sha256:" + sha(variant)


async def test_a_registered_id_cannot_carry_another_text(api, world):
    """The attack: name a registered document's id, send a text of one's own choosing beside it."""
    key_id, key = await new_key(api)
    names_only = "query Applicant($id: String!) { person(idNumber: $id) { name } }"
    await register(api, key_id, names_only)
    person = world.showcase["person_luozhuang"]
    before = await count(api, access_records)
    for sender in (key, world.keys["market"]):  # restricted or not
        for body in (
            {"query": LOOKUP, "documentId": "sha256:" + sha(names_only), "variables": {"id": person}},
            {
                "query": LOOKUP,
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(names_only)}},
                "variables": {"id": person},
            },
        ):
            error = refused(await send(api, sender, body), 400, "DOCUMENT_ID_MISMATCH")
            assert error["extensions"]["reason"].endswith(f"sha256:{sha(LOOKUP)}）。")
    # Two ids naming different documents, or an id of another kind, are not guessed at either.
    two = {"documentId": sha(names_only), "extensions": {"persistedQuery": {"sha256Hash": sha(LOOKUP)}}}
    refused(await send(api, key, two), 400, "BAD_REQUEST")
    refused(await send(api, key, {"documentId": "md5:" + "0" * 32}), 400, "DOCUMENT_ID_INVALID")
    refused(await send(api, key, {"documentId": 7}), 400, "BAD_REQUEST")
    assert await count(api, access_records) == before


async def test_an_unrestricted_key_sends_any_text_and_only_its_registered_ids(api, world):
    person = world.showcase["person_luozhuang"]
    open_key = world.keys["market"]
    assert (await send(api, open_key, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200
    refused(
        await send(api, open_key, {"documentId": "sha256:" + "ab" * 32, "variables": {"id": person}}),
        403,
        "DOCUMENT_NOT_TRUSTED",
    )


async def test_the_platform_setting_restricts_every_key(world):
    settings = dataclasses.replace(world.settings, trusted_documents_required=True)
    person = world.showcase["person_luozhuang"]
    async for api in _api(world, settings=settings):
        # The demo's own keys carry no flag of their own, and are refused all the same.
        for department in ("market", "hrss"):
            response = await send(api, world.keys[department], {"query": LOOKUP, "variables": {"id": person}})
            refused(response, 403, "DOCUMENT_NOT_TRUSTED")
        key_id, key = await new_key(api, only=False)
        await register(api, key_id, LOOKUP)
        assert (await send(api, key, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200


async def test_a_registration_reaches_another_process_on_the_same_database_without_a_query_per_request(world):
    person = world.showcase["person_luozhuang"]
    body = {"query": LOOKUP, "variables": {"id": person}}
    async for first in _api(world):
        async for second in _api(world):
            key_id, key = await new_key(first)
            await second.app.state.runtime.refresh()  # the new key's flag: the cache holds no key yet
            refused(await send(second, key, body), 403, "DOCUMENT_NOT_TRUSTED")
            await register(first, key_id, LOOKUP)  # changed() in the first process only
            refused(await send(second, key, body), 403, "DOCUMENT_NOT_TRUSTED")  # not yet checked there
            await second.app.state.runtime.refresh()  # what its check every refresh_seconds does
            statements: list[str] = []

            def capture(conn, cursor, statement, parameters, context, executemany):
                statements.append(statement)  # noqa: B023 - removed below, within the loop

            engine = second.app.state.runtime.engine.sync_engine
            event.listen(engine, "before_cursor_execute", capture)
            try:
                assert (await send(second, key, body)).status_code == 200
                assert (
                    await send(second, key, {"documentId": sha(LOOKUP), "variables": {"id": person}})
                ).status_code == 200
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            assert not any("FROM trusted_documents" in s for s in statements)
            assert any("FROM api_keys" in s for s in statements)  # the capture sees this process's statements


async def test_the_flag_reaches_a_process_that_remembered_the_key(api, world):
    """Restricting a key afterwards is a change like revoking it: a process that remembers the key sees the flag."""
    key_id, key = await new_key(api, only=False)
    person = world.showcase["person_luozhuang"]
    body = {"query": LOOKUP, "variables": {"id": person}}
    assert (await send(api, key, body)).status_code == 200  # remembered, unrestricted
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        assert await trusted.restrict(
            conn, key_id, only=True, actor="security-officer", reason=None, now=runtime.clock()
        )
    await runtime.refresh()
    refused(await send(api, key, body), 403, "DOCUMENT_NOT_TRUSTED")


# ---------------------------------------------------------------------------------------------------------------
# The command


async def command(world, *args: str, language: str | None = None):
    """`govshare ARGS` on the module's var/ (in a thread: the command runs its own event loop)."""
    return await asyncio.to_thread(govshare_in_process, world.folder, *args, language=language)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


async def _process_kinds(api, since: int) -> list[tuple[str, str, dict]]:
    async with api.app.state.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(process_records).where(process_records.c.id > since))).all()
    return [(r.kind, r.actor, r.detail) for r in rows]


async def _last_process_id(api) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.coalesce(func.max(process_records.c.id), 0)))).scalar_one()


async def test_the_command_registers_lists_withdraws_and_restricts_with_process_records(api, world, tmp_path):
    key_id, key = await new_key(api, only=False)
    good = _write(tmp_path, "applicant.graphql", LOOKUP)
    two = _write(tmp_path, "two.graphql", TWO)
    since = await _last_process_id(api)

    added = await command(world, "key", "documents", "add", key_id, str(good), str(two), "--by", "张三")
    assert added.returncode == 0, added.stderr
    assert f"sha256:{sha(LOOKUP)}" in added.stdout and "Names, Addresses" in added.stdout
    again = await command(world, "key", "documents", "add", key_id, str(good), "--by", "张三")
    assert again.returncode == 0 and "未改动" in again.stdout
    listed = await command(world, "key", "documents", "list", key_id)
    assert listed.returncode == 0 and "applicant.graphql" in listed.stdout and "two.graphql" in listed.stdout
    only = await command(world, "key", "documents", "only", key_id, "--by", "张三", "--reason", "上线")
    assert only.returncode == 0, only.stderr

    await api.app.state.runtime.refresh()  # the command's change, as this server's check sees it
    person = world.showcase["person_luozhuang"]
    assert (await send(api, key, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200
    refused(await send(api, key, {"query": LOOKUP + " ", "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")

    removed = await command(
        world, "key", "documents", "remove", key_id, f"sha256:{sha(LOOKUP)}", "--reason", "停用", "--by", "李四"
    )
    assert removed.returncode == 0, removed.stderr
    await api.app.state.runtime.refresh()
    refused(await send(api, key, {"query": LOOKUP, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")

    kinds = await _process_kinds(api, since)
    assert [(k, actor) for k, actor, _ in kinds] == [
        ("trusted_document_registered", "张三"),
        ("trusted_document_registered", "张三"),
        ("trusted_documents_only", "张三"),
        ("trusted_document_withdrawn", "李四"),
    ]
    assert kinds[0][2]["document"] == f"sha256:{sha(LOOKUP)}" and kinds[1][2]["operations"] == ["Names", "Addresses"]
    async with api.app.state.runtime.engine.connect() as conn:
        checked, broken = await verify(conn, "process")
    assert broken is None and checked >= len(kinds)


async def test_a_key_created_restricted_is_listed_so_and_refused_anything_unregistered(api, world):
    created = await command(
        world, "key", "create", "--department", "market", "--app", "受限的系统", "--trusted-documents-only"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    listed = await command(world, "key", "list")
    (line,) = [line for line in listed.stdout.splitlines() if "受限的系统" in line]
    assert "仅限已登记文档" in line
    await api.app.state.runtime.refresh()
    person = world.showcase["person_luozhuang"]
    refused(await send(api, key, {"query": LOOKUP, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")


async def test_the_command_refuses_an_invalid_document_and_registers_none_of_the_files(api, world, tmp_path):
    key_id, _ = await new_key(api)
    good = _write(tmp_path, "good.graphql", LOOKUP)
    unknown_field = _write(tmp_path, "bad.graphql", '{ person(idNumber: "1") { salary } }')
    not_graphql = _write(tmp_path, "broken.graphql", "query {")
    since = await _last_process_id(api)
    before = await count(api, trusted_documents)
    for bad in (unknown_field, not_graphql):
        result = await command(world, "key", "documents", "add", key_id, str(good), str(bad), "--by", "张三")
        assert result.returncode == 1
        assert "DOCUMENT_INVALID" in result.stderr and bad.name in result.stderr
    english = await command(world, "key", "documents", "add", key_id, str(unknown_field), "--by", "x", language="en")
    assert "Document bad.graphql is not valid" in english.stderr and "salary" in english.stderr
    assert await count(api, trusted_documents) == before and await _process_kinds(api, since) == []
    missing = await command(world, "key", "documents", "list", "nokey")
    assert missing.returncode == 1 and "KEY_NOT_FOUND" in missing.stderr


# ---------------------------------------------------------------------------------------------------------------
# The admin API (the same operations as the command, under a staff session)

REGISTER = """mutation($key: String!, $docs: [TrustedDocumentInput!]!) {
  registerTrustedDocuments(keyId: $key, documents: $docs, reason: "上线") { id name operations new } }"""
LIST = "query($key: String!) { trustedDocuments(keyId: $key) { id name operations registeredBy } }"
WITHDRAW = """mutation($key: String!, $doc: String!, $reason: String!) {
  withdrawTrustedDocument(keyId: $key, documentId: $doc, reason: $reason) }"""
RESTRICT = "mutation($key: String!, $only: Boolean!) { restrictKeyToTrustedDocuments(keyId: $key, only: $only) }"


async def test_security_staff_register_list_withdraw_and_restrict_through_the_admin_api(api, world):
    from tests.test_admin_api import _admin

    admin = await _admin(api)
    try:
        key_id, key = await new_key(api, only=False)
        person = world.showcase["person_luozhuang"]
        invalid = await admin.run(
            REGISTER, key=key_id, docs=[{"name": "ok", "text": LOOKUP}, {"name": "bad", "text": "{ nope }"}]
        )
        assert invalid["errors"][0]["extensions"]["code"] == "DOCUMENT_INVALID"
        assert (await admin.run(LIST, key=key_id))["data"]["trustedDocuments"] == []  # none of the two

        done = await admin.run(REGISTER, key=key_id, docs=[{"name": "applicant", "text": LOOKUP}])
        assert done["data"]["registerTrustedDocuments"] == [
            {"id": "sha256:" + sha(LOOKUP), "name": "applicant", "operations": ["Applicant"], "new": True}
        ]
        listed = (await admin.run(LIST, key=key_id))["data"]["trustedDocuments"]
        assert listed == [
            {"id": "sha256:" + sha(LOOKUP), "name": "applicant", "operations": ["Applicant"], "registeredBy": "ops.bot"}
        ]
        assert (await admin.run(RESTRICT, key=key_id, only=True))["data"]["restrictKeyToTrustedDocuments"] is True
        # In force in this process before the answer that made it was sent.
        assert (await send(api, key, {"query": LOOKUP, "variables": {"id": person}})).status_code == 200
        refused(await send(api, key, {"query": TWO, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")

        no_reason = await admin.run(WITHDRAW, key=key_id, doc="sha256:" + sha(LOOKUP), reason=" ")
        assert no_reason["errors"][0]["extensions"]["code"] == "REASON_REQUIRED"
        assert (await admin.run(WITHDRAW, key=key_id, doc=sha(LOOKUP), reason="停用"))["data"] == {
            "withdrawTrustedDocument": True
        }
        refused(await send(api, key, {"query": LOOKUP, "variables": {"id": person}}), 403, "DOCUMENT_NOT_TRUSTED")
        again = await admin.run(WITHDRAW, key=key_id, doc=sha(LOOKUP), reason="停用")
        assert again["errors"][0]["extensions"]["code"] == "TRUSTED_DOCUMENT_NOT_FOUND"
        # An application key is not staff: it cannot register documents for itself.
        own = await api.client.post(
            "/admin/graphql",
            json={"query": REGISTER, "variables": {"key": key_id, "docs": [{"name": "x", "text": TWO}]}},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert own.status_code == 401 and own.json()["errors"][0]["extensions"]["code"] == "APPLICATION_KEY_NOT_STAFF"
    finally:
        await admin.client.aclose()
