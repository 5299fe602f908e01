"""The demo world: identifier check characters and the generated department databases."""

from __future__ import annotations

import random
import re
from datetime import date

import pytest
from sqlalchemy import create_engine, select

from demo.identifiers import (
    credit_code_check_char,
    id_check_digit,
    is_valid_credit_code,
    is_valid_id_number,
    is_valid_org_code,
    make_credit_code,
    make_id_number,
    org_code_check_char,
)
from demo.world import COUNTIES, DEPARTMENTS, TABLES, TODAY, build_sources

PERSONS = 600
ENTERPRISES = 200


def _urls(folder) -> dict[str, str]:
    return {dept: f"sqlite:///{folder}/sources/{dept}.db" for dept in DEPARTMENTS}


def _read_all(urls: dict[str, str]) -> dict[str, list[dict]]:
    """Every row of every table, keyed ``department.table``, in primary key order."""
    data: dict[str, list[dict]] = {}
    for dept, tables in TABLES.items():
        engine = create_engine(urls[dept])
        try:
            with engine.connect() as conn:
                for table in tables:
                    query = select(table).order_by(*table.primary_key.columns)
                    data[f"{dept}.{table.name}"] = [dict(r._mapping) for r in conn.execute(query)]
        finally:
            engine.dispose()
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    urls = _urls(tmp_path_factory.mktemp("world"))
    summary = build_sources(urls, seed=2019, persons=PERSONS, enterprises=ENTERPRISES)
    return summary, urls, _read_all(urls)


@pytest.fixture(scope="module")
def summary(built):
    return built[0]


@pytest.fixture(scope="module")
def data(built):
    return built[2]


@pytest.fixture(scope="module")
def persons(data):
    return {p["id_number"]: p for p in data["police.person"]}


@pytest.fixture(scope="module")
def enterprises(data):
    return {e["credit_code"]: e for e in data["market.enterprise"]}


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --- identifiers ----------------------------------------------------------------------------


def test_id_check_digit_known_examples():
    # GB 11643-1999's own example, and a widely published one.
    assert id_check_digit("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert id_check_digit("44052418800101001") == "4"
    assert is_valid_id_number("440524188001010014")


@pytest.mark.parametrize(
    "bad",
    [
        "110105194912310021",
        "11010519491231002x",
        "11010519490231002X",
        "1101051949123100",
        "",
        None,
        "11010519491231002Ｘ",
    ],
)
def test_invalid_id_numbers(bad):
    assert not is_valid_id_number(bad)


def test_make_id_number():
    man = make_id_number("371302", date(1985, 2, 12), 54, male=True)
    woman = make_id_number("371302", date(1985, 2, 12), 54, male=False)
    assert man.startswith("37130219850212109") and is_valid_id_number(man)
    assert woman.startswith("37130219850212108") and is_valid_id_number(woman)
    assert int(man[16]) % 2 == 1 and int(woman[16]) % 2 == 0
    with pytest.raises(ValueError):
        make_id_number("371302", date(1985, 2, 12), 500, male=True)
    with pytest.raises(ValueError):
        make_id_number("3713", date(1985, 2, 12), 1, male=True)


def test_org_code_known_example():
    # GB 11714-1997's example D2143569-X:
    # 13*3 + 2*7 + 1*9 + 4*10 + 3*5 + 5*8 + 6*4 + 9*2 = 199; 199 mod 11 = 1; 11 - 1 = 10 -> 'X'.
    assert org_code_check_char("D2143569") == "X"
    assert is_valid_org_code("D2143569X")
    assert not is_valid_org_code("D21435691")


def test_credit_code_known_example():
    # 91350100M000100Y43, the example of GB 32100-2015's explanations, checked by hand:
    # organization code M000100Y: 22*3 + 1*5 + 34*2 = 139; 139 mod 11 = 7; 11 - 7 = 4 -> '4';
    # credit code values 9 1 3 5 0 1 0 0 21 0 0 0 1 0 0 30 4 (M = 21, Y = 30 in the 31-character set):
    # 9*1 + 1*3 + 3*9 + 5*27 + 1*26 + 21*20 + 1*8 + 30*30 + 4*28 = 1640; 1640 mod 31 = 28; 31 - 28 = 3 -> '3'.
    assert org_code_check_char("M000100Y") == "4"
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert is_valid_credit_code("91350100M000100Y43")
    assert is_valid_credit_code("91110000600037341L")


@pytest.mark.parametrize(
    "bad",
    [
        "91350100M000100Y44",  # wrong check character
        "91350100M000100Y53",  # wrong organization code check character
        "91350100M000100I43",  # I is not a credit code character
        "91350100M000100Y4",  # too short
        "9135010OM000100Y43",  # letter in the division code
        None,
    ],
)
def test_invalid_credit_codes(bad):
    assert not is_valid_credit_code(bad)


def test_make_credit_code():
    rng = random.Random(7)
    codes = [make_credit_code("371311", rng) for _ in range(500)]
    assert all(is_valid_credit_code(c) for c in codes)
    assert all(c.startswith("91371311") for c in codes)
    assert any(c[8:10] == "MA" for c in codes) and any(c[8:16].isdigit() for c in codes)


# --- the generated world --------------------------------------------------------------------


def test_summary_counts_match_the_databases(summary, data):
    assert set(summary) == {"seed", "counts", "showcase"}
    assert summary["counts"] == {key: len(rows) for key, rows in data.items()}
    assert summary["counts"]["police.person"] == PERSONS
    assert summary["counts"]["market.enterprise"] == ENTERPRISES
    assert all(summary["counts"].values())


def test_every_identifier_is_valid(data, persons, enterprises):
    assert all(is_valid_id_number(i) for i in persons)
    for p in persons.values():
        assert p["gender"] == ("男" if int(p["id_number"][16]) % 2 else "女")
        assert p["birth_date"].strftime("%Y%m%d") == p["id_number"][6:14]
        assert p["birth_date"] <= TODAY
    assert all(is_valid_credit_code(c) for c in enterprises)
    for e in enterprises.values():
        assert e["credit_code"].startswith("91" + e["county_code"])


def test_persons_look_like_linyi(persons):
    rows = list(persons.values())
    assert {p["county_code"] for p in rows} == set(COUNTIES)
    born_here = sum(p["id_number"][:6] == p["county_code"] for p in rows)
    assert 0.7 * len(rows) < born_here < len(rows)  # most, not all
    for p in rows:
        assert p["address"].startswith("临沂市" + COUNTIES[p["county_code"]])
        assert p["address"].endswith(("号", "室", "宿舍", "集体户"))
        if p["phone"] is not None:
            assert re.fullmatch(r"1[3-9]\d{9}", p["phone"])
        else:
            assert _age(p["birth_date"], TODAY) < 16
    assert sum(p["ethnicity"] == "汉族" for p in rows) > 0.9 * len(rows)
    assert len({p["ethnicity"] for p in rows}) > 1
    assert len({p["phone"] for p in rows if p["phone"]}) == sum(1 for p in rows if p["phone"])


def test_households_agree_with_their_members(data, persons):
    members: dict[str, list[dict]] = {}
    for p in persons.values():
        members.setdefault(p["household_id"], []).append(p)
    households = data["police.household"]
    assert {h["household_id"] for h in households} == set(members)
    for h in households:
        mine = members[h["household_id"]]
        assert h["member_count"] == len(mine)
        assert h["head_id_number"] in {m["id_number"] for m in mine}
        assert h["household_type"] in ("家庭户", "集体户")
        assert all(m["county_code"] == h["county_code"] and m["address"] == h["address"] for m in mine)
    assert {h["household_type"] for h in households} == {"家庭户", "集体户"}


def test_enterprises_are_run_by_known_adults(data, persons, enterprises):
    for e in enterprises.values():
        rep = persons[e["legal_rep_id_number"]]
        assert e["legal_rep_name"] == rep["name"]
        assert _age(rep["birth_date"], TODAY) >= 20
        assert _age(rep["birth_date"], e["established_date"]) >= 20
        assert e["county_code"] in COUNTIES
        assert e["name"].startswith("临沂") and e["name"].endswith("有限公司")
        assert e["registered_capital"] > 0
        assert e["status"] in ("存续", "注销", "吊销")
    statuses = [e["status"] for e in enterprises.values()]
    assert statuses.count("存续") > 0.7 * len(statuses)
    assert len({e["name"] for e in enterprises.values()}) == len(enterprises)


def test_licences_belong_to_enterprises(data, enterprises):
    for licence in data["market.licence"]:
        assert licence["credit_code"] in enterprises
        assert licence["issued_date"] >= enterprises[licence["credit_code"]]["established_date"]
        assert licence["valid_until"] > licence["issued_date"]
    assert "食品经营许可证" in {r["licence_type"] for r in data["market.licence"]}


def test_social_insurance_agrees_with_police_and_market(data, persons, enterprises):
    for r in data["hrss.social_insurance"]:
        p = persons[r["id_number"]]
        assert r["name"] == p["name"]
        assert 18 <= _age(p["birth_date"], TODAY) < 60
        employer = enterprises[r["employer_credit_code"]]
        assert r["employer_name"] == employer["name"]
        assert r["insurance_status"] in ("正常参保", "暂停缴费", "终止")
        assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", r["last_paid_month"])
        assert r["first_paid_date"].strftime("%Y-%m") <= r["last_paid_month"] <= "2026-10"
        assert _age(p["birth_date"], r["first_paid_date"]) >= 18
        assert r["monthly_base"] > 0 and r["county_code"] in COUNTIES
        if employer["status"] != "存续":
            assert r["insurance_status"] == "终止"


def test_marriages_join_a_man_and_a_woman(data, persons):
    rows = data["civil.marriage"]
    assert {r["registration_type"] for r in rows} == {"结婚", "离婚"}
    weddings = {
        (r["husband_id_number"], r["wife_id_number"]): r["registered_date"]
        for r in rows
        if r["registration_type"] == "结婚"
    }
    for r in rows:
        husband, wife = persons[r["husband_id_number"]], persons[r["wife_id_number"]]
        assert husband["gender"] == "男" and wife["gender"] == "女"
        assert r["husband_name"] == husband["name"] and r["wife_name"] == wife["name"]
        assert _age(husband["birth_date"], r["registered_date"]) >= 22
        assert _age(wife["birth_date"], r["registered_date"]) >= 20
        assert r["registered_date"] <= TODAY and r["county_code"] in COUNTIES
        assert re.fullmatch(r"[JL]\d{6}-\d{4}-\d{6}", r["registration_no"])
        if r["registration_type"] == "离婚":
            assert weddings[(r["husband_id_number"], r["wife_id_number"])] < r["registered_date"]


def test_subsidies_go_to_known_persons(data, persons):
    for r in data["civil.subsidy"]:
        p = persons[r["id_number"]]
        assert r["name"] == p["name"] and r["county_code"] == p["county_code"]
        assert r["subsidy_type"] in ("最低生活保障", "特困人员供养", "临时救助")
        assert r["monthly_amount"] > 0 and r["start_date"] <= TODAY


def test_real_estate_owners_exist(data, persons, enterprises):
    pattern = re.compile(r"鲁\((\d{4})\)(临沂市|[\u4e00-\u9fa5]{1,2}县)不动产权第\d{7}号")
    for r in data["land.real_estate"]:
        match = pattern.fullmatch(r["certificate_no"])
        assert match and int(match.group(1)) == r["registered_date"].year
        if r["owner_kind"] == "自然人":
            assert r["owner_name"] == persons[r["owner_id"]]["name"]
        else:
            assert r["owner_kind"] == "法人"
            assert r["owner_name"] == enterprises[r["owner_id"]]["name"]
        assert r["usage"] in ("住宅", "商业", "工业") and r["area"] > 0
        assert r["address"].startswith("临沂市" + COUNTIES[r["county_code"]])
    assert {r["owner_kind"] for r in data["land.real_estate"]} == {"自然人", "法人"}


def test_showcase_records_meet_their_descriptions(summary, data, persons, enterprises):
    show = summary["showcase"]
    insured = {r["id_number"] for r in data["hrss.social_insurance"]}
    reps = {e["legal_rep_id_number"] for e in enterprises.values()}

    luozhuang = persons[show["person_luozhuang"]]
    assert luozhuang["county_code"] == "371311"
    assert luozhuang["id_number"] in reps and luozhuang["id_number"] in insured

    lanshan = persons[show["person_lanshan"]]
    assert lanshan["county_code"] == "371302" and lanshan["id_number"] in insured

    assert show["person_subsidy"] in {r["id_number"] for r in data["civil.subsidy"]}
    assert show["person_subsidy"] in persons

    assert show["enterprise"] in enterprises
    assert show["enterprise"] in {r["credit_code"] for r in data["market.licence"]}
    assert show["enterprise"] in {r["owner_id"] for r in data["land.real_estate"]}

    married = [
        r for r in data["civil.marriage"] if show["married_person"] in (r["husband_id_number"], r["wife_id_number"])
    ]
    assert any(r["registration_type"] == "结婚" for r in married)


def test_same_seed_same_world_and_rebuilds(built, tmp_path):
    summary, urls, data = built
    again_urls = _urls(tmp_path)
    again = build_sources(again_urls, seed=2019, persons=PERSONS, enterprises=ENTERPRISES)
    assert again == summary
    assert _read_all(again_urls) == data
    # Re-running over the same databases replaces the tables rather than failing or adding rows.
    assert build_sources(again_urls, seed=2019, persons=PERSONS, enterprises=ENTERPRISES) == summary
    assert _read_all(again_urls) == data


def test_other_seed_other_world(summary, tmp_path):
    other = build_sources(_urls(tmp_path), seed=7, persons=PERSONS, enterprises=ENTERPRISES)
    assert other["showcase"] != summary["showcase"]
    assert other["counts"]["police.person"] == PERSONS


def test_missing_department_url_is_refused(tmp_path):
    urls = _urls(tmp_path)
    del urls["land"]
    with pytest.raises(ValueError, match="land"):
        build_sources(urls, persons=PERSONS, enterprises=ENTERPRISES)
