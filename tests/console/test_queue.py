"""The queue: status cards, filters in the URL, pages, bulk actions, live refresh, CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from app.db import unit_of_work
from app.models.cases import Case, CaseEvent
from app.models.console import AuditEntry
from app.models.directory import Region
from app.models.messages import OutboundMessage
from tests.console.conftest import make_case
from tests.factories import make_member

CARD_RE = re.compile(r'data-view="(\w+)"[^>]*>\s*<span class="n">(\d+)</span>')
ROW_RE = re.compile(r'<tr data-id="(\d+)"')


def cards(html: str) -> dict[str, int]:
    return {view: int(n) for view, n in CARD_RE.findall(html)}


def row_ids(html: str) -> list[int]:
    return [int(i) for i in ROW_RE.findall(html)]


def _states(rt, clock):
    """Cases of DH-JF in every state of the cards, and one of the next town (DH-HN)."""
    now = clock.now
    m = timedelta(minutes=1)
    with unit_of_work(rt.sessions) as s:
        made = {
            "later": make_case(s, grid="DH-01", code="1001", claim_due=now + 120 * m),
            "soon": make_case(s, grid="DH-01", code="1002", claim_due=now + 10 * m),
            "late": make_case(s, grid="DH-02", code="1003", claim_due=now - 5 * m),
            "working_soon": make_case(
                s, grid="DH-02", code="1004", status="claimed", resolve_due=now + 30 * m
            ),
            "working": make_case(s, grid="DH-01", code="1005", status="claimed"),
            "rating": make_case(s, grid="DH-01", code="1006", status="resolved"),
            "closed": make_case(s, grid="DH-01", code="1007", status="closed"),
            "next_town": make_case(s, grid="DH-HN-01", code="1008", claim_due=now - 5 * m),
        }
        return {k: c.id for k, c in made.items()}


def test_cards_count_each_state_and_filter_the_table(browser, rt, clock):
    ids = _states(rt, clock)
    console = browser("DH-JF", "viewer")
    page = console.get("/console")
    assert page.status_code == 200
    assert cards(page.text) == {
        "to_claim": 3,
        "in_progress": 2,
        "due_soon": 2,
        "overdue": 1,
        "to_rate": 1,
        "all": 7,
    }
    assert ids["next_town"] not in row_ids(page.text)
    expected = {
        "to_claim": {"later", "soon", "late"},
        "in_progress": {"working_soon", "working"},
        "due_soon": {"soon", "working_soon"},
        "overdue": {"late"},
        "to_rate": {"rating"},
    }
    for view, names in expected.items():
        r = console.get("/console", view=view)
        assert set(row_ids(r.text)) == {ids[n] for n in names}, view
        assert 'class="card active"' in r.text or "card active" in r.text
    # Deadlines count down (and up, once passed), in the staff member's language.
    late = console.get("/console", view="overdue").text
    assert '<td data-label="时限" class="overdue">已超时5分钟</td>' in late
    assert "解放街道 › 翁山社区 › 翁山二网格" in late
    soon = console.get("/console", view="due_soon").text
    assert "剩余10分钟" in soon and "剩余30分钟" in soon and 'class="soon"' in soon
    later = console.get("/console", view="to_claim", lang="en").text
    assert "2 h 0 min left" in later and "5 min overdue" in later
    # The county sees both towns.
    county = browser("DH", "viewer")
    assert cards(county.get("/console").text)["overdue"] == 2


def test_filters_live_in_the_url_and_combine(browser, rt, clock):
    ids = _states(rt, clock)
    console = browser("DH-JF", "viewer")
    r = console.get("/console", grid="DH-02", view="to_claim")
    assert row_ids(r.text) == [ids["late"]]
    # The cards count within the other filters, and their links keep them.
    assert cards(r.text)["all"] == 2
    assert 'href="/console?view=in_progress&amp;grid=DH-02"' in r.text
    assert row_ids(console.get("/console", q="#1005").text) == [ids["working"]]
    assert row_ids(console.get("/console", q="楼道").text) != []
    assert console.get("/console", q="没有这种事").text.count("<tr data-id") == 0
    # Empty fields of the GET form mean "any".
    r = console.get("/console", level="", grid="", category="", q="", view="")
    assert r.status_code == 200 and cards(r.text)["all"] == 7


def test_bad_filters_are_a_422_with_the_reason(browser):
    console = browser("DH-JF", "viewer")
    for params, reason in (
        ({"view": "everything"}, "view"),
        ({"level": "planet"}, "level"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"q": "x" * 101}, "q"),
    ):
        r = console.get("/console", **params)
        assert r.status_code == 422, params
        assert reason in r.text


def test_pages_of_fifty_newest_first(browser, rt):
    with unit_of_work(rt.sessions) as s:
        made = [make_case(s, grid="DH-01", code=str(2000 + i)).id for i in range(55)]
    console = browser("DH-JF", "viewer")
    first = console.get("/console", view="to_claim")
    assert row_ids(first.text) == sorted(made, reverse=True)[:50]
    assert 'href="/console?view=to_claim&amp;page=2"' in first.text
    second = console.get("/console", view="to_claim", page=2)
    assert row_ids(second.text) == sorted(made, reverse=True)[50:]
    assert 'rel="next"' not in second.text


def test_bulk_claim_reports_each_case(browser, rt, clock):
    ids = _states(rt, clock)
    console = browser("DH-JF", "handler", "wu")
    r = console.post(
        "/console/bulk",
        {
            "action": "claim",
            "case": [str(ids["later"]), str(ids["working"]), str(ids["next_town"]), "junk"],
            "back": "view=to_claim",
        },
    )
    assert r.status_code == 200
    assert "1 / 4" in r.text
    assert 'href="/console?view=to_claim"' in r.text
    results = re.findall(r'class="result (ok|failed)">([^<]*)', r.text)
    assert [kind for kind, _ in results] == ["ok", "failed", "failed", "failed"]
    assert "is claimed" in results[1][1]
    with rt.sessions() as s:
        later = s.get(Case, ids["later"])
        other = s.get(Case, ids["next_town"])
        assert later is not None and other is not None
        assert later.status == "claimed" and later.claimed_by == "api:DH-JF:@wu"
        assert other.status == "open"  # another town's case: untouched
        event = s.scalar(select(CaseEvent).where(CaseEvent.case_id == ids["later"]))
        assert event is not None and event.kind == "claimed" and event.channel == "console"


def test_bulk_escalate_and_assign_need_a_supervisor(browser, rt, clock):
    ids = _states(rt, clock)
    handler = browser("DH-JF", "handler")
    r = handler.post("/console/bulk", {"action": "escalate", "reason": "x", "case": ids["late"]})
    assert r.status_code == 403
    supervisor = browser("DH-JF", "supervisor")
    r = supervisor.post("/console/bulk", {"action": "escalate", "case": ids["late"]})
    assert r.status_code == 422 and "reason" in r.text
    r = supervisor.post(
        "/console/bulk",
        {"action": "escalate", "reason": "无人签收", "case": [ids["late"], ids["soon"]]},
    )
    assert r.status_code == 200 and "2 / 2" in r.text
    r = supervisor.post(
        "/console/bulk",
        {"action": "assign", "phone": "139 0000 7777", "case": [ids["later"]]},
    )
    assert r.status_code == 200 and "1 / 1" in r.text
    with rt.sessions() as s:
        assert {s.get(Case, ids[n]).level for n in ("late", "soon")} == {"town"}  # type: ignore[union-attr]
        texted = s.scalars(
            select(OutboundMessage.case_id).where(OutboundMessage.to_phone == "+8613900007777")
        ).all()
    assert texted == [ids["later"]]
    r = supervisor.post(
        "/console/bulk", {"action": "assign", "phone": "nope", "case": [ids["soon"]]}
    )
    assert r.status_code == 422


def test_live_refresh_answers_304_until_something_changes(browser, rt, clock):
    ids = _states(rt, clock)
    console = browser("DH-JF", "viewer")
    first = console.get("/console/live", view="to_claim")
    assert first.status_code == 200 and set(row_ids(first.text)) == {
        ids["later"],
        ids["soon"],
        ids["late"],
    }
    etag = first.headers["etag"]
    same = console.client.get(
        "/console/live", params={"view": "to_claim"}, headers={"If-None-Match": etag}
    )
    assert same.status_code == 304 and same.content == b""
    with unit_of_work(rt.sessions) as s:
        new = make_case(s, grid="DH-02", code="1009").id
    changed = console.client.get(
        "/console/live", params={"view": "to_claim"}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert new in row_ids(changed.text)
    # The queue page points its script at the same filter.
    page = console.get("/console", view="to_claim")
    assert 'data-live-url="/console/live?view=to_claim"' in page.text
    assert '<script src="/console/static/console.js"></script>' in page.text


def test_csv_export_masks_phones_and_is_audited(browser, rt, clock):
    _states(rt, clock)
    with unit_of_work(rt.sessions) as s:
        make_case(
            s, grid="DH-01", code="1010", summary="=电话13912345678请回电", phone="+8613711112222"
        )
    handler = browser("DH-JF", "handler")
    assert handler.post("/console/export", {"view": "to_claim"}).status_code == 403
    supervisor = browser("DH-JF", "supervisor", "zhou")
    r = supervisor.post("/console/export", {"view": "to_claim"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["code"] for row in rows} == {"1001", "1002", "1003", "1010"}
    assert "13912345678" not in text and "13711112222" not in text
    row = next(row for row in rows if row["code"] == "1010")
    assert row["resident"] == "137****2222"
    assert row["summary"].startswith("'=")  # no spreadsheet formula
    with rt.sessions() as s:
        audit = s.scalars(select(AuditEntry)).all()
    assert len(audit) == 1
    assert audit[0].action == "export_csv" and audit[0].username == "zhou"
    assert audit[0].office_code == "DH-JF" and audit[0].detail["rows"] == 4
    assert audit[0].detail["filters"] == {"view": "to_claim"}
    assert audit[0].client_ip


def test_every_cell_of_the_export_is_safe_from_spreadsheet_formulas(browser, rt, clock):
    # Names come from imported files: a member named like a formula claims a case.
    with unit_of_work(rt.sessions) as s:
        grid = s.scalar(select(Region).where(Region.code == "DH-01"))
        make_member(s, phone="+8613900000777", name="=HYPERLINK(1)", unit=grid)
        make_case(s, grid="DH-01", code="1011", status="claimed", claimed_by="+8613900000777")
    supervisor = browser("DH-JF", "supervisor", "zhou")
    text = supervisor.post("/console/export", {"view": "all"}).content.decode("utf-8-sig")
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["code"] == "1011")
    assert row["assignee"] == "'=HYPERLINK(1)"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_queue_masks_phones_and_collapses_on_phones(browser, rt, phone):
    from tests.factories import RESIDENT

    phone(RESIDENT).text("楼道灯坏了，我的电话13912345678")
    console = browser("DH-JF", "viewer")
    r = console.get("/console")
    assert "13912345678" not in r.text and "139****5678" in r.text
    assert RESIDENT[3:] not in r.text
    assert 'data-label="' in r.text  # each cell labels itself when the table collapses
    css = console.get("/console/static/console.css").text
    assert "@media (max-width: 760px)" in css and "table.cases thead { display: none; }" in css
