"""A generated Linyi (临沂市) and its departments' own source databases.

``build_sources`` fills five departments' databases, each given by a synchronous SQLAlchemy URL:

* police (公安): ``person``, ``household``
* market (市场监管): ``enterprise``, ``licence``
* hrss (人社): ``social_insurance``
* civil (民政): ``marriage``, ``subsidy``
* land (自然资源/不动产登记): ``real_estate``

The world is deterministic for a seed: everything is drawn from one ``random.Random(seed)`` in a
fixed order, and "today" is the fixed date ``TODAY``. The records agree across departments the way
real ones do (legal representatives, insured persons, spouses and owners are people the police
know, under the same names), which is what the sharing platform's demos join on.

SQLAlchemy Core only, with portable types, so the same code fills SQLite, PostgreSQL or MariaDB.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
)
from sqlalchemy.engine import make_url

from demo.identifiers import make_credit_code, make_id_number

TODAY = date(2026, 11, 1)

COUNTIES: dict[str, str] = {
    "371302": "兰山区",
    "371311": "罗庄区",
    "371312": "河东区",
    "371321": "沂南县",
    "371322": "郯城县",
    "371323": "沂水县",
    "371324": "兰陵县",
    "371325": "费县",
    "371326": "平邑县",
    "371327": "莒南县",
    "371328": "蒙阴县",
    "371329": "临沭县",
}
DISTRICTS = ("371302", "371311", "371312")  # the city proper: 市辖区
DEPARTMENTS = ("police", "market", "hrss", "civil", "land")

# --- schema ---------------------------------------------------------------------------------

METADATA: dict[str, MetaData] = {dept: MetaData() for dept in DEPARTMENTS}

household_table = Table(
    "household",
    METADATA["police"],
    Column("household_id", String(20), primary_key=True),
    Column("head_id_number", String(18), nullable=False, index=True),
    Column("county_code", String(6), nullable=False),
    Column("address", String(200), nullable=False),
    Column("household_type", String(10), nullable=False),
    Column("member_count", Integer, nullable=False),
)
person_table = Table(
    "person",
    METADATA["police"],
    Column("id_number", String(18), primary_key=True),
    Column("name", String(50), nullable=False, index=True),
    Column("gender", String(2), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("ethnicity", String(20), nullable=False),
    Column("county_code", String(6), nullable=False, index=True),
    Column("address", String(200), nullable=False),
    Column("household_id", String(20), ForeignKey("household.household_id"), nullable=False, index=True),
    Column("phone", String(11)),  # NULL for children under 16
)
enterprise_table = Table(
    "enterprise",
    METADATA["market"],
    Column("credit_code", String(18), primary_key=True),
    Column("name", String(100), nullable=False, index=True),
    Column("legal_rep_id_number", String(18), nullable=False, index=True),
    Column("legal_rep_name", String(50), nullable=False),
    Column("county_code", String(6), nullable=False, index=True),
    Column("address", String(200), nullable=False),
    Column("registered_capital", Numeric(14, 2), nullable=False),  # 万元
    Column("established_date", Date, nullable=False),
    Column("business_scope", String(500), nullable=False),
    Column("status", String(10), nullable=False),
)
licence_table = Table(
    "licence",
    METADATA["market"],
    Column("licence_no", String(40), primary_key=True),
    Column("credit_code", String(18), ForeignKey("enterprise.credit_code"), nullable=False, index=True),
    Column("licence_type", String(30), nullable=False),
    Column("issued_date", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
)
social_insurance_table = Table(
    "social_insurance",
    METADATA["hrss"],
    Column("id_number", String(18), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("employer_credit_code", String(18), nullable=False, index=True),
    Column("employer_name", String(100), nullable=False),
    Column("insurance_status", String(10), nullable=False),
    Column("monthly_base", Numeric(14, 2), nullable=False),  # 元
    Column("first_paid_date", Date, nullable=False),
    Column("last_paid_month", String(7), nullable=False),  # YYYY-MM
    Column("county_code", String(6), nullable=False),  # where insured: the employer's county
)
marriage_table = Table(
    "marriage",
    METADATA["civil"],
    Column("registration_no", String(24), primary_key=True),
    Column("husband_id_number", String(18), nullable=False, index=True),
    Column("husband_name", String(50), nullable=False),
    Column("wife_id_number", String(18), nullable=False, index=True),
    Column("wife_name", String(50), nullable=False),
    Column("registration_type", String(4), nullable=False),
    Column("registered_date", Date, nullable=False),
    Column("county_code", String(6), nullable=False),
)
subsidy_table = Table(
    "subsidy",
    METADATA["civil"],
    Column("subsidy_id", String(24), primary_key=True),
    Column("id_number", String(18), nullable=False, index=True),
    Column("name", String(50), nullable=False),
    Column("subsidy_type", String(20), nullable=False),
    Column("monthly_amount", Numeric(14, 2), nullable=False),  # 元
    Column("start_date", Date, nullable=False),
    Column("county_code", String(6), nullable=False),
)
real_estate_table = Table(
    "real_estate",
    METADATA["land"],
    Column("certificate_no", String(40), primary_key=True),
    Column("owner_id", String(18), nullable=False, index=True),
    Column("owner_name", String(100), nullable=False),
    Column("owner_kind", String(4), nullable=False),
    Column("county_code", String(6), nullable=False),
    Column("address", String(200), nullable=False),
    Column("area", Numeric(14, 2), nullable=False),  # m²
    Column("usage", String(10), nullable=False),
    Column("registered_date", Date, nullable=False),
)

TABLES: dict[str, list[Table]] = {dept: list(md.sorted_tables) for dept, md in METADATA.items()}

# --- vocabulary -----------------------------------------------------------------------------

# Rough population shares of the counties (2020 census, 万人).
_COUNTY_WEIGHTS = {
    "371302": 168,
    "371311": 65,
    "371312": 77,
    "371321": 84,
    "371322": 92,
    "371323": 98,
    "371324": 116,
    "371325": 74,
    "371326": 85,
    "371327": 84,
    "371328": 46,
    "371329": 58,
}
_TOWNS = {
    "371302": ["兰山街道", "银雀山街道", "金雀山街道", "柳青街道", "白沙埠镇", "枣园镇", "义堂镇", "李官镇"],
    "371311": ["罗庄街道", "傅庄街道", "盛庄街道", "册山街道", "高都街道", "沂堂镇", "褚墩镇", "黄山镇"],
    "371312": ["九曲街道", "芝麻墩街道", "凤凰岭街道", "汤头街道", "汤河镇", "八湖镇", "郑旺镇"],
    "371321": ["界湖街道", "岸堤镇", "孙祖镇", "双堠镇", "青驼镇", "张庄镇", "砖埠镇", "大庄镇"],
    "371322": ["郯城街道", "马头镇", "重坊镇", "李庄镇", "港上镇", "高峰头镇", "胜利镇", "红花镇"],
    "371323": ["沂城街道", "龙家圈街道", "许家湖镇", "黄山铺镇", "诸葛镇", "崔家峪镇", "高桥镇", "院东头镇"],
    "371324": ["卞庄街道", "苍山街道", "向城镇", "长城镇", "磨山镇", "神山镇", "车辋镇", "尚岩镇"],
    "371325": ["费城街道", "上冶镇", "薛庄镇", "探沂镇", "朱田镇", "梁邱镇", "新庄镇", "马庄镇"],
    "371326": ["平邑街道", "仲村镇", "武台镇", "保太镇", "柏林镇", "卞桥镇", "地方镇", "铜石镇"],
    "371327": ["十字路街道", "大店镇", "坪上镇", "板泉镇", "洙边镇", "文疃镇", "相沟镇", "岭泉镇"],
    "371328": ["蒙阴街道", "常路镇", "岱崮镇", "坦埠镇", "垛庄镇", "高都镇", "野店镇", "桃墟镇"],
    "371329": ["临沭街道", "郑山街道", "蛟龙镇", "大兴镇", "石门镇", "曹庄镇", "青云镇", "店头镇"],
}
_ROADS = [
    "沂蒙路",
    "解放路",
    "通达路",
    "北京路",
    "上海路",
    "金雀山路",
    "银雀山路",
    "启阳路",
    "沂河路",
    "涑河街",
    "兰山路",
    "工业大道",
    "蒙山大道",
    "滨河大道",
    "临西五路",
    "新华路",
    "人民路",
    "建设路",
    "和平路",
    "开元路",
    "孝河路",
    "双岭路",
    "沂州路",
    "府右路",
    "商城路",
    "红旗路",
    "沭河大街",
    "温泉路",
]
_COMPOUNDS = [
    "翰林苑",
    "书香苑",
    "幸福家园",
    "阳光花园",
    "滨河小区",
    "金色家园",
    "沂蒙人家",
    "凤凰城",
    "锦绣城",
    "康居小区",
]
_VILLAGE_PREFIXES = ["东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "中", "新"]
_VILLAGE_SUFFIXES = ["庄", "家庄", "岭", "沟", "屯", "湖", "河", "峪", "官庄", "埠", "店", "集", "楼", "疃"]

_SURNAMES = [
    ("王", 12),
    ("张", 11),
    ("刘", 10),
    ("李", 9),
    ("陈", 4),
    ("杨", 5),
    ("赵", 4),
    ("孙", 5),
    ("徐", 4),
    ("高", 4),
    ("马", 3),
    ("朱", 3),
    ("胡", 2),
    ("郭", 2),
    ("何", 1),
    ("宋", 3),
    ("田", 2),
    ("杜", 2),
    ("庄", 2),
    ("颜", 1),
    ("孟", 2),
    ("魏", 2),
    ("于", 3),
    ("董", 2),
    ("薛", 2),
    ("公", 1),
    ("诸葛", 1),
    ("厉", 1),
    ("吴", 2),
    ("周", 2),
    ("邵", 1),
    ("蒋", 1),
    ("韩", 2),
    ("褚", 1),
    ("丁", 2),
]
_MALE_CHARS = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣翔振国建文志兴东海庆永成德"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞秀英华慧巧美娅燕玲萍红梅琳素云莲真雪荣爱妹香月媛瑞凡佳嘉琼桂娣叶璐婷"
_ETHNICITIES = [("汉族", 970), ("回族", 18), ("满族", 5), ("蒙古族", 3), ("壮族", 2), ("朝鲜族", 1), ("土家族", 1)]
# Where those born outside Linyi come from.
_OUTSIDE_CODES = ["370102", "370203", "370303", "370811", "371102", "371502", "320311", "320703", "341302", "410102"]
_MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]

_TRADE_NAMES = "鑫华泰丰源盛隆兴恒达宏昌瑞祥鼎福金沂蒙凯旭润和安信诚利宝元通力嘉立腾正宇"
# industry -> (name suffix, business scope, licence types it may hold, property usage)
_INDUSTRIES = [
    ("商贸", "日用百货、五金交电、建材、服装鞋帽批发零售；国内贸易代理。", ["食品经营许可证"], "商业"),
    (
        "物流",
        "普通货物道路运输；仓储服务（不含危险化学品）；装卸搬运；国内货物运输代理。",
        ["道路运输经营许可证"],
        "工业",
    ),
    ("木业", "胶合板、细木工板、生态板生产销售；木材加工；木制品销售。", ["排污许可证"], "工业"),
    ("食品", "食品生产；食品经营；农副产品收购；预包装食品销售。", ["食品生产许可证", "食品经营许可证"], "工业"),
    ("餐饮管理", "餐饮服务；餐饮管理；食品经营（销售散装食品）。", ["食品经营许可证"], "商业"),
    ("建材", "水泥制品、新型墙体材料生产销售；建筑材料销售。", ["排污许可证"], "工业"),
    ("机械制造", "通用设备制造；农业机械制造、销售；金属结构制造。", ["排污许可证"], "工业"),
    ("医药", "药品批发；医疗器械经营；保健食品销售。", ["药品经营许可证", "食品经营许可证"], "商业"),
    ("化工", "化工产品（不含危险化学品）销售；危险化学品经营。", ["危险化学品经营许可证"], "工业"),
    ("建筑工程", "房屋建筑工程、市政公用工程施工；建筑劳务分包。", ["建筑业企业资质证书"], "商业"),
    ("电子科技", "电子产品研发、销售；计算机软硬件技术开发；信息系统集成服务。", [], "商业"),
    ("农业科技", "蔬菜、水果种植销售；农业技术推广服务；农产品初加工。", ["食品经营许可证"], "工业"),
    ("纺织", "针纺织品制造、销售；服装加工。", [], "工业"),
    ("包装", "纸制品、塑料包装制品生产销售；包装装潢印刷。", ["排污许可证"], "工业"),
]
_CAPITALS = [10, 30, 50, 100, 100, 200, 300, 500, 500, 1000, 2000, 5000]  # 万元
_INDUSTRIAL_PARKS = ["经济技术开发区", "高新技术产业开发区", "临港经济开发区", "工业园区", "商贸物流园区"]


# --- helpers --------------------------------------------------------------------------------


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _age(birth: date, on: date = TODAY) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _between(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return start
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _month_str(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


@dataclass
class _Person:
    id_number: str
    name: str
    male: bool
    birth_date: date
    ethnicity: str
    county_code: str
    address: str
    household_id: str
    phone: str | None

    @property
    def age(self) -> int:
        return _age(self.birth_date)


@dataclass
class _Household:
    household_id: str
    county_code: str
    address: str
    household_type: str
    members: list[_Person] = field(default_factory=list)
    couple: tuple[_Person, _Person, date] | None = None  # husband, wife, marriage date


class _World:
    """The state of one generation; its methods draw from the one ``rng`` in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.persons: list[_Person] = []
        self.households: list[_Household] = []
        self.used_ids: set[str] = set()
        self.used_phones: set[str] = set()
        self.household_serial: dict[str, int] = {}

    # people ---------------------------------------------------------------------------------

    def county(self) -> str:
        return self.rng.choices(list(_COUNTY_WEIGHTS), weights=list(_COUNTY_WEIGHTS.values()))[0]

    def name(self, male: bool, surname: str | None = None) -> str:
        rng = self.rng
        surname = surname or _weighted(rng, _SURNAMES)
        chars = _MALE_CHARS if male else _FEMALE_CHARS
        length = 1 if rng.random() < 0.3 else 2
        return surname + "".join(rng.choice(chars) for _ in range(length))

    def address(self, county: str) -> str:
        rng = self.rng
        town = rng.choice(_TOWNS[county])
        prefix = f"临沂市{COUNTIES[county]}{town}"
        if town.endswith("街道"):
            road = rng.choice(_ROADS)
            if rng.random() < 0.6:
                return (
                    f"{prefix}{road}{rng.randint(1, 399)}号{rng.choice(_COMPOUNDS)}"
                    f"{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
                )
            return f"{prefix}{road}{rng.randint(1, 599)}号"
        village = rng.choice(_VILLAGE_PREFIXES) + _weighted(rng, _SURNAMES)[0] + rng.choice(_VILLAGE_SUFFIXES)
        return f"{prefix}{village}村{rng.randint(1, 260)}号"

    def phone(self) -> str:
        while True:
            number = self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randint(0, 99_999_999):08d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def id_number(self, birth_county: str, birth: date, male: bool) -> str:
        while True:
            candidate = make_id_number(birth_county, birth, self.rng.randint(0, 499), male)
            if candidate not in self.used_ids:
                self.used_ids.add(candidate)
                return candidate

    def birth_county(self, county: str, born_here: float) -> str:
        rng = self.rng
        if rng.random() < born_here:
            return county
        if rng.random() < 0.65:
            return rng.choice([c for c in COUNTIES if c != county])
        return rng.choice(_OUTSIDE_CODES)

    def person(
        self, household: _Household, male: bool, birth: date, *, surname: str | None = None, born_here: float = 0.85
    ) -> _Person:
        rng = self.rng
        county = household.county_code
        birth_county = self.birth_county(county, born_here)
        p = _Person(
            id_number=self.id_number(birth_county, birth, male),
            name=self.name(male, surname),
            male=male,
            birth_date=birth,
            ethnicity=_weighted(rng, _ETHNICITIES),
            county_code=county,
            address=household.address,
            household_id=household.household_id,
            phone=self.phone() if _age(birth) >= 16 else None,
        )
        household.members.append(p)
        self.persons.append(p)
        return p

    def birth_for_age(self, low: int, high: int) -> date:
        """A birth date for someone aged between ``low`` and ``high`` (inclusive) on TODAY."""
        latest = _add_years(TODAY, -low) - timedelta(days=1)
        earliest = _add_years(TODAY, -(high + 1)) + timedelta(days=1)
        return _between(self.rng, earliest, latest)

    def new_household(self, county: str, household_type: str) -> _Household:
        serial = self.household_serial.get(county, 0) + 1
        self.household_serial[county] = serial
        if household_type == "集体户":
            town = self.rng.choice(_TOWNS[county])
            address = (
                f"临沂市{COUNTIES[county]}{town}{self.rng.choice(_ROADS)}{self.rng.randint(1, 599)}号"
                f"{self.rng.choice(['职工宿舍', '集体宿舍', '学校集体户'])}"
            )
        else:
            address = self.address(county)
        h = _Household(f"{county}{serial:09d}", county, address, household_type)
        self.households.append(h)
        return h

    def family(self, county: str, kind: str, husband_age: tuple[int, int] | None = None) -> None:
        """A 家庭户 of one of the kinds: single_elder, single, couple (with any children, grandparent)."""
        rng = self.rng
        h = self.new_household(county, "家庭户")
        if kind == "single_elder":
            self.person(h, rng.random() < 0.4, self.birth_for_age(60, 92))
            return
        if kind == "single":
            self.person(h, rng.random() < 0.55, self.birth_for_age(20, 45))
            return
        low, high = husband_age or (23, 82)
        husband_birth = self.birth_for_age(low, high)
        wife_birth = husband_birth + timedelta(days=rng.randint(-2 * 365, 5 * 365))
        if _age(wife_birth) < 21:
            wife_birth = _add_years(TODAY, -21) - timedelta(days=rng.randint(1, 300))
        earliest = max(_add_years(husband_birth, 22), _add_years(wife_birth, 20))
        married = _between(rng, earliest, min(_add_years(earliest, 8), TODAY - timedelta(days=30)))
        head_is_husband = rng.random() < 0.85
        surname = _weighted(rng, _SURNAMES)
        if head_is_husband:
            husband = self.person(h, True, husband_birth, surname=surname)
            wife = self.person(h, False, wife_birth)
        else:
            wife = self.person(h, False, wife_birth)
            husband = self.person(h, True, husband_birth, surname=surname)
        h.couple = (husband, wife, married)
        # Children still living at home: born after the wedding, before the mother turned 42, under 28 now.
        children = rng.choices([0, 1, 2, 3], weights=[10, 45, 38, 7])[0]
        last = min(TODAY - timedelta(days=1), _add_years(wife_birth, 42))
        for _ in range(children):
            birth = _between(rng, married + timedelta(days=300), min(last, _add_years(married, 14)))
            if birth > last or _age(birth) >= 28:
                continue
            self.person(h, rng.random() < 0.52, birth, surname=surname, born_here=0.97)
        if rng.random() < 0.12:  # one of the husband's parents lives with them
            birth = _add_years(husband_birth, -rng.randint(22, 34))
            if _age(birth) <= 95:
                parent_male = rng.random() < 0.4
                self.person(h, parent_male, birth, surname=surname if parent_male else None)

    def collective(self, county: str) -> None:
        h = self.new_household(county, "集体户")
        for _ in range(self.rng.randint(3, 8)):
            self.person(h, self.rng.random() < 0.6, self.birth_for_age(18, 45), born_here=0.5)

    def populate(self, count: int) -> None:
        # One young family in every county first, so that each county has people of working age.
        for county in COUNTIES:
            self.family(county, "couple", husband_age=(30, 50))
        kinds = [("couple", 68), ("single_elder", 14), ("single", 11), ("collective", 2)]
        while len(self.persons) < count:
            county = self.county()
            kind = _weighted(self.rng, kinds)
            if kind == "collective":
                self.collective(county)
            else:
                self.family(county, kind)
        # Trim to the exact count: drop the last people generated, then any household left empty.
        for p in self.persons[count:]:
            for h in self.households:
                if h.household_id == p.household_id:
                    h.members.remove(p)
                    if h.couple and p in h.couple[:2]:
                        h.couple = None
                    break
        del self.persons[count:]
        self.households = [h for h in self.households if h.members]


# --- rows of each table -------------------------------------------------------------------


def _person_rows(world: _World) -> list[dict]:
    return [
        {
            "id_number": p.id_number,
            "name": p.name,
            "gender": "男" if p.male else "女",
            "birth_date": p.birth_date,
            "ethnicity": p.ethnicity,
            "county_code": p.county_code,
            "address": p.address,
            "household_id": p.household_id,
            "phone": p.phone,
        }
        for p in world.persons
    ]


def _household_rows(world: _World) -> list[dict]:
    return [
        {
            "household_id": h.household_id,
            "head_id_number": h.members[0].id_number,
            "county_code": h.county_code,
            "address": h.address,
            "household_type": h.household_type,
            "member_count": len(h.members),
        }
        for h in world.households
    ]


def _enterprises(world: _World, count: int) -> tuple[list[dict], dict[str, int]]:
    """Enterprise rows, and the industry (index into _INDUSTRIES) of each credit code."""
    rng = world.rng
    adults = [p for p in world.persons if 22 <= p.age <= 70]
    # The first enterprise is run by a working-age 罗庄区 resident: the showcase's anchor.
    anchor_rep = next(p for p in world.persons if p.county_code == "371311" and 30 <= p.age <= 55)
    rows: list[dict] = []
    industries: dict[str, int] = {}
    used_codes: set[str] = set()
    used_names: set[str] = set()
    reps: list[_Person] = []
    for i in range(count):
        if i == 0:
            rep = anchor_rep
        elif reps and rng.random() < 0.08:  # some people run several enterprises
            rep = rng.choice(reps)
        else:
            rep = rng.choice(adults)
        reps.append(rep)
        county = rep.county_code if rng.random() < 0.75 else world.county()
        while True:
            code = make_credit_code(county, rng)
            if code not in used_codes:
                used_codes.add(code)
                break
        if i == 0:  # the anchor holds a licence
            industry = rng.choice([k for k, ind in enumerate(_INDUSTRIES) if ind[2]])
        else:
            industry = rng.randrange(len(_INDUSTRIES))
        suffix, scope, _, _ = _INDUSTRIES[industry]
        while True:
            trade = "".join(rng.sample(_TRADE_NAMES, 2))
            style = rng.random()
            if style < 0.5:
                name = f"临沂{trade}{suffix}有限公司"
            elif style < 0.8:
                name = f"临沂市{trade}{suffix}有限公司"
            else:
                place = COUNTIES[county]
                name = f"临沂{place[:-1] if len(place) == 3 else place}{trade}{suffix}有限公司"
            if name not in used_names:
                used_names.add(name)
                break
        earliest = max(date(1998, 1, 1), _add_years(rep.birth_date, 22))
        established = _between(rng, earliest, TODAY - timedelta(days=60))
        status = "存续" if i == 0 else rng.choices(["存续", "注销", "吊销"], weights=[85, 10, 5])[0]
        if rng.random() < 0.4 and suffix not in ("商贸", "餐饮管理", "医药", "电子科技"):
            address = (
                f"临沂市{COUNTIES[county]}{rng.choice(_INDUSTRIAL_PARKS)}{rng.choice(_ROADS)}{rng.randint(1, 999)}号"
            )
        else:
            address = world.address(county)
        rows.append(
            {
                "credit_code": code,
                "name": name,
                "legal_rep_id_number": rep.id_number,
                "legal_rep_name": rep.name,
                "county_code": county,
                "address": address,
                "registered_capital": Decimal(rng.choice(_CAPITALS)).quantize(Decimal("0.01")),
                "established_date": established,
                "business_scope": scope,
                "status": status,
            }
        )
        industries[code] = industry
    return rows, industries


def _licence_no(rng: random.Random, licence_type: str, enterprise: dict, issued: date, serial: int) -> str:
    county = enterprise["county_code"]
    if licence_type == "食品经营许可证":
        return f"JY{rng.choice('123')}{county}{serial:06d}{rng.randint(0, 9)}"
    if licence_type == "食品生产许可证":
        return f"SC{rng.choice(['101', '104', '111', '122'])}{county}{serial:05d}{rng.randint(0, 9)}"
    if licence_type == "道路运输经营许可证":
        return f"鲁交运管许可临字{county}{serial:06d}号"
    if licence_type == "药品经营许可证":
        return f"鲁AA539{serial:04d}"
    if licence_type == "危险化学品经营许可证":
        return f"鲁临危化经字[{issued.year}]{serial:06d}"
    if licence_type == "排污许可证":
        return f"{enterprise['credit_code']}001{rng.choice('PVWUX')}"
    return f"D3{county}{serial:05d}"  # 建筑业企业资质证书


def _licences(world: _World, enterprises: list[dict], industries: dict[str, int]) -> list[dict]:
    rng = world.rng
    rows: list[dict] = []
    serial = 0
    for i, e in enumerate(enterprises):
        types = _INDUSTRIES[industries[e["credit_code"]]][2]
        if not types:
            continue
        if i != 0 and rng.random() >= 0.7:
            continue
        for licence_type in types:
            serial += 1
            # Licences run five years; the current one was issued within the last seven.
            issued = _between(rng, max(e["established_date"], _add_years(TODAY, -7)), TODAY - timedelta(days=10))
            rows.append(
                {
                    "licence_no": _licence_no(rng, licence_type, e, issued, serial),
                    "credit_code": e["credit_code"],
                    "licence_type": licence_type,
                    "issued_date": issued,
                    "valid_until": _add_years(issued, 5) - timedelta(days=1),
                }
            )
    return rows


def _social_insurance(world: _World, enterprises: list[dict]) -> list[dict]:
    rng = world.rng
    active = [e for e in enterprises if e["status"] == "存续"]
    active_by_county: dict[str, list[dict]] = {}
    for e in active:
        active_by_county.setdefault(e["county_code"], []).append(e)
    employer_of: dict[str, dict] = {}
    # Legal representatives of working enterprises are mostly insured there.
    for i, e in enumerate(enterprises):
        if e["status"] == "存续" and e["legal_rep_id_number"] not in employer_of and (i == 0 or rng.random() < 0.8):
            employer_of[e["legal_rep_id_number"]] = e

    # The first working-age 兰山区 resident is insured: the showcase's anchor there.
    lanshan = next(p for p in world.persons if p.county_code == "371302" and 18 <= p.age < (60 if p.male else 55))

    rows: list[dict] = []
    for p in world.persons:
        retirement = 60 if p.male else 55
        if not 18 <= p.age < retirement:
            continue
        employer = employer_of.get(p.id_number)
        if employer is None:
            if p is not lanshan and rng.random() >= 0.55:
                continue
            local = active_by_county.get(p.county_code)
            if local and rng.random() < 0.8:
                employer = rng.choice(local)
            elif rng.random() < 0.9 and active:
                employer = rng.choice(active)
            else:
                employer = rng.choice(enterprises)
        anchor = employer is enterprises[0] and p.id_number == employer["legal_rep_id_number"]
        earliest = max(_add_years(p.birth_date, 18), employer["established_date"], date(1998, 1, 1))
        first_paid = _between(rng, earliest, TODAY - timedelta(days=62))
        if employer["status"] != "存续":
            status = "终止"
        elif anchor:
            status = "正常参保"
        else:
            status = rng.choices(["正常参保", "暂停缴费", "终止"], weights=[85, 10, 5])[0]
        if status == "正常参保":
            last_paid = date(TODAY.year, TODAY.month, 1) - timedelta(days=1)
        else:
            last_paid = _between(rng, first_paid, TODAY - timedelta(days=62))
        base = rng.triangular(4416, 22080, 5800)  # Shandong's 2026 contribution base range, 元
        rows.append(
            {
                "id_number": p.id_number,
                "name": p.name,
                "employer_credit_code": employer["credit_code"],
                "employer_name": employer["name"],
                "insurance_status": status,
                "monthly_base": _money(round(base)),
                "first_paid_date": first_paid,
                "last_paid_month": _month_str(last_paid),
                "county_code": employer["county_code"],
            }
        )
    return rows


def _marriages(world: _World) -> list[dict]:
    rng = world.rng
    rows: list[dict] = []
    serial: dict[tuple[str, int], int] = {}

    def registration_no(kind: str, county: str, on: date) -> str:
        key = (county, on.year)
        serial[key] = serial.get(key, 0) + 1
        return f"{kind}{county}-{on.year}-{serial[key]:06d}"

    def record(kind: str, husband: _Person, wife: _Person, on: date, county: str) -> None:
        rows.append(
            {
                "registration_no": registration_no("J" if kind == "结婚" else "L", county, on),
                "husband_id_number": husband.id_number,
                "husband_name": husband.name,
                "wife_id_number": wife.id_number,
                "wife_name": wife.name,
                "registration_type": kind,
                "registered_date": on,
                "county_code": county,
            }
        )

    # Couples living together: registered unless they married before the 1981 Marriage Law records.
    for h in world.households:
        if h.couple and h.couple[2] >= date(1981, 1, 1):
            husband, wife, married = h.couple
            record("结婚", husband, wife, married, h.county_code)
    # Some single adults married each other once and divorced since.
    singles = [
        h.members[0]
        for h in world.households
        if h.household_type == "家庭户" and len(h.members) == 1 and 27 <= h.members[0].age <= 45
    ]
    men = [p for p in singles if p.male]
    women = [p for p in singles if not p.male]
    for husband, wife in zip(men, women, strict=False):  # the longer list's last singles stay single
        if rng.random() >= 0.35:
            continue
        earliest = max(_add_years(husband.birth_date, 22), _add_years(wife.birth_date, 20))
        latest = TODAY - timedelta(days=400)
        if earliest >= latest:
            continue
        married = _between(rng, earliest, latest - timedelta(days=365))
        divorced = _between(rng, married + timedelta(days=365), latest)
        record("结婚", husband, wife, married, husband.county_code)
        record("离婚", husband, wife, divorced, husband.county_code)
    return rows


def _subsidies(world: _World, enterprises: list[dict], insurance: list[dict]) -> list[dict]:
    rng = world.rng
    reps = {e["legal_rep_id_number"] for e in enterprises}
    insured = {r["id_number"] for r in insurance if r["insurance_status"] == "正常参保"}
    rows: list[dict] = []
    serial: dict[str, int] = {}

    def add(p: _Person, kind: str, amount: float, start: date) -> None:
        code = {"最低生活保障": "DB", "特困人员供养": "TK", "临时救助": "LS"}[kind]
        key = p.county_code + code
        serial[key] = serial.get(key, 0) + 1
        rows.append(
            {
                "subsidy_id": f"{p.county_code}{code}{start.year}{serial[key]:06d}",
                "id_number": p.id_number,
                "name": p.name,
                "subsidy_type": kind,
                "monthly_amount": _money(round(amount)),
                "start_date": start,
                "county_code": p.county_code,
            }
        )

    for h in world.households:
        if h.household_type != "家庭户":
            continue
        head = h.members[0]
        if any(m.id_number in reps or m.id_number in insured for m in h.members):
            continue
        urban = h.county_code in DISTRICTS
        roll = rng.random()
        if len(h.members) == 1 and head.age >= 60 and roll < 0.25:
            add(
                head,
                "特困人员供养",
                rng.uniform(1100, 1450),
                _between(rng, date(2014, 1, 1), TODAY - timedelta(days=31)),
            )
        elif roll < 0.07:
            standard = 900 if urban else 680  # 元 per person per month
            amount = standard * len(h.members) * rng.uniform(0.35, 0.9)
            add(head, "最低生活保障", amount, _between(rng, date(2012, 1, 1), TODAY - timedelta(days=31)))
        elif roll < 0.085:
            add(
                head,
                "临时救助",
                rng.uniform(300, 1500),
                _between(rng, _add_years(TODAY, -1), TODAY - timedelta(days=7)),
            )
    if not rows:  # tiny worlds: still one recipient to show
        add(world.persons[-1], "临时救助", 800, TODAY - timedelta(days=30))
    return rows


def _real_estate(world: _World, enterprises: list[dict], industries: dict[str, int]) -> list[dict]:
    rng = world.rng
    rows: list[dict] = []
    serial: dict[tuple[str, int], int] = {}

    def add(
        owner_id: str, owner_name: str, kind: str, county: str, address: str, area: float, usage: str, earliest: date
    ) -> None:
        registered = _between(rng, max(earliest, date(2016, 1, 1)), TODAY - timedelta(days=1))
        registry = "临沂市" if county in DISTRICTS else COUNTIES[county]
        key = (registry, registered.year)
        if key not in serial:  # registries number on from earlier years' certificates
            serial[key] = rng.randint(800, 6000)
        serial[key] += rng.randint(1, 40)
        rows.append(
            {
                "certificate_no": f"鲁({registered.year}){registry}不动产权第{serial[key]:07d}号",
                "owner_id": owner_id,
                "owner_name": owner_name,
                "owner_kind": kind,
                "county_code": county,
                "address": address,
                "area": _money(area),
                "usage": usage,
                "registered_date": registered,
            }
        )

    for h in world.households:
        if h.household_type != "家庭户" or rng.random() >= 0.62:
            continue
        owner = h.members[0]
        if h.couple and rng.random() < 0.25:
            owner = h.couple[1] if owner is h.couple[0] else h.couple[0]
        earliest = _add_years(owner.birth_date, 20)
        add(owner.id_number, owner.name, "自然人", h.county_code, h.address, rng.uniform(55, 180), "住宅", earliest)
        if rng.random() < 0.1:  # a second home or a shop front
            usage = "住宅" if rng.random() < 0.7 else "商业"
            area = rng.uniform(60, 160) if usage == "住宅" else rng.uniform(25, 300)
            add(
                owner.id_number,
                owner.name,
                "自然人",
                h.county_code,
                world.address(h.county_code),
                area,
                usage,
                earliest,
            )
    for i, e in enumerate(enterprises):
        if i != 0 and (e["status"] != "存续" or rng.random() >= 0.35):
            continue
        usage = _INDUSTRIES[industries[e["credit_code"]]][3]
        area = rng.uniform(800, 30000) if usage == "工业" else rng.uniform(60, 1200)
        add(e["credit_code"], e["name"], "法人", e["county_code"], e["address"], area, usage, e["established_date"])
    return rows


# --- the build ------------------------------------------------------------------------------


def _engine_for(url: str):
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed)


def build_sources(urls: dict[str, str], *, seed: int = 2019, persons: int = 3000, enterprises: int = 1000) -> dict:
    """Generate the demo world and (re)create every department's tables in its database.

    ``urls`` maps each of ``DEPARTMENTS`` to a synchronous SQLAlchemy URL. Tables are dropped and
    created again, so the build can be re-run. Returns ``{"seed", "counts", "showcase"}``: the row
    count of each ``department.table`` and stable example keys for documentation and tests.
    """
    missing = [d for d in DEPARTMENTS if d not in urls]
    if missing:
        raise ValueError(f"no database URL for department(s): {', '.join(missing)}")
    if persons < 100 or enterprises < 5:
        raise ValueError("the demo world needs at least 100 persons and 5 enterprises")

    world = _World(seed)
    world.populate(persons)
    enterprise_rows, industries = _enterprises(world, enterprises)
    licence_rows = _licences(world, enterprise_rows, industries)
    insurance_rows = _social_insurance(world, enterprise_rows)
    marriage_rows = _marriages(world)
    subsidy_rows = _subsidies(world, enterprise_rows, insurance_rows)
    estate_rows = _real_estate(world, enterprise_rows, industries)

    data: dict[str, dict[str, list[dict]]] = {
        "police": {"household": _household_rows(world), "person": _person_rows(world)},
        "market": {"enterprise": enterprise_rows, "licence": licence_rows},
        "hrss": {"social_insurance": insurance_rows},
        "civil": {"marriage": marriage_rows, "subsidy": subsidy_rows},
        "land": {"real_estate": estate_rows},
    }
    for dept in DEPARTMENTS:
        metadata = METADATA[dept]
        engine = _engine_for(urls[dept])
        try:
            with engine.begin() as conn:
                metadata.drop_all(conn)
                metadata.create_all(conn)
                for table in metadata.sorted_tables:
                    rows = data[dept][table.name]
                    if rows:
                        conn.execute(insert(table), rows)
        finally:
            engine.dispose()

    return {
        "seed": seed,
        "counts": {f"{dept}.{name}": len(rows) for dept in DEPARTMENTS for name, rows in data[dept].items()},
        "showcase": _showcase(
            world, enterprise_rows, licence_rows, insurance_rows, marriage_rows, subsidy_rows, estate_rows
        ),
    }


def _showcase(
    world: _World,
    enterprises: list[dict],
    licences: list[dict],
    insurance: list[dict],
    marriages: list[dict],
    subsidies: list[dict],
    estates: list[dict],
) -> dict[str, str]:
    insured = {r["id_number"] for r in insurance}
    reps = {e["legal_rep_id_number"] for e in enterprises}
    licensed = {r["credit_code"] for r in licences}
    owners = {r["owner_id"] for r in estates}
    divorced = {r["husband_id_number"] for r in marriages if r["registration_type"] == "离婚"}
    return {
        "person_luozhuang": next(
            p.id_number
            for p in world.persons
            if p.county_code == "371311" and p.id_number in reps and p.id_number in insured
        ),
        "person_lanshan": next(
            p.id_number for p in world.persons if p.county_code == "371302" and p.id_number in insured
        ),
        "person_subsidy": subsidies[0]["id_number"],
        "enterprise": next(
            e["credit_code"] for e in enterprises if e["credit_code"] in licensed and e["credit_code"] in owners
        ),
        "married_person": next(
            r["husband_id_number"]
            for r in marriages
            if r["registration_type"] == "结婚" and r["husband_id_number"] not in divorced
        ),
    }
