"""Routing quality on the labelled evaluation set: right / asked / wrong.

    .venv/bin/python -m bench.eval_routing [--show-wrong] [--show-asked]

Each text of bench/data/routing_eval.csv is decided by the routing core
(`routing.gazetteer`, with the sender's home as `app.inbound.placement` passes it) on
the generated Zhoushan-scale city. *right*: routed to the expected grid, or
asked when "ask" is expected; *asked*: asked where a grid was expected (a
question, not harm); *wrong*: routed to another grid, or routed where the
right answer was to ask. Targets (issue 3): right ≥ 97 %, wrong ≤ 0.5 %.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import areas, city_gazetteer
from routing import gazetteer
from routing.gazetteer import home_answers

EVAL = Path(__file__).parent / "data" / "routing_eval.csv"


@dataclass
class Result:
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    wrong: list[tuple[str, str, str, str]] = field(default_factory=list)
    asked: list[tuple[str, str, str, str]] = field(default_factory=list)

    def share(self, outcome: str) -> float:
        return self.outcomes[outcome] / self.total if self.total else 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.total} texts: right {self.outcomes['right']} ({self.share('right'):.1%}), "
            f"asked {self.outcomes['asked']} ({self.share('asked'):.1%}), "
            f"wrong {self.outcomes['wrong']} ({self.share('wrong'):.1%})"
        ]
        for kind, counts in sorted(self.by_kind.items()):
            n = sum(counts.values())
            lines.append(
                f"  {kind:10} {n:4}  right {counts['right']:4}  asked {counts['asked']:3}  "
                f"wrong {counts['wrong']:2}"
            )
        return "\n".join(lines)


def evaluate(path: Path = EVAL) -> Result:
    city, index = city_gazetteer()
    area = areas(city)
    result = Result()
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            home = row["home"] or None
            decision = index.decide(row["text"], home_area=area[home][0] if home else ())
            got = decision.grid if decision.routed else None
            if got is None and home is not None and home_answers(decision, home):
                got = home
            expected = row["expected"]
            if got == expected or (got is None and expected == "ask"):
                outcome = "right"
            elif got is None:
                outcome = "asked"
            else:
                outcome = "wrong"
            result.total += 1
            result.outcomes[outcome] += 1
            result.by_kind.setdefault(row["kind"], Counter())[outcome] += 1
            seen = (row["text"], row["home"], expected, got or decision.reason)
            if outcome == "wrong":
                result.wrong.append(seen)
            elif outcome == "asked":
                result.asked.append(seen)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show-wrong", action="store_true")
    parser.add_argument("--show-asked", action="store_true")
    parser.add_argument(
        "--sweep", action="store_true", help="right/asked/wrong for several ROUTE_AT values"
    )
    args = parser.parse_args()
    if args.sweep:
        chosen = gazetteer.ROUTE_AT
        for threshold in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
            gazetteer.ROUTE_AT = threshold
            print(f"ROUTE_AT={threshold}: {str(evaluate()).splitlines()[0]}")
        gazetteer.ROUTE_AT = chosen
    result = evaluate()
    print(result)
    for label, items, show in (
        ("wrong", result.wrong, args.show_wrong),
        ("asked", result.asked, args.show_asked),
    ):
        if show:
            for text, home, expected, got in items:
                print(f"{label}: {text!r} home={home or '-'} expected={expected} got={got}")


if __name__ == "__main__":
    main()
