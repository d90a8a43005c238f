"""The routing evaluation set is up to date and the engine meets its quality bar on it.

`python -m bench.eval_routing` prints the real figures; this test holds a lower bar.
"""

from __future__ import annotations

from bench import make_eval
from bench.eval_routing import EVAL, evaluate


def test_the_evaluation_set_is_what_the_script_generates() -> None:
    assert EVAL.read_text(encoding="utf-8") == make_eval.render()


def test_routing_quality_on_the_evaluation_set() -> None:
    result = evaluate()
    assert result.total >= 500
    assert result.share("right") >= 0.95, str(result)
    assert result.share("wrong") <= 0.005, str(result)
    # Every kind of text is represented, the truly ambiguous ones included.
    assert {"typo", "numerals", "missing", "shared", "two", "unknown", "nothing"} <= set(
        result.by_kind
    )
