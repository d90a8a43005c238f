"""A small Zhoushan-like demo city, written as the CSV files `gridline import` reads.

定海区 (DH) with an urban street office (解放街道: estates and numbered roads) and
a rural fishing town (干览镇: villages made of natural villages), two communities
or villages each, two grids each. Everything is fixed data: the same city every
time, so the printed instructions and the tests can name its phones.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

# (code, name, parent code) per level; grids are generated below from their community.
_COUNTY = ("DH", "定海区")
_TOWNS = (("DH-JF", "解放街道", "DH"), ("DH-GL", "干览镇", "DH"))
_COMMUNITIES = (
    ("DH-JF-WS", "翁山社区", "DH-JF"),
    ("DH-JF-XD", "西大街社区", "DH-JF"),
    ("DH-GL-XMT", "西码头村", "DH-GL"),
    ("DH-GL-XJ", "新建村", "DH-GL"),
)
_GRID_ORDINALS = ("第一网格", "第二网格")


def _grids() -> list[tuple[str, str, str]]:
    return [
        (f"{code}-{n:02d}", f"{name}{ordinal}", code)
        for code, name, _town in _COMMUNITIES
        for n, ordinal in enumerate(_GRID_ORDINALS, 1)
    ]


GRIDS = [code for code, _name, _parent in _grids()]

# Gazetteer: estate + building, road + number, village + natural village.
_ADDRESSES: dict[str, tuple[str, ...]] = {
    "DH-JF-WS-01": ("翁山新村1幢", "翁山新村2幢", "翁山新村3幢"),
    "DH-JF-WS-02": ("翁山新村4幢", "翁山新村5幢", "翁山新村6幢", "海山公寓"),
    "DH-JF-XD-01": ("人民路10号", "人民路12号", "人民路14号", "人民路16号"),
    "DH-JF-XD-02": ("西大街8号", "西大街10号", "西大街12号", "芙蓉洲路3号"),
    "DH-GL-XMT-01": ("西码头村大岙", "西码头村后岙"),
    "DH-GL-XMT-02": ("西码头村小岙", "西码头村前岙"),
    "DH-GL-XJ-01": ("新建村樟州", "新建村南洞"),
    "DH-GL-XJ-02": ("新建村黄沙岙", "新建村洞岙"),
}

# Each grid's team: the grid's cadre (网格长) first, then its Party group leader,
# then a third member from the specialists who serve that grid.
_TEAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "DH-JF-WS-01": (("张伟", "cadre"), ("李秀英", "party_leader"), ("王芳", "doctor")),
    "DH-JF-WS-02": (("刘洋", "cadre"), ("陈静", "party_leader"), ("杨磊", "police")),
    "DH-JF-XD-01": (("赵敏", "cadre"), ("黄建国", "party_leader"), ("周婷", "teacher")),
    "DH-JF-XD-02": (("吴刚", "cadre"), ("徐丽", "party_leader"), ("孙浩", "volunteer")),
    "DH-GL-XMT-01": (("胡海军", "cadre"), ("朱桂芳", "party_leader"), ("郭勇", "technician")),
    "DH-GL-XMT-02": (("何志强", "cadre"), ("林美华", "party_leader"), ("罗斌", "police")),
    "DH-GL-XJ-01": (("郑国平", "cadre"), ("梁淑珍", "party_leader"), ("谢文", "doctor")),
    "DH-GL-XJ-02": (("宋建华", "cadre"), ("唐亚萍", "party_leader"), ("韩涛", "volunteer")),
}
_OFFICES = (
    ("DH", "13958000001", "定海区网格中心值班"),
    ("DH-JF", "13958000010", "解放街道网格办值班"),
    ("DH-GL", "13958000020", "干览镇网格办值班"),
)


def member_phone(grid: str, index: int) -> str:
    """The demo phone of the `index`-th (0-based) team member of `grid`."""
    return f"1385800{GRIDS.index(grid) + 1:02d}{index + 1:02d}"


# (name, address, grid_code or "" to derive it from the address, tags)
_RESIDENTS: tuple[tuple[str, str, str, str], ...] = (
    ("陈阿姨", "翁山新村3幢2单元301室", "", "elderly;living_alone"),
    ("林大伯", "翁山新村1幢1单元102室", "", "elderly"),
    ("王小红", "翁山新村2幢502室", "", ""),
    ("张建军", "翁山新村3幢4单元201室", "DH-JF-WS-01", ""),
    ("徐美娟", "翁山新村5幢1单元601室", "", "low_income"),
    ("周永康", "翁山新村6幢203室", "", "elderly;disabled"),
    ("蒋丽", "海山公寓1幢1102室", "", ""),
    ("沈国强", "翁山新村4幢302室", "DH-JF-WS-02", ""),
    ("钱阿婆", "人民路12号3楼", "", "elderly;living_alone"),
    ("孔伟", "人民路10号", "", ""),
    ("曹丽娜", "人民路16号2单元401室", "", ""),
    ("严宏", "人民路14号", "", "low_income"),
    ("华桂兰", "西大街8号", "", "elderly"),
    ("金晓东", "西大街10号302室", "", ""),
    ("魏芳", "芙蓉洲路3号1单元101室", "", ""),
    ("陶建平", "西大街12号", "DH-JF-XD-02", ""),
    ("姜阿根", "干览镇西码头村大岙21号", "", "elderly;fisher"),
    ("戚海燕", "西码头村后岙5号", "", ""),
    ("谢大海", "西码头村大岙7号", "", "fisher"),
    ("邹玉兰", "西码头村小岙12号", "", "elderly;living_alone"),
    ("喻建明", "西码头村前岙3号", "", "fisher"),
    ("柏秀珍", "干览镇西码头村小岙30号", "", "elderly"),
    ("水根宝", "新建村樟州18号", "", "elderly"),
    ("窦丽萍", "新建村南洞6号", "", ""),
    ("章永福", "新建村樟州2号", "", "low_income"),
    ("云海波", "新建村黄沙岙9号", "", "fisher"),
    ("苏阿婆", "新建村洞岙1号", "", "elderly;living_alone"),
    ("潘国华", "新建村黄沙岙15号", "", ""),
    ("葛春燕", "新建村洞岙22号", "DH-GL-XJ-02", ""),
    ("范立新", "干览镇新建村南洞11号", "", ""),
)


def resident_phone(index: int) -> str:
    return f"1375800{index + 1:04d}"


# Shifts start on Monday 2026-01-05 and recur; local wall-clock times.
_DAY = ("2026-01-05T08:30:00", "2026-01-05T17:30:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
_NIGHT = ("2026-01-05T17:30:00", "2026-01-06T08:30:00", "FREQ=DAILY")

DEMO_ADDRESS = "人民路12号"
DEMO_PHONES: dict[str, str] = {
    # 陈阿姨, registered at 翁山新村3幢 in DH-JF-WS-01.
    "resident": resident_phone(0),
    # Not registered anywhere: the hotline asks where they are.
    "stranger": "13758009999",
    # 张伟, cadre of DH-JF-WS-01: on the weekday day shift and, so that the demo
    # works at any hour, on that grid's night shift too.
    "worker": member_phone("DH-JF-WS-01", 0),
    "town_office": "13958000010",
    "county_office": "13958000001",
}


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_demo_city(folder: Path) -> None:
    """Write regions, members, addresses, residents and roster CSV files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    regions = [(_COUNTY[0], _COUNTY[1], "county", "")]
    regions += [(code, name, "town", parent) for code, name, parent in _TOWNS]
    regions += [(code, name, "community", parent) for code, name, parent in _COMMUNITIES]
    regions += [(code, name, "grid", parent) for code, name, parent in _grids()]
    _write(folder / "regions.csv", ("code", "name", "level", "parent_code"), regions)

    members = [
        (member_phone(grid, i), name, role, grid)
        for grid, team in _TEAMS.items()
        for i, (name, role) in enumerate(team)
    ]
    members += [(phone, name, "office", unit) for unit, phone, name in _OFFICES]
    _write(folder / "members.csv", ("phone", "name", "role", "unit_code"), members)

    addresses = [(text, grid) for grid, texts in _ADDRESSES.items() for text in texts]
    _write(folder / "addresses.csv", ("address", "grid_code"), addresses)

    residents = [
        (resident_phone(i), name, address, grid, tags)
        for i, (name, address, grid, tags) in enumerate(_RESIDENTS)
    ]
    _write(folder / "residents.csv", ("phone", "name", "address", "grid_code", "tags"), residents)

    roster: list[tuple[str, str, str, str, str]] = []
    for grid in GRIDS:
        roster.append((grid, member_phone(grid, 0), *_DAY))
        roster.append((grid, member_phone(grid, 2), *_NIGHT))
    roster.append(("DH-JF-WS-01", DEMO_PHONES["worker"], *_NIGHT))
    _write(folder / "roster.csv", ("unit_code", "phone", "starts_at", "ends_at", "rrule"), roster)
