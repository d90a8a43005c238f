"""The case page: routing evidence, the timeline with SMS delivery, the resident
(masked, revealed only on purpose and audited), and every action."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.models.cases import Case, CaseEvent
from app.models.console import AuditEntry
from app.models.messages import OutboundMessage
from tests.api.conftest import HN_RESIDENT
from tests.factories import RESIDENT, WORKER_A
from tests.helpers import signed_post


def _case_id(rt, phone_number: str) -> int:
    with rt.sessions() as s:
        case_id = s.scalar(
            select(Case.id).where(Case.resident_phone == phone_number).order_by(Case.id.desc())
        )
    assert case_id is not None
    return case_id


def _case(rt, case_id: int) -> Case:
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def _kinds(rt, case_id: int) -> list[str]:
    with rt.sessions() as s:
        return list(
            s.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        )


def test_page_shows_routing_timeline_and_sms_delivery(browser, rt, phone, work, client):
    phone(RESIDENT).text("楼道灯坏了")
    work()
    case_id = _case_id(rt, RESIDENT)
    with rt.sessions() as s:
        ack = s.scalar(
            select(OutboundMessage).where(
                OutboundMessage.case_id == case_id, OutboundMessage.to_phone == RESIDENT
            )
        )
    assert ack is not None and ack.provider_sid
    r = signed_post(
        client,
        "/sms/status",
        {"MessageSid": ack.provider_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"},
    )
    assert r.status_code == 204
    console = browser("DH-JF", "viewer")
    page = console.get(f"/console/cases/{case_id}")
    assert page.status_code == 200
    html = page.text
    code = _case(rt, case_id).code
    assert f"#{code}" in html
    assert "翁山新村3幢" in html  # the evidence: the registered resident's address
    assert "解放街道 › 翁山社区 › 翁山一网格" in html
    # Events and SMS in one timeline, with the delivery report of the ack.
    assert "Routed" in html or "已分派" in html
    assert "undelivered" in html and "30003" in html
    assert html.count('class="sms"') >= 2  # the forward to the worker and the ack
    # Phones masked everywhere on the page.
    for number in (RESIDENT, WORKER_A):
        assert number not in html and number[3:] not in html
    assert "137****0001" in html
    # A viewer has no actions and no reveal.
    assert "/reveal" not in html and f"/console/cases/{case_id}/claim" not in html


def test_find_by_code_redirects_to_the_case(browser, rt, phone):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    code = _case(rt, case_id).code
    console = browser("DH-JF", "viewer")
    r = console.get("/console/find", code=f"#{code}")
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{case_id}"
    neighbour = browser("DH-HN", "viewer")
    assert neighbour.get("/console/find", code=code).status_code == 404
    assert console.get("/console/find", code="abc").status_code == 404


def test_actions_claim_reply_note_resolve_reopen(browser, rt, phone, work):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    console = browser("DH-JF", "handler", "li")
    base = f"/console/cases/{case_id}"

    r = console.post(f"{base}/claim")
    assert r.status_code == 303 and r.headers["location"] == f"{base}?done=claim"
    assert _case(rt, case_id).status == "claimed"
    assert _case(rt, case_id).claimed_by == "api:DH-JF:@li"
    page = console.get(r.headers["location"])
    assert "解放街道 · li" in page.text  # who holds it

    # Claiming again: 409 with the reason, nothing changed.
    r = console.post(f"{base}/claim")
    assert r.status_code == 409 and "is claimed" in r.text

    r = console.post(f"{base}/reply", {"body": "师傅下午到"})
    assert r.status_code == 303
    work()
    assert phone(RESIDENT).last().endswith("师傅下午到")
    assert "解放街道" in phone(RESIDENT).last()

    r = console.post(f"{base}/note", {"body": "已联系物业"})
    assert r.status_code == 303
    r = console.post(f"{base}/note", {"body": "   "})
    assert r.status_code == 422

    r = console.post(f"{base}/resolve", {"note": "已更换灯泡"})
    assert r.status_code == 303 and _case(rt, case_id).status == "resolved"
    r = console.post(f"{base}/reopen", {"reason": ""})
    assert r.status_code == 422 and _case(rt, case_id).status == "resolved"
    r = console.post(f"{base}/reopen", {"reason": "灯又坏了"})
    assert r.status_code == 303
    case = _case(rt, case_id)
    assert case.status == "open" and case.rating is None and case.claim_due_at is not None
    assert _kinds(rt, case_id)[-5:] == ["claimed", "messaged", "comment", "resolved", "reopened"]
    with rt.sessions() as s:
        events = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
    assert all(e.channel == "console" for e in events if e.actor.startswith("api:"))


def test_reopen_a_closed_case_gets_its_code_back(browser, rt, phone, clock):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    code = _case(rt, case_id).code
    console = browser("DH-JF", "handler")
    assert console.post(f"/console/cases/{case_id}/resolve", {"note": "好了"}).status_code == 303
    phone(RESIDENT).text("1")  # satisfied: closed
    assert _case(rt, case_id).status == "closed" and _case(rt, case_id).open_code is None
    r = console.post(f"/console/cases/{case_id}/reopen", {"reason": "复查发现没修好"})
    assert r.status_code == 303
    case = _case(rt, case_id)
    assert case.status == "open" and case.open_code == code and case.closed_at is None


def test_supervisor_actions_transfer_escalate_assign(browser, rt, phone, work):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    base = f"/console/cases/{case_id}"
    handler = browser("DH-JF", "handler")
    assert handler.post(f"{base}/transfer", {"grid": "DH-02"}).status_code == 403
    assert "/transfer" not in handler.get(base).text
    supervisor = browser("DH-JF", "supervisor")
    page = supervisor.get(base).text
    assert 'value="DH-02"' in page and "DH-HN-01" not in page  # grids of its own area only
    r = supervisor.post(f"{base}/transfer", {"grid": "DH-HN-01"})
    assert r.status_code == 422 and _case(rt, case_id).grid_id is not None
    assert supervisor.post(f"{base}/transfer", {"grid": "DH-02"}).status_code == 303
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.grid is not None and case.grid.code == "DH-02"
    assert supervisor.post(f"{base}/escalate", {"reason": ""}).status_code == 422
    assert supervisor.post(f"{base}/escalate", {"reason": "需要街道协调"}).status_code == 303
    assert _case(rt, case_id).level == "town"
    r = supervisor.post(f"{base}/assign", {"phone": "13900007777"})
    assert r.status_code == 303
    case = _case(rt, case_id)
    assert case.status == "claimed" and case.claimed_by == "+8613900007777"
    assert supervisor.post(f"{base}/dance").status_code == 404


def test_send_back_as_misrouted_goes_to_the_county(browser, rt, phone):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    base = f"/console/cases/{case_id}"
    town = browser("DH-JF", "handler")
    assert town.post(f"{base}/misrouted", {"reason": ""}).status_code == 422
    r = town.post(f"{base}/misrouted", {"reason": "住址在环南街道"})
    assert r.status_code == 303
    case = _case(rt, case_id)
    assert case.level == "county" and case.status == "open"
    with rt.sessions() as s:
        event = s.scalar(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "misrouted")
        )
    assert event is not None
    assert event.detail == {
        "grid": "DH-01",
        "method": case.routing_method,
        "reason": "住址在环南街道",
        "to": "county",
    }
    # The county moves it to the right grid in the other town.
    county = browser("DH", "supervisor")
    assert county.post(f"{base}/transfer", {"grid": "DH-HN-01"}).status_code == 303
    assert town.get(base).status_code == 404  # no longer the town's case
    city = browser("CITY", "handler")
    r = city.post(f"{base}/misrouted", {"reason": "x"})
    assert r.status_code == 409


def test_reveal_needs_a_purpose_shows_once_and_is_audited(browser, rt, phone):
    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    base = f"/console/cases/{case_id}"
    viewer = browser("DH-JF", "viewer")
    assert viewer.post(f"{base}/reveal", {"purpose": "回访居民"}).status_code == 403
    handler = browser("DH-JF", "handler", "chen")
    r = handler.post(f"{base}/reveal", {"purpose": " "})
    assert r.status_code == 422 and RESIDENT[3:] not in r.text
    r = handler.post(f"{base}/reveal", {"purpose": "电话回访居民"})
    assert r.status_code == 200
    assert re.search(r'class="revealed">\+8613700000001<', r.text)
    assert r.headers["cache-control"] == "no-store"
    again = handler.get(base)
    assert RESIDENT not in again.text and RESIDENT[3:] not in again.text  # shown once
    with rt.sessions() as s:
        entries = s.scalars(select(AuditEntry)).all()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.username, entry.office_code, entry.case_id, entry.purpose) == (
        "reveal_phone",
        "chen",
        "DH-JF",
        case_id,
        "电话回访居民",
    )
    assert entry.client_ip and entry.at == rt.clock()
    admin = browser("DH-JF", "admin")
    log = admin.get("/console/audit")
    assert log.status_code == 200 and "电话回访居民" in log.text and "chen" in log.text
    assert RESIDENT[3:] not in log.text
    # The county's admin sees the town's entries, the next town's does not.
    assert "电话回访居民" in browser("DH", "admin").get("/console/audit").text
    assert "电话回访居民" not in browser("DH-HN", "admin").get("/console/audit").text


def test_other_cases_of_the_resident_only_those_visible(browser, rt, phone):
    from app.db import unit_of_work
    from tests.console.conftest import make_case

    phone(RESIDENT).text("楼道灯坏了")
    case_id = _case_id(rt, RESIDENT)
    with unit_of_work(rt.sessions) as s:
        mine = make_case(s, grid="DH-02", code="3001", status="closed", phone=RESIDENT).id
        theirs = make_case(s, grid="DH-HN-01", code="3002", status="closed", phone=RESIDENT).id
    page = browser("DH-JF", "viewer").get(f"/console/cases/{case_id}").text
    assert f'href="/console/cases/{mine}"' in page
    assert f'href="/console/cases/{theirs}"' not in page and "#3002" not in page
    assert HN_RESIDENT not in page
