"""The form search (Art 19 ¶2, "don't ask the citizen again"): a department designing a form sends its field labels;
the platform answers which catalog items provide each, what the caller may read now under which purpose (decided as
a lookup would be), and what it would have to apply for. Nothing is read from any source; the search is a process
record, never an access record."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from audit.tables import access_records, process_records
from catalog import store as catalog_store
from catalog.loader import load_catalog
from catalog.search import FormIndex, Match, Synonyms, normalize
from tests.conftest import REPO, StatementLog, _api, _world

MARKET = "market.licence-review"
SEARCH = """query($labels: [String!]!, $purpose: String) {
  formFields(labels: $labels, purpose: $purpose) {
    purposes
    answers { label synonyms providers severalProviders
      sources { resource provider item label lookupKey match shareType readableNow
        decisions { purpose readable code mask rowScoped lookupCode } } }
    toApply { resource provider items mutation needsDecision purposes }
    blocked { resource item code }
  }
}"""


@pytest.fixture(scope="module")
async def forms_api(tmp_path_factory):
    world = await _world(tmp_path_factory.mktemp("var-forms"))
    async for api in _api(world):
        yield api


async def search(api, department: str, labels: list[str], purpose: str | None = None, **kwargs) -> dict:
    return await api.query(SEARCH, department, None, variables={"labels": labels, "purpose": purpose}, **kwargs)


def field(answer: dict, label: str) -> dict:
    return next(f for f in answer["data"]["formFields"]["answers"] if f["label"] == label)


def source(answer: dict, label: str, resource: str, item: str) -> dict:
    return next(s for s in field(answer, label)["sources"] if (s["resource"], s["item"]) == (resource, item))


async def count(api, table) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


# --- the index ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index() -> FormIndex:
    return FormIndex(load_catalog(REPO / "catalog" / "demo"))


def found(index: FormIndex, label: str) -> dict[tuple[str, str], Match]:
    return {(h.resource, h.item): h.match for h in index.find(label)[1]}


def test_a_two_character_label_is_found_through_the_pair_index(index):
    # 姓名 is shorter than a trigram: the bigram index finds it, as an equal label and inside longer ones.
    hits = found(index, "姓名")
    assert hits[("police.person", "name")] == Match.LABEL
    assert hits[("hrss.social-insurance", "name")] == Match.LABEL
    assert hits[("civil.marriage", "husbandName")] == Match.PARTIAL
    assert found(index, "户号")[("police.household", "householdId")] == Match.LABEL


def test_a_longer_label_is_found_by_trigram_and_a_label_inside_it_by_its_pairs(index):
    assert found(index, "户籍地址")[("police.person", "address")] == Match.LABEL
    assert found(index, "社会信用代码")[("market.enterprise", "creditCode")] == Match.SYNONYM  # via its group
    assert found(index, "参保单位统一社会信用代码")[("hrss.social-insurance", "employerCreditCode")] == Match.LABEL
    # 申请人姓名 holds 姓名: the catalog's name items answer it, as partial matches to check
    assert found(index, "申请人姓名")[("police.person", "name")] == Match.PARTIAL
    assert found(index, "申请人 身份证号：")[("police.person", "idNumber")] == Match.PARTIAL


def test_synonyms_of_a_group_and_of_one_item_are_searched(index):
    synonyms, hits = index.find("身份证号")
    assert "公民身份号码" in synonyms
    assert {(h.resource, h.item): h.match for h in hits}[("police.person", "idNumber")] == Match.SYNONYM
    assert found(index, "婚姻状况") == {("civil.marriage", "registrationType"): Match.SYNONYM}
    assert found(index, "ＩＤ号码 ") == {}  # nothing holds it: no guess is made


def test_labels_are_compared_after_folding_full_width_forms_and_decoration():
    assert normalize(" 姓　名：* ") == "姓名"
    assert normalize("ＡＢＣ") == "abc"


def test_the_index_holds_the_published_items_of_its_catalog_only():
    catalog = load_catalog(REPO / "catalog" / "demo")
    person = catalog.resources["police.person"]
    renamed = dataclasses.replace(
        person,
        items=tuple(dataclasses.replace(i, label="移动电话") if i.name == "phone" else i for i in person.items),
    )
    changed = dataclasses.replace(catalog, resources={**catalog.resources, "police.person": renamed}, version=7)
    index = FormIndex(changed, Synonyms())
    assert ("police.person", "phone") in found(index, "移动电话")
    assert found(index, "联系电话") == {}
    retired = dataclasses.replace(
        catalog,
        resources={
            **catalog.resources,
            "civil.marriage": dataclasses.replace(catalog.resources["civil.marriage"], status="retired"),
        },
    )
    assert not any(r == "civil.marriage" for r, _ in found(FormIndex(retired), "男方姓名"))


def test_a_synonym_of_an_item_the_catalog_does_not_publish_is_reported():
    catalog = load_catalog(REPO / "catalog" / "demo")
    index = FormIndex(catalog, Synonyms(items=(("police.person", "maritalStatus", ("婚姻状况",)),)))
    assert index.unknown == [("police.person", "maritalStatus")]
    assert found(index, "婚姻状况") == {}
    assert FormIndex(catalog).unknown == []  # the shipped synonyms name published items only


def _entries(index: FormIndex) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Each (resource, item)'s rows of the index, in their order (what ``find`` offers them in)."""
    rows: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for resource, item, text, own in index._db.execute("SELECT resource, item, text, own FROM entry ORDER BY id"):
        rows.setdefault((resource, item), []).append((text, own))
    return rows


def test_an_index_following_a_change_is_the_index_built_whole_and_writes_only_the_changed_resources():
    """Through a label changed on an item with synonyms of its own, a resource retired, one added, the first gone
    and the retired one back: the index following the one before holds the rows of the index built whole, in the
    order find() offers them, answers every label alike, and kept every other resource's rows as they were."""
    catalog = load_catalog(REPO / "catalog" / "demo")
    synonyms = Synonyms.load()
    marriage, person = catalog.resources["civil.marriage"], catalog.resources["police.person"]
    relabelled = dataclasses.replace(
        marriage,
        items=tuple(
            dataclasses.replace(i, label="登记种类（婚姻）") if i.name == "registrationType" else i
            for i in marriage.items
        ),
    )
    added = dataclasses.replace(person, code="police.person-copy", api_name="personCopy")
    steps = [
        {**catalog.resources, "civil.marriage": relabelled},
        {**catalog.resources, "civil.marriage": dataclasses.replace(marriage, status="retired")},
        {**catalog.resources, "civil.marriage": dataclasses.replace(marriage, status="retired"), added.code: added},
        {code: r for code, r in catalog.resources.items() if code != "police.person"} | {added.code: added},
        dict(catalog.resources),
    ]
    labels = {normalize(i.label) for r in [*catalog.resources.values(), relabelled] for i in r.items}
    labels |= {t for group in synonyms.groups for t in group} | {"申请人姓名", "男方姓名", "婚姻状况", "登记种类"}
    before = FormIndex(catalog, synonyms)
    for version, resources in enumerate(steps, start=2):
        changed = dataclasses.replace(catalog, resources=resources, version=version)
        followed = FormIndex(changed, synonyms, previous=before)
        whole = FormIndex(changed, synonyms)
        assert _entries(followed) == _entries(whole)
        assert followed.unknown == whole.unknown and followed.version == whole.version == version
        for label in sorted(labels):
            assert followed.find(label) == whole.find(label), label
        for code, resource in resources.items():  # an unchanged resource's rows are the ones written before
            if before._resources.get(code) is resource and resource.status == "published":
                assert followed._rows[code] == before._rows[code], code
        before = followed
    assert ("civil.marriage", "registrationType") in found(before, "婚姻状况")  # back, with its synonym


# --- over GraphQL ---------------------------------------------------------------------------------------------------


async def test_a_form_is_answered_with_sources_decisions_and_applications(forms_api):
    api = forms_api
    answer = await search(api, "market", ["姓名", "身份证号", "户籍地址", "婚姻状况", "企业名称", "联系电话"])
    assert "errors" not in answer, answer
    result = answer["data"]["formFields"]
    assert result["purposes"] == ["market.licence-review", "market.food-safety"]
    # 户籍地址: the household registration's address, granted for licence review only
    address = source(answer, "户籍地址", "police.person", "address")
    assert address["match"] == "label" and address["readableNow"] and address["lookupKey"] == "idNumber"
    by_purpose = {d["purpose"]: d for d in address["decisions"]}
    assert by_purpose[MARKET] == {
        "purpose": MARKET,
        "readable": True,
        "code": "GRANT",
        "mask": None,
        "rowScoped": False,
        "lookupCode": None,
    }
    assert not by_purpose["market.food-safety"]["readable"]
    # 企业名称: the caller's own enterprise register
    own = source(answer, "企业名称", "market.enterprise", "name")
    assert own["readableNow"] and {d["code"] for d in own["decisions"]} == {"PROVIDER_OWN"}
    # 姓名 and 身份证号 are kept by several providers: flagged (one source per item)
    names = field(answer, "姓名")
    assert names["severalProviders"] and {"police", "hrss", "civil"} <= set(names["providers"])
    assert "market" not in field(answer, "身份证号")["providers"]
    assert not field(answer, "户籍地址")["severalProviders"]
    # 婚姻状况: only by applying to civil affairs (its item and the key to look it up by)
    apply = {a["resource"]: a for a in result["toApply"]}
    assert apply["civil.marriage"]["items"] == ["registrationType", "registrationNo"]
    assert apply["civil.marriage"]["mutation"] == "applyForShare"
    assert apply["civil.marriage"]["needsDecision"] is False
    # 联系电话 is not shared: an application the provider must decide (never approved by silence)
    assert apply["police.person"] == {
        "resource": "police.person",
        "provider": "police",
        "items": ["phone"],
        "mutation": "applyForShare",
        "needsDecision": True,
        "purposes": ["market.licence-review", "market.food-safety"],
    }
    assert "market.enterprise" not in apply  # what it may read is never to apply for


async def test_a_declared_purpose_decides_alone_and_an_unregistered_one_is_refused(forms_api):
    api = forms_api
    answer = await search(api, "market", ["户籍地址"], "market.food-safety")
    address = source(answer, "户籍地址", "police.person", "address")
    assert answer["data"]["formFields"]["purposes"] == ["market.food-safety"]
    assert not address["readableNow"] and address["decisions"][0]["code"] == "PURPOSE_NOT_APPROVED"
    assert [a["items"] for a in answer["data"]["formFields"]["toApply"]] == [["address", "idNumber"]]
    refused = await search(api, "market", ["姓名"], "hrss.insurance-enrolment")
    assert refused["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_REGISTERED"
    assert refused["data"] is None


@pytest.mark.parametrize(
    ("department", "purpose", "query", "label", "resource", "item"),
    [
        ("market", MARKET, '{ person(idNumber: "%s") { address } }', "户籍地址", "police.person", "address"),
        (
            "market",
            "market.food-safety",
            '{ person(idNumber: "%s") { address } }',
            "户籍地址",
            "police.person",
            "address",
        ),
        # hrss's grant masks the ID number: the name is granted, but no lookup by the masked key is answered
        ("hrss", "hrss.insurance-enrolment", '{ person(idNumber: "%s") { name } }', "姓名", "police.person", "name"),
        ("market", MARKET, '{ person(idNumber: "%s") { phone } }', "联系电话", "police.person", "phone"),
        (
            "civil",
            "civil.subsistence-allowance",
            '{ enterprise(creditCode: "%s") { name } }',
            "企业名称",
            "market.enterprise",
            "name",
        ),
    ],
)
async def test_readable_now_is_what_a_lookup_answers(forms_api, department, purpose, query, label, resource, item):
    """The search says 'readable' exactly where a lookup under the same purpose answers the item (differential)."""
    api = forms_api
    answer = await search(api, department, [label], purpose)
    said = source(answer, label, resource, item)["decisions"][0]
    table, key = ("person", "id_number") if resource == "police.person" else ("enterprise", "credit_code")
    provider = resource.split(".")[0]
    value = api.world.rows(provider, f"SELECT {key} FROM {table} WHERE county_code = '371311' LIMIT 1")[0][key]
    looked_up = await api.query(query % value, department, purpose)
    root = next(iter(looked_up["data"])) if looked_up.get("data") else None
    got = looked_up["data"][root] if root else None
    assert said["readable"] == (got is not None and got.get(item) is not None), (said, looked_up)
    codes = {e["extensions"]["code"] for e in looked_up.get("errors", [])}
    if not said["readable"]:  # and the lookup says why, with the code the search gave
        expected = {"MASKED": "FILTER_NOT_ALLOWED"}.get(said["lookupCode"], said["lookupCode"] or said["code"])
        assert expected in codes, (said, codes)


async def test_a_search_reads_no_source_and_is_a_process_record_not_an_access_record(forms_api):
    api = forms_api
    logs = [StatementLog(api, api.world, d) for d in ("police", "civil", "hrss", "market", "land")]
    accesses, processes = await count(api, access_records), await count(api, process_records)
    try:
        answer = await search(api, "market", ["姓名", "婚姻状况"], headers={"X-Operator": "designer-3"})
    finally:
        for log in logs:
            log.close()
    assert "errors" not in answer
    assert all(log.seen == [] for log in logs)
    assert await count(api, access_records) == accesses
    assert await count(api, process_records) == processes + 1
    async with api.app.state.runtime.engine.connect() as conn:
        record = (await conn.execute(select(process_records).order_by(process_records.c.seq.desc()).limit(1))).one()
    assert record.kind == "form_fields_searched" and record.department == "market"
    assert record.detail["operator"] == "designer-3"
    assert record.detail["found"]["婚姻状况"] == ["civil.marriage.registrationType"]


async def test_too_many_or_unusable_labels_are_refused(forms_api):
    api = forms_api
    many = await search(api, "market", [f"字段{i}" for i in range(101)])
    assert many["errors"][0]["extensions"]["code"] == "FORM_FIELDS_TOO_MANY"
    for bad in ("", "   ", "名" * 65, "姓\x00名"):
        refused = await search(api, "market", [bad], headers={"Accept-Language": "en"})
        assert refused["errors"][0]["extensions"]["code"] == "FORM_FIELD_INVALID", bad
        assert "form field label" in refused["errors"][0]["message"]


async def test_the_search_follows_the_catalog_in_force(own_world):
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        assert source(await search(api, "market", ["联系电话"]), "联系电话", "police.person", "phone")
        catalog = runtime.catalog
        person = catalog.resources["police.person"]
        renamed = dataclasses.replace(
            person,
            items=tuple(dataclasses.replace(i, label="移动电话") if i.name == "phone" else i for i in person.items),
        )
        async with runtime.engine.begin() as conn:
            await catalog_store.publish(
                conn,
                dataclasses.replace(catalog, resources={**catalog.resources, "police.person": renamed}),
                source="test",
                loaded_by="test",
            )
        await runtime.refresh()
        assert runtime.snapshot.forms.version == runtime.catalog.version != catalog.version
        moved = await search(api, "market", ["联系电话", "移动电话"])
        assert not any(s["resource"] == "police.person" for s in field(moved, "联系电话")["sources"])
        assert source(moved, "移动电话", "police.person", "phone")["match"] == "label"


@pytest.mark.parametrize(("api_name", "clash"), [("formFields", "reserved"), ("formField", "FormField")])
def test_a_resource_cannot_take_the_form_searchs_names(tmp_path, api_name, clash):
    """A resource named like the form search's field or types would break the schema: the catalog is refused."""
    import shutil

    from catalog.loader import CatalogError

    folder = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog" / "demo", folder)
    police = folder / "police.toml"
    police.write_text(police.read_text(encoding="utf-8").replace('api_name = "person"', f'api_name = "{api_name}"'))
    with pytest.raises(CatalogError) as refused:
        load_catalog(folder)
    problem = next(p for p in refused.value.problems if p.field == "api_name")
    assert problem.code == "FIELD_INVALID" and clash in problem.detail


async def test_in_production_the_search_is_answered_outside_the_department_view(forms_api):
    """Production validates against the department's view; the form search is in every view, and names resources the
    department cannot read now, since what it may apply for is the point."""
    from tests.conftest import production

    async for api in _api(forms_api.world, production(forms_api.world.settings)):
        answer = await search(api, "land", ["婚姻状况", "联系电话"])
        assert "errors" not in answer, answer
        assert {a["resource"] for a in answer["data"]["formFields"]["toApply"]} == {"civil.marriage", "police.person"}


async def test_an_item_granted_beside_a_masked_key_is_to_apply_for_with_the_key(forms_api):
    """hrss may read names of 罗庄区 residents, but its grant masks the ID number, so no lookup by it answers: the search
    says the name is not readable now and that the key must be applied for in clear."""
    answer = await search(forms_api, "hrss", ["姓名"], "hrss.insurance-enrolment")
    name = source(answer, "姓名", "police.person", "name")
    assert name["decisions"] == [
        {
            "purpose": "hrss.insurance-enrolment",
            "readable": False,
            "code": "GRANT",
            "mask": None,
            "rowScoped": True,
            "lookupCode": "MASKED",
        }
    ]
    apply = {a["resource"]: a["items"] for a in answer["data"]["formFields"]["toApply"]}
    assert apply["police.person"] == ["idNumber"]
    assert "hrss.social-insurance" not in apply  # its own resource
