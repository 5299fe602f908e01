"""Review 7: a department (and an insider with the platform database) attacking the data-subject index, the usage
reports, the consumers' feedback, the audit archives' guard and /metrics (issues 16 and 17)."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select, text

from audit.tables import access_records, access_subjects
from govshare import metrics
from tests.conftest import _api, grant_in_force
from tests.test_feedback import _code, _record
from tests.test_subjects import HRSS, MARKET, UNTOUCHED, accesses, enterprise_and_its_representative, lookup

NAMES_ONLY = """query($c: String!) { enterpriseList(filter: {creditCode: {eq: $c}}) { items { name } } }"""
ENTERPRISE_LIST = """query($c: String!) { enterpriseList(filter: {creditCode: {eq: $c}}) {
  items { name legalRepIdNumber } } }"""


def hits() -> float:
    return metrics.CACHE.labels("hit")._value.get()


async def test_a_source_cache_hit_is_indexed_like_a_miss(own_world):
    """With the source cache on, the second identical list is served from the cache: its rows are still indexed
    under their subjects, and the cache holds the subjects' hashes, never the numbers the caller did not select."""
    enterprise, rep = enterprise_and_its_representative(own_world)
    settings = dataclasses.replace(own_world.settings, cache_max_seconds=300)
    async for api in _api(own_world, settings=settings):
        before = len(accesses(await lookup(api, id_number=rep)))
        hits_before = hits()
        for _ in range(2):
            listed = await api.query(NAMES_ONLY, *MARKET, variables={"c": enterprise})
            assert listed["data"]["enterpriseList"]["items"][0]["name"]
        found = accesses(await lookup(api, id_number=rep))
        lists = [a for a in found if a["operation"] == "list" and a["department"] == "market"]
        assert len(found) == before + 3  # the two lists and the first lookup (a lookup is recorded after its answer)
        assert len(lists) == 2 and all(a["subjectItems"] == ["legalRepIdNumber"] for a in lists)
        assert hits() == hits_before + 1  # the second list was the cache's
        stored = api.app.state.runtime.connectors.cache._cache._cache  # the memory backend's entries
        assert stored and all(rep not in repr(value) for value in stored.values())


async def test_the_subject_answer_names_no_other_subject(own_api, own_world):
    """An access about an enterprise also names its legal representative: the enterprise's lookup says which item
    named it, and carries neither the representative's number nor any subject's hash."""
    enterprise, rep = enterprise_and_its_representative(own_world)
    await own_api.query(ENTERPRISE_LIST, *MARKET, variables={"c": enterprise})
    response = await own_api.post(
        "query($c: String) { subjectAccesses(creditCode: $c, first: 20) { items { subjectItems itemsReturned } } }",
        key=own_api.world.keys["bigdata"],
        variables={"c": enterprise},
        headers={"X-Operator": "hall-officer-7"},
    )
    assert response.status_code == 200
    items = response.json()["data"]["subjectAccesses"]["items"]
    assert any(i["subjectItems"] == ["creditCode"] for i in items)
    async with own_api.app.state.runtime.engine.connect() as conn:
        hashes = [r.subject_hash for r in (await conn.execute(select(access_subjects))).all()]
    assert hashes and all(h not in response.text for h in hashes)
    assert rep not in response.text and enterprise not in response.text


async def test_a_refused_or_malformed_lookup_leaves_the_number_nowhere(own_api, own_world, caplog):
    """A lookup by a key without the role, and one with a wrong check character: refused and recorded, and the
    number asked is in no record, subject row, log line, span or metric."""
    _, rep = enterprise_and_its_representative(own_world)
    wrong = rep[:17] + ("0" if rep[17] != "0" else "1")
    caplog.set_level(logging.DEBUG)
    refused = await lookup(own_api, id_number=rep, key=own_api.world.keys["market"])
    assert refused["errors"][0]["extensions"]["code"] == "SUBJECT_SERVICE_ONLY"
    malformed = await lookup(own_api, id_number=wrong)
    assert malformed["errors"][0]["extensions"]["code"] == "ID_NUMBER_INVALID"
    assert rep not in repr(refused) and wrong not in repr(malformed)
    engine = own_api.app.state.runtime.engine
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(access_records).where(access_records.c.resource == "platform.subject-index").order_by("seq")
            )
        ).all()
        subjects = (await conn.execute(select(access_subjects))).all()
    assert [(r.department, r.outcome, r.error_code) for r in rows[-2:]] == [
        ("market", "denied", "SUBJECT_SERVICE_ONLY"),
        ("bigdata", "denied", "ID_NUMBER_INVALID"),
    ]
    assert {s.record_seq for s in subjects}.isdisjoint(r.seq for r in rows[-2:])  # indexed under no subject
    spans = repr(
        [
            (s.name, dict(s.attributes or {}), [e.attributes for e in s.events])
            for s in own_api.spans.get_finished_spans()
        ]
    )
    metrics_page = (await own_api.client.get("/metrics")).text
    for where in (caplog.text, spans, metrics_page):
        assert rep not in where and wrong not in where


async def test_a_feedback_note_cannot_carry_a_subjects_number(own_api, own_world):
    """A consumer's note is shown to the provider, the coordinator and in their exports: a person's ID number or an
    enterprise's credit code in it would be stored and shown in clear, where the platform holds none."""
    enterprise, rep = enterprise_and_its_representative(own_world)
    grant = await grant_in_force(own_api, "land", ["name", "address"], ["land.property-registration"])
    for note in (f"为 {rep} 办理不动产登记", f"企业{enterprise.lower()}已办结", f"{UNTOUCHED}"):
        assert _code(await _record(own_api, "land", grant, note=note)) == "FEEDBACK_NOTE_HAS_SUBJECT"
    # a number that is not one (no valid check character) is a note like any other
    fine = await _record(own_api, "land", grant, note="编号 202611000000000001 的批次")
    assert "errors" not in fine, fine
    async with own_api.app.state.runtime.engine.connect() as conn:
        notes = [r[0] for r in await conn.execute(text("SELECT note FROM consumer_feedback"))]
    assert notes == ["编号 202611000000000001 的批次"]


async def test_the_usage_report_names_no_subject_and_no_other_provider(own_api, own_world):
    """hrss lists persons (their ID numbers indexed): police's usage report counts it, without any number or hash;
    hrss asking for police's report, or for a police resource, is refused."""
    await own_api.query("{ personList(first: 5) { items { idNumber name } } }", *HRSS)
    report = """query($p: String, $r: String) { usageReport(provider: $p, resource: $r) {
      resources { resource accesses } departments { department accesses } } }"""
    own = await own_api.query(report, "police", None, variables={"p": None, "r": None})
    assert "errors" not in own, own
    found = own["data"]["usageReport"]
    assert any(r["department"] == "hrss" and r["accesses"] for r in found["departments"])
    assert any(r["resource"] == "police.person" and r["accesses"] for r in found["resources"])
    numbers = [r["id_number"] for r in own_world.rows("police", "SELECT id_number FROM person LIMIT 50")]
    assert all(n not in repr(own) for n in numbers)
    for variables in ({"p": "police", "r": None}, {"p": None, "r": "police.person"}):
        other = await own_api.query(report, "hrss", None, variables=variables)
        assert other["data"] is None and other["errors"][0]["extensions"]["code"] in (
            "USAGE_NOT_YOURS",
            "RESOURCE_NOT_FOUND",
        ), other


async def test_callers_cannot_grow_the_metrics_labels_nor_reach_them_through_a_proxy(own_api):
    """Unknown paths, invalid fields and made-up operation names add no label value of their own; /metrics by an
    encoded or slashed path through a proxy (its forwarding header) is still refused."""
    client = own_api.client

    def series(page: str) -> set[str]:
        return {line.split(" ")[0] for line in page.splitlines() if line.startswith("govshare_requests_total")}

    await client.get("/nowhere-0")
    await own_api.post("{ fieldThatIsNot0 }", department="market")
    await own_api.post("{ __typename }", key="made-up-key-0")
    before = series((await client.get("/metrics")).text)
    for n in range(1, 6):
        await client.get(f"/nowhere-{n}/x{n}")
        await own_api.post(f"query Op{n} {{ fieldThatIsNot{n} }}", department="market")
        await own_api.post("{ __typename }", key=f"made-up-key-{n}")
    after = series((await client.get("/metrics")).text)
    assert after - before <= {s for s in after if 'endpoint="metrics"' in s}, after - before
    assert not any("nowhere" in s or "fieldThatIsNot" in s or "Op1" in s or "made-up" in s for s in after)
    for path in ("/metrics/", "/%6Detrics", "//metrics"):
        response = await client.get(path, headers={"X-Forwarded-For": "10.1.2.3"}, follow_redirects=True)
        assert response.status_code in (401, 403, 404) and "govshare_requests_total" not in response.text, path
