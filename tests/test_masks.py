"""Masks: every kind computed by each source engine's SQL equals connectors.masking's reference, and no mask
can be used as an oracle (filters, `in` enumeration, lookups) over HTTP."""

from __future__ import annotations

import json

import pytest

from connectors.base import Column, Condition, SourceQuery, View, shown
from connectors.masking import MaskError, department_key, parse_mask, pseudonym
from tests.conftest import absent

KINDS = [
    ("idNumber", "string", "id_number"),
    ("name", "string", "keep:1,1"),
    ("address", "string", "keep:0,3"),
    ("address", "string", "keep:4,0"),
    ("name", "string", "keep:9,9"),
    ("householdId", "string", "full"),
    ("idNumber", "string", "hash"),
    ("birthDate", "date", "year"),
    ("birthDate", "date", "nullify"),
    ("name", "string", "nullify"),
]
COLUMNS = {
    "idNumber": "id_number",
    "name": "name",
    "address": "address",
    "householdId": "household_id",
    "birthDate": "birth_date",
    "countyCode": "county_code",
}


def test_mask_texts():
    assert parse_mask("id_number") == parse_mask("keep:6,4")
    assert parse_mask("keep:6,4").apply("371311197811261792") == "371311********1792"
    assert parse_mask("keep:6,4").kept(18) == frozenset([*range(1, 7), *range(15, 19)])
    assert parse_mask("range:1000").apply(1234) == 1000 and parse_mask("range:0.5").apply(1.7) == 1.5
    assert parse_mask("range:100").apply(-1) == -100
    key = department_key(b"s" * 32, "land")
    assert parse_mask("hash").keyed(key).apply("x") == pseudonym(bytes.fromhex(key), "x")
    assert department_key(b"s" * 32, "land") != department_key(b"s" * 32, "hrss")
    for bad in ("keep:6", "range:0", "range:-1", "hash:1", "", "KEEP:1,1", "year:2"):
        with pytest.raises(MaskError):
            parse_mask(bad)


async def test_each_mask_in_sql_equals_the_reference_on_every_engine(api, world):
    connector = api.app.state.runtime.connectors.get(
        world.settings.expand(api.app.state.runtime.catalog.departments["police"].source)
    )
    key = department_key(b"k" * 32, "land")
    scope = (Condition("county_code", "in", ("371311",)),)
    columns = [Column("id_number", "string", "key")]
    for n, (item, item_type, text) in enumerate(KINDS):
        mask = parse_mask(text)
        mask = mask.keyed(key) if mask.kind == "hash" else mask
        columns.append(Column(COLUMNS[item], item_type, f"m{n}", (View((), mask),)))
        # per row: in clear within the scope, masked elsewhere
        columns.append(Column(COLUMNS[item], item_type, f"s{n}", (View(scope), View((), mask))))
    query = SourceQuery(table="person", columns=tuple(columns), order_by=(Column("id_number", "string"),), limit=300)
    rows = await connector.fetch(query)
    raw = world.rows("police", "SELECT * FROM person ORDER BY id_number LIMIT 300")
    assert len(rows) == len(raw) == 300
    for row, source in zip(rows, raw, strict=True):
        typed = dict(source.items())
        if typed["birth_date"] is not None:
            import datetime

            typed["birth_date"] = datetime.date.fromisoformat(typed["birth_date"])
        for column in columns[1:]:
            assert row[column.key] == shown(column, typed), (world.engine, column, source)


async def test_in_enumeration_on_a_masked_id_number_is_refused(api, world):
    # ten aliased lists, each trying ~290 candidate numbers: the whole request is refused, nothing is fetched
    target = world.rows("police", "SELECT id_number FROM person WHERE county_code = '371311' LIMIT 1")[0]["id_number"]
    candidates = [target[:6] + f"{19700101 + n:08d}" + target[14:] for n in range(289)] + [target]
    fields = " ".join(f"a{n}: personList(filter: {{idNumber: {{in: $c}}}}) {{ items {{ name }} }}" for n in range(10))
    response = await api.post(
        f"query($c: [String!]!) {{ {fields} }}",
        department="hrss",
        purpose="hrss.insurance-enrolment",
        variables={"c": candidates},
    )
    result = response.json()
    assert all(result["data"][f"a{n}"] is None for n in range(10))
    assert {(e["extensions"]["code"], e["extensions"]["cause"]) for e in result["errors"]} == {
        ("FILTER_NOT_ALLOWED", "MASKED")
    }
    name = world.row("police", "SELECT name FROM person WHERE id_number = ?", target)["name"]
    assert absent(name, response)
    for query in (
        '{ personList(filter: {idNumber: {eq: "%s"}}) { items { name } } }' % target,
        '{ person(idNumber: "%s") { countyCode } }' % target,
    ):
        refused = await api.query(query, "hrss", "hrss.insurance-enrolment")
        assert refused["errors"][0]["extensions"]["cause"] == "MASKED", refused
        assert list(refused["data"].values()) == [None]


async def test_a_keyed_hash_is_a_stable_pseudonym_per_department(own_api, own_world):
    from datetime import UTC, datetime

    from policies.store import create_grant

    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:
        for consumer, purpose in (("land", "land.property-registration"), ("civil", "civil.subsistence-allowance")):
            await create_grant(
                conn,
                runtime.catalog,
                consumer=consumer,
                resource="police.person",
                items=["idNumber", "countyCode"],
                purposes=[purpose],
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                valid_until=datetime(2031, 1, 1, tzinfo=UTC),
                masks={"idNumber": "hash"},
                created_by="test",
            )
    await runtime.refresh()
    query = "{ personList(first: 20) { items { idNumber } } }"
    land = await own_api.query(query, "land", "land.property-registration")
    again = await own_api.query(query, "land", "land.property-registration")
    civil = await own_api.query(query, "civil", "civil.subsistence-allowance")
    raw = [r["id_number"] for r in own_world.rows("police", "SELECT id_number FROM person")]
    ids = [i["idNumber"] for i in land["data"]["personList"]["items"]]
    assert ids == [i["idNumber"] for i in again["data"]["personList"]["items"]]  # stable
    assert not set(ids) & {i["idNumber"] for i in civil["data"]["personList"]["items"]}  # another department's differ
    key = department_key(runtime.pseudonym_secret, "land")
    # in pseudonym order: the order of the hidden numbers is not given away either
    assert ids == sorted(pseudonym(bytes.fromhex(key), r) for r in raw)[:20]
    assert all(absent(r, json.dumps(land)) for r in raw)


async def test_numeric_ranges_in_sql_equal_the_reference_on_every_engine(api, world):
    runtime = api.app.state.runtime
    connector = runtime.connectors.get(world.settings.expand(runtime.catalog.departments["hrss"].source))
    columns = [Column("id_number", "string", "key")] + [
        Column("monthly_base", "decimal", f"r{n}", (View((), parse_mask(text)),))
        for n, text in enumerate(("range:1000", "range:250.5", "nullify"))
    ]
    query = SourceQuery(
        table="social_insurance", columns=tuple(columns), order_by=(Column("id_number", "string"),), limit=200
    )
    rows = await connector.fetch(query)
    raw = world.rows("hrss", "SELECT id_number, monthly_base FROM social_insurance ORDER BY id_number LIMIT 200")
    assert rows and len(rows) == len(raw)
    for row, source in zip(rows, raw, strict=True):
        for column in columns[1:]:
            expected = shown(column, {"monthly_base": source["monthly_base"]})
            assert row[column.key] == pytest.approx(expected), (world.engine, column, source)


def test_long_values_are_masked_whole_in_sqlite():
    import sqlite3

    from sqlalchemy.dialects import sqlite

    from connectors.sql import _build

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT)")
    values = [
        "",
        "a",
        "abcd",
        "abcde",
        "x" * 63,
        "y" * 68,
        "z" * 70,
        "長い住所" * 40,
        "w" * 1027,
        "v" * 1029,
        "u" * 3000,
    ]
    db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    for text in ("keep:2,2", "keep:3,0", "keep:0,1", "full"):
        mask = parse_mask(text)
        query = SourceQuery(table="t", columns=(Column("v", "string", "m", (View((), mask),)),))
        sql = str(_build(query).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        assert [r[0] for r in db.execute(sql)] == [mask.apply(v) for v in values], text


def test_processes_starting_at_once_share_one_pseudonym_secret(tmp_path):
    import concurrent.futures

    from govshare.keys import platform_secret

    path = tmp_path / "var" / "pseudonym.key"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        secrets = list(pool.map(lambda _: platform_secret(path), range(64)))
    assert len(set(secrets)) == 1 and len(secrets[0]) == 32
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no draft left behind


def test_production_refuses_to_start_without_the_shared_pseudonym_secret(tmp_path):
    from govshare.errors import ConfigError
    from server import Runtime
    from tests.conftest import make_settings, production

    settings = production(make_settings(tmp_path / "var"))
    with pytest.raises(ConfigError, match="pseudonym secret"):
        Runtime(settings)  # no process of a platform may make a secret of its own: the others would not share it
    assert not (tmp_path / "var" / "pseudonym.key").exists()
