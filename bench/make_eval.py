"""Write bench/data/routing_eval.csv: resident texts labelled with the grid they mean, or "ask".

    .venv/bin/python -m bench.make_eval

Deterministic (a fixed seed over the generated Zhoushan-scale city, see
`app.importer.zhoushan_city`). Texts are written the way residents write: Chinese numerals
and ordinals, building synonyms, full-width digits, spaces and punctuation,
leading city/district/town names, units and rooms, a typo or a homophone, a
missing building or number, chatter around the address, phone numbers and
other digits, no address at all; plus hand-written hard phrasings.

The label is what a careful operator would do with the text and nothing else:
the grid when the text (with the sender's registered home, if any) names one
place of one grid; "ask" when it names a place of several grids that neither
the text's area names nor the sender's home tell apart, or nothing at all.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from pathlib import Path

from app.importer.zhoushan_city import City, _words, generate

OUT = Path(__file__).parent / "data" / "routing_eval.csv"
SEED = 7
_PROBLEMS = (
    "楼道灯坏了", "下水道堵了", "门口垃圾好几天没人清", "路灯不亮", "水管漏水", "电梯坏了",
    "邻居装修太吵", "屋顶漏雨", "家里停水了", "窨井盖没了", "有人乱停车堵住消防通道",
    "老人摔倒了需要帮忙", "台风把树吹倒了", "狗整夜叫", "墙上有裂缝",
)  # fmt: skip
_CN = "零一二三四五六七八九"
_HOMOPHONES = {
    "山": "三", "新": "心", "村": "存", "海": "还", "东": "冬", "路": "陆", "华": "化",
    "园": "元", "港": "岗", "和": "河", "平": "苹", "民": "明", "中": "钟", "花": "华",
    "公": "工", "阳": "杨", "光": "广", "城": "成", "南": "难", "北": "背", "西": "希",
    "岙": "奥", "湖": "糊", "家": "佳", "文": "闻", "金": "今", "龙": "隆",
}  # fmt: skip


def cn_number(n: int) -> str:
    """3 → 三, 12 → 十二, 25 → 二十五 (as residents write them)."""
    if n < 10:
        return _CN[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN[tens]) + "十" + (_CN[ones] if ones else "")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


class Labeller:
    """Ground truth from the city's own data, independent of the engine."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.parent = {code: up for code, _n, _l, up in city.regions}
        self.name = {code: name for code, name, _l, _up in city.regions}
        self.by_text: dict[str, set[str]] = defaultdict(set)
        self.by_stem: dict[str, set[str]] = defaultdict(set)
        self.by_stem_number: dict[tuple[str, int], set[str]] = defaultdict(set)
        for p in city.places:
            self.by_text[p.text].add(p.grid)
            self.by_stem[p.stem].add(p.grid)
            if p.number is not None:
                self.by_stem_number[(p.stem, p.number)].add(p.grid)

    def lineage(self, grid: str) -> list[str]:
        out, node = [], grid
        while node:
            out.append(node)
            node = self.parent[node]
        return out

    def town(self, grid: str) -> str:
        return self.lineage(grid)[-2]

    def county(self, grid: str) -> str:
        return self.lineage(grid)[-1]

    def label(self, grids: set[str], *, named: str = "", home: str = "") -> str:
        """One grid, or "ask"; `named` is an area name the text gives."""
        if named:
            grids = {g for g in grids if any(self.name[a] == named for a in self.lineage(g)[1:])}
        if len(grids) == 1:
            return next(iter(grids))
        if home and grids:
            mine = set(self.lineage(home))
            best = max(len(mine & set(self.lineage(g))) for g in grids)
            closest = {g for g in grids if len(mine & set(self.lineage(g))) == best}
            if home in grids:
                return home
            if len(closest) == 1 and best >= 1:  # sharing a county at least
                return next(iter(closest))
        return "ask"


def _typo(rng: random.Random, stem: str) -> str | None:
    spots = [i for i, c in enumerate(stem) if c in _HOMOPHONES]
    if len(stem) < 4 or not spots:
        return None
    i = rng.choice(spots)
    return stem[:i] + _HOMOPHONES[stem[i]] + stem[i + 1 :]


def _rows(city: City, rng: random.Random) -> list[tuple[str, str, str, str]]:
    lab = Labeller(city)
    rows: list[tuple[str, str, str, str]] = []
    places = [p for p in city.places]
    grids = city.grids

    def add(kind: str, text: str, expected: str, home: str = "") -> None:
        rows.append((kind, text, home, expected))

    def problem() -> str:
        return rng.choice(_PROBLEMS)

    for _ in range(90):  # the address as registered, with unit and room
        p = rng.choice(places)
        tail = f"{rng.randint(1, 3)}单元{rng.randint(1, 9)}0{rng.randint(1, 4)}室"
        where = p.text + (tail if p.kind != "natural" else f"{rng.randint(1, 40)}号")
        add("plain", f"{where}{problem()}", lab.label(lab.by_text[p.text]))
    for _ in range(60):  # numerals, ordinals and synonyms for the building
        p = rng.choice([q for q in places if q.kind == "building"])
        assert p.number is not None
        word = rng.choice(
            [f"{cn_number(p.number)}幢", f"{cn_number(p.number)}号楼", f"第{cn_number(p.number)}幢",
             f"{p.number}栋", f"{p.number}号楼", f"{cn_number(p.number)}栋", f"{p.number}座"]
        )  # fmt: skip
        add("numerals", f"{p.stem}{word}{problem()}", lab.label(lab.by_text[p.text]))
    for _ in range(40):  # full-width digits, spaces, punctuation
        p = rng.choice([q for q in places if q.number is not None])
        text = fullwidth(f"{p.text}") + rng.choice(["，", " ", "。", "！", "  "]) + problem()
        text = text.replace(p.stem, " ".join(p.stem) if rng.random() < 0.3 else p.stem)
        add("fullwidth", text, lab.label(lab.by_text[p.text]))
    for _ in range(60):  # leading city / district / town names
        p = rng.choice(places)
        town, county = lab.town(p.grid), lab.county(p.grid)
        lead = rng.choice(
            [f"舟山市{lab.name[county]}{lab.name[town]}", lab.name[town], f"{lab.name[county]}"]
        )
        named = lab.name[town] if lab.name[town] in lead else lab.name[county]
        where = p.text + (f"{rng.randint(1, 40)}号" if p.kind == "natural" else "")
        add("area", f"{lead}{where}{problem()}", lab.label(lab.by_text[p.text], named=named))
    for _ in range(60):  # a typo or a homophone in the estate, road or village name
        p = rng.choice(places)
        typo = _typo(rng, p.stem)
        if typo is None:
            continue
        where = p.text.replace(p.stem, typo, 1)
        add("typo", f"{where}{problem()}", lab.label(lab.by_text[p.text]))
    for _ in range(30):  # a slip of the finger: a character that is no homophone
        p = rng.choice([q for q in places if len(q.stem) >= 4])
        i = rng.randrange(len(p.stem))
        slip = (
            p.stem[:i]
            + rng.choice("的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要")
            + p.stem[i + 1 :]
        )
        where = p.text.replace(p.stem, slip, 1)
        add("slip", f"{where}{problem()}", lab.label(lab.by_text[p.text]))
    for _ in range(20):  # the wrong district named with an address that exists in one place only
        p = rng.choice([q for q in places if len(lab.by_text[q.text]) == 1])
        other = rng.choice(
            [c for c, n, lvl, _u in city.regions if lvl == "county" and c != lab.county(p.grid)]
        )
        where = p.text + (f"{rng.randint(1, 40)}号" if p.kind == "natural" else "")
        add("wrongarea", f"{lab.name[other]}{where}{problem()}", p.grid)
    for _ in range(50):  # the building or number left out
        p = rng.choice(places)
        add("missing", f"{p.stem}{problem()}", lab.label(lab.by_stem[p.stem]))
    for _ in range(50):  # registered residents writing about home without an address
        home = rng.choice(grids)
        add("home", problem(), home, home)
    for _ in range(40):  # a registered resident writing about another place
        home, p = rng.choice(grids), rng.choice(places)
        add("elsewhere", f"{p.text}{problem()}", lab.label(lab.by_text[p.text], home=home), home)
    for _ in range(40):  # a name shared by several towns, from someone who lives in one
        p = rng.choice([q for q in places if len(lab.by_text[q.text]) > 1])
        home = rng.choice([g for g in grids if lab.town(g) == lab.town(p.grid)])
        add("shared", f"{p.text}{problem()}", lab.label(lab.by_text[p.text], home=home), home)
    for _ in range(30):  # no address and nobody we know
        add("nothing", rng.choice(["你好", "请问", "喂"]) + problem(), "ask")
    for _ in range(30):  # chatter with other digits around the address
        p = rng.choice([q for q in places if q.number is not None])
        text = rng.choice(
            [f"我是{rng.randint(60, 90)}岁老人，住{p.text}，{problem()}",
             f"电话138{rng.randint(10000000, 99999999)}，地址{p.text}{problem()}",
             f"已经{rng.randint(2, 9)}天了！{p.text}{problem()}，2楼也一样"]
        )  # fmt: skip
        add("chatter", text, lab.label(lab.by_text[p.text]))
    for _ in range(30):  # a road number that is not in the gazetteer (even side)
        p = rng.choice([q for q in places if q.kind == "road"])
        assert p.number is not None
        number = p.number + 1
        add("unlisted", f"{p.stem}{number}号{problem()}", lab.label(lab.by_stem[p.stem]))
    rows += _hard(city, lab, rng)
    return rows


def _hard(city: City, lab: Labeller, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """Hand-written phrasings, filled with places of the city that make them hard."""
    spread = [p for p in city.places if p.kind == "building" and len(lab.by_stem[p.stem]) > 1]
    natural = [p for p in city.places if p.kind == "natural"]
    roads = [p for p in city.places if p.kind == "road"]
    out: list[tuple[str, str, str, str]] = []
    phrasings = (
        ("hard", "俺家在{stem}那边，{n}号楼楼下的垃圾好几天没人收了", "building"),
        ("hard", "喂 我是{place}的 老人家里没水了 快来看看", "natural"),
        ("hard", "{place}旁边的窨井盖没了!!!小孩差点掉下去", "road"),
        ("hard", "{stem}{cn}幢{u}单元的电梯又坏了，上次修了没用", "building"),
        ("hard", "您好，{stem} 第{cn}栋 楼顶漏水，麻烦尽快", "building"),
        ("hard", "2号楼302的王阿姨说{place}有人晕倒", "building"),
        ("hard", "【求助】{place}  停电了", "natural"),
        ("hard", "{stem}那里的路灯都不亮", "building"),
    )
    for i in range(80):
        kind, template, what = phrasings[i % len(phrasings)]
        p = rng.choice({"building": spread, "natural": natural, "road": roads}[what])
        n = p.number or 1
        text = template.format(stem=p.stem, n=n, cn=cn_number(n), u=rng.randint(1, 3), place=p.text)
        if "{n}" in template or "{cn}" in template:
            expected = lab.label(lab.by_stem_number[(p.stem, n)] or lab.by_text[p.text])
        elif "{stem}那里" in template:
            expected = lab.label(lab.by_stem[p.stem])
        else:
            expected = lab.label(lab.by_text[p.text])
        out.append((kind, text, "", expected))
    # Places missing from the gazetteer (new estates, a business's name): an
    # operator would ask; a fuzzy reading of a real name one character away
    # would be a wrong guess.
    unknown = [
        f"{head}{tail}"
        for head in _words("银河 金沙 海港 富丽 东方 望海 星光 朝阳 天福 万安 宏达 瑞丰 海城 银沙")
        for tail in ("新村", "小区", "花园", "公寓")
        if f"{head}{tail}" not in lab.by_stem
    ]
    for name in rng.sample(unknown, 20):
        out.append(("unknown", f"{name}{rng.randint(1, 9)}幢{rng.choice(_PROBLEMS)}", "", "ask"))
    for _ in range(20):  # two places in one text: which one is the request about?
        a, b = rng.sample(city.places, 2)
        text = f"从{a.text}到{b.text}的路上{rng.choice(_PROBLEMS)}"
        out.append(("two", text, "", lab.label(lab.by_text[a.text] | lab.by_text[b.text])))
    return out


def render(city: City | None = None) -> str:
    """The evaluation set as CSV text (what `main` writes)."""
    rows = _rows(city or generate(), random.Random(SEED))
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("id", "kind", "text", "home", "expected"))
    for n, row in enumerate(rows, 1):
        writer.writerow((n, *row))
    return handle.getvalue()


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = render()
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT}: {text.count(chr(10)) - 1} texts")


if __name__ == "__main__":
    main()
