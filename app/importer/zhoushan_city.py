"""A generated city of Zhoushan's shape, for `gridline demo --scale zhoushan` and `bench/`.

4 county-level units, 43 towns and street offices, ~2,360 grids, ~370,000
households, ~21,000 team members with rosters, and a boundary per grid.
Addresses are written the way the gazetteer of such a city reads: estates with
numbered buildings and roads with numbers in the street offices (a long road
crosses communities; most districts have a 人民路), administrative villages made
of natural villages in the towns, island villages in the 乡. Deterministic: one
seed, one city, so the evaluation set and the benchmarks name the same places.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SEED = 2026
HOUSEHOLDS = 370_000
GRIDS = 2_360
MEMBERS_PER_GRID = 9  # 2,360 × 9 ≈ 21,000 team members

COUNTIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("DH", "定海区", ("解放街道", "昌国街道", "环南街道", "城东街道", "盐仓街道", "临城街道",
                    "岑港街道", "马岙街道", "双桥街道", "干览镇", "金塘镇", "白泉镇")),
    ("PT", "普陀区", ("沈家门街道", "东港街道", "朱家尖街道", "展茅街道", "勾山街道", "六横镇",
                    "桃花镇", "虾峙镇", "东极镇", "普陀山镇", "佛渡乡", "白沙乡", "登步乡")),
    ("DS", "岱山县", ("高亭镇", "东沙镇", "岱西镇", "岱东镇", "长涂镇", "衢山镇", "秀山乡",
                    "鱼山乡", "大长涂乡", "小长涂乡")),
    ("SS", "嵊泗县", ("菜园镇", "嵊山镇", "洋山镇", "五龙乡", "黄龙乡", "枸杞乡", "花鸟乡",
                    "马关镇")),
)  # fmt: skip


def _words(text: str) -> list[str]:
    return text.split()


_WEIGHT = {"街道": 80, "镇": 55, "乡": 25}
_ESTATE_HEADS = _words(
    "翁山 海山 金鸡 东海 南珍 芙蓉 昌国 蓬莱 紫微 银杏 锦绣 碧海 海天 龙峰 新城 和平 幸福 "
    "阳光 明珠 春晓 丹桂 香樟 滨港 鲁家 桃湾 岱峰 东岳 长峙 茶山 竹山 半升 荷花 金平 临港 "
    "青垒 钓门 沥港 白泉 沙田 晓峰 港湾 渔港 海景 兰秀 观音 普济 莲花 凤凰 书香 翠湖 "
    "嘉和 盛世 泰和 文化 体育 育才 华侨 新桥 城北 城东 城南 城西 中昌 北山 海滨 长岗"
)
_ESTATE_TAILS = ("新村", "小区", "花园", "公寓", "家园", "嘉园", "苑", "华庭")
_ROADS = _words(
    "人民路 解放路 中山路 环城南路 环城北路 东海路 海洲路 昌国路 人民北路 人民南路 文化路 "
    "新河路 滨港路 东港路 海印路 兴港路 鲁家峙路 菜园路 沙河路 青龙路 健康路 平阳路 长峙路 "
    "临港路 翁洲路 合兴路 千岛路 金岛路 海天大道 东河路 西河路 南珍路 北山路 学院路 体育路"
)
_VILLAGE_HEADS = _words(
    "新建 东风 红星 光明 胜利 前进 民主 团结 五一 七一 西码头 东岙 里钓 外钓 长白 大鹏 "
    "小沙 马岙 北蝉 册子 金塘 沥港 大丰 柳行 和建 化成 山潭 大浦 叶家 洋坦 岑港 烟墩 "
    "桥头 黄杨尖 大支 小支 鸭蛋 东极 庙子湖 青浜 黄兴 枸杞 嵊山 花鸟 泗洲塘 田岙 石子门"
)
_NATURAL = _words(
    "大岙 后岙 前岙 小岙 樟州 南洞 黄沙岙 洞岙 石门 里岙 外岙 西岙 东岙 塘头 岭下 山前 湾里 "
    "沙头 礁头 柴门 上庄 下庄 岙口 山脚 大平 小平 船厂 渔村 长坑 竹湾 涨茨 碶头 大坑 小坑 "
    "北岙 南岙 中岙 龙潭 西山 东山"
)
_SURNAMES = _words(
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 郑 梁 谢 宋 唐 许 韩 邬 乐"
)
_GIVEN = _words(
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 海 建国"
)
_ROLES = (
    "cadre", "party_leader", "doctor", "teacher", "police", "technician",
    "volunteer", "volunteer", "volunteer",
)  # fmt: skip


@dataclass
class Place:
    """A gazetteer entry of the city, and what kind of place it is."""

    text: str
    grid: str
    kind: str  # building | road | natural
    stem: str  # the estate, road or administrative village
    number: int | None = None  # building or house number
    households: int = 0


@dataclass
class City:
    regions: list[tuple[str, str, str, str]] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    members: list[tuple[str, str, str, str]] = field(default_factory=list)
    roster: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    shapes: dict[str, list[list[float]]] = field(default_factory=dict)
    seed: int = SEED

    @property
    def grids(self) -> list[str]:
        return [code for code, _n, level, _p in self.regions if level == "grid"]

    def residents(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(phone, name, address, grid_code, tags) for every household, in a fixed order."""
        rng = random.Random(self.seed + 1)
        n = 0
        for place in self.places:
            for _ in range(place.households):
                n += 1
                name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
                if place.kind == "natural":
                    address = f"{place.text}{rng.randint(1, 60)}号"
                else:
                    unit, floor, room = rng.randint(1, 4), rng.randint(1, 18), rng.randint(1, 4)
                    address = f"{place.text}{unit}单元{floor}0{room}室"
                tags = "elderly" if rng.random() < 0.12 else ""
                yield resident_phone(n), name, address, place.grid, tags


def resident_phone(n: int) -> str:
    return f"135{n:08d}"


def member_phone(n: int) -> str:
    return f"139{n:08d}"


def generate(*, seed: int = SEED, households: int = HOUSEHOLDS, grids: int = GRIDS) -> City:
    """The city's regions, gazetteer, teams, rosters and grid shapes (residents on demand)."""
    rng = random.Random(seed)
    city = City(seed=seed)
    towns = [(c, cn, t, i) for c, cn, ts in COUNTIES for i, t in enumerate(ts, 1)]
    weights = [_WEIGHT["街道" if t.endswith("街道") else t[-1]] for _c, _cn, t, _i in towns]
    per_town = [max(2, round(grids * w / sum(weights))) for w in weights]
    per_grid = households / sum(per_town)
    for county, county_name, _towns in COUNTIES:
        city.regions.append((county, county_name, "county", ""))
    for (county, _cn, town_name, i), n_grids in zip(towns, per_town, strict=True):
        town = f"{county}-{i:02d}"
        city.regions.append((town, town_name, "town", county))
        if town_name.endswith("街道"):
            _urban(city, rng, town, n_grids, per_grid)
        else:
            # Towns have a small urban centre; 乡 are island villages only.
            urban = n_grids // 4 if town_name.endswith("镇") else 0
            if urban:
                _urban(city, rng, town, urban, per_grid, first=1)
            _rural(city, rng, town, n_grids - urban, per_grid, first=50)
    # Scale the households of each place so that the city has `households` in all.
    factor = households / max(1, sum(p.households for p in city.places))
    for place in city.places:
        place.households = max(1, round(place.households * factor))
    _teams(city, rng)
    return city


def _grid(city: City, community: str, community_name: str, k: int) -> str:
    code = f"{community}-{k}"
    name = f"{community_name}第{k}网格"
    city.regions.append((code, name, "grid", community))
    index = len(city.shapes)
    x, y = 121.5 + (index % 60) * 0.02, 29.5 + (index // 60) * 0.02
    city.shapes[code] = [[x, y], [x + 0.02, y], [x + 0.02, y + 0.02], [x, y + 0.02], [x, y]]
    return code


def _urban(
    city: City, rng: random.Random, town: str, n_grids: int, per_grid: float, first: int = 1
) -> None:
    """Communities of ~6 grids: estates spread over grids, roads crossing communities."""
    heads = rng.sample(_ESTATE_HEADS, k=min(len(_ESTATE_HEADS), n_grids))
    roads = rng.sample(_ROADS, k=min(len(_ROADS), max(3, n_grids // 5)))
    road_next = {road: 1 for road in roads}
    made, c = 0, first
    while made < n_grids:
        community = f"{town}-{c:02d}"
        head = heads[(c - first) % len(heads)]
        city.regions.append((community, f"{head}社区", "community", town))
        estate = f"{head}{rng.choice(_ESTATE_TAILS)}"
        building = 1
        for k in range(1, min(6, n_grids - made) + 1):
            grid = _grid(city, community, f"{head}社区", k)
            households = max(40, round(rng.gauss(per_grid * 1.6, per_grid * 0.2)))
            if k % 3 != 0:  # buildings of the community's estate
                count = rng.randint(4, 8)
                for _ in range(count):
                    city.places.append(
                        Place(f"{estate}{building}幢", grid, "building", estate, building,
                              households // count)
                    )  # fmt: skip
                    building += 1
            else:  # a stretch of a road (numbers go on where the last stretch ended)
                road = rng.choice(roads)
                count = rng.randint(5, 10)
                for _ in range(count):
                    number = road_next[road]
                    city.places.append(
                        Place(f"{road}{number}号", grid, "road", road, number, households // count)
                    )
                    road_next[road] += 2
            made += 1
        c += 1


def _rural(
    city: City, rng: random.Random, town: str, n_grids: int, per_grid: float, first: int
) -> None:
    """Administrative villages of 1-4 grids, each grid one to three natural villages."""
    heads = rng.sample(_VILLAGE_HEADS, k=min(len(_VILLAGE_HEADS), n_grids))
    made, v = 0, 0
    while made < n_grids:
        village = f"{heads[v % len(heads)]}村"
        community = f"{town}-{first + v:02d}"
        city.regions.append((community, village, "community", town))
        naturals = rng.sample(_NATURAL, k=12)
        for k in range(1, min(rng.randint(1, 4), n_grids - made) + 1):
            grid = _grid(city, community, village, k)
            households = max(30, round(rng.gauss(per_grid * 0.8, per_grid * 0.1)))
            count = rng.randint(1, 3)
            for _ in range(count):
                name = naturals.pop()
                city.places.append(
                    Place(f"{village}{name}", grid, "natural", village, None, households // count)
                )
            made += 1
        v += 1


def _teams(city: City, rng: random.Random) -> None:
    n = 0
    for grid in city.grids:
        for role in _ROLES:
            n += 1
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            city.members.append((member_phone(n), name, role, grid))
        day = member_phone(n - len(_ROLES) + 1)
        night = member_phone(n - len(_ROLES) + 3)
        city.roster.append(
            (grid, day, "2026-01-05T08:30:00", "2026-01-05T17:30:00",
             "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
        )  # fmt: skip
        city.roster.append(
            (grid, night, "2026-01-05T17:30:00", "2026-01-06T08:30:00", "FREQ=DAILY")
        )
    for code, name, level, _p in city.regions:
        if level in ("town", "county"):
            n += 1
            city.members.append((member_phone(n), f"{name}值班", "office", code))


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def write_city(
    folder: Path, city: City, *, progress: Callable[[str], None] = lambda _s: None
) -> None:
    """Write the import files (CSV and grids.geojson) of `city` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "regions.csv", ("code", "name", "level", "parent_code"), city.regions)
    _write(folder / "members.csv", ("phone", "name", "role", "unit_code"), city.members)
    _write(
        folder / "addresses.csv", ("address", "grid_code"), [(p.text, p.grid) for p in city.places]
    )
    households = _write(
        folder / "residents.csv", ("phone", "name", "address", "grid_code", "tags"),
        city.residents(),
    )  # fmt: skip
    _write(
        folder / "roster.csv", ("unit_code", "phone", "starts_at", "ends_at", "rrule"), city.roster
    )
    features = [
        {
            "type": "Feature",
            "properties": {"code": code},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
        for code, ring in city.shapes.items()
    ]
    (folder / "grids.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    progress(
        f"generated {len(city.regions)} regions ({len(city.grids)} grids), "
        f"{len(city.places)} addresses, {households} households, {len(city.members)} members, "
        f"{len(city.roster)} shifts"
    )


SCALES = ("small", "zhoushan")


def write_demo(
    folder: Path, scale: str, *, progress: Callable[[str], None] = lambda _s: None
) -> dict[str, str]:
    """Write the demo city of `scale` into `folder`; the phones the instructions name."""
    if scale == "small":
        from app.importer.demo_city import DEMO_PHONES, write_demo_city

        write_demo_city(folder)
        return DEMO_PHONES
    if scale != "zhoushan":
        raise ValueError(f"unknown scale '{scale}' (one of {', '.join(SCALES)})")
    progress("generating a city of Zhoushan's shape…")
    write_city(folder, generate(), progress=progress)
    return {
        "resident": resident_phone(1),
        "stranger": "13758009999",
        "worker": member_phone(1),  # cadre of the first resident's grid
    }
