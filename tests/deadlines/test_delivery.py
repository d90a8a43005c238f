"""Delivery-aware: a case notice the gateway reports undelivered or failed brings
in the next people on the ladder at once, without waiting for the deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from app.db import unit_of_work
from app.directory.apikeys import create_key
from app.models.cases import Case, CaseEvent, CaseParticipant
from app.models.deadlines import ScheduledStep
from app.models.messages import OutboundMessage
from app.models.offices import WebhookDelivery
from app.runtime import Runtime
from app.worker.loop import run_once
from sms.gateway import OutgoingSms, PermanentSendError, SendResult, TransientSendError
from tests.factories import COUNTY_OFFICE, RESIDENT, TOWN_OFFICE, WORKER_A, WORKER_B
from tests.helpers import Phone, RecordingGateway, latest_case, signed_post


def _case(rt: Runtime) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def _sid(rt: Runtime, *, to: str, template: str) -> str:
    with rt.sessions() as s:
        row = s.scalar(
            select(OutboundMessage)
            .where(OutboundMessage.to_phone == to, OutboundMessage.template == template)
            .order_by(OutboundMessage.id.desc())
        )
        assert row is not None and row.provider_sid
        return row.provider_sid


def _report(client, sid: str, status: str) -> None:
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": "30003"}
    assert signed_post(client, "/sms/status", params).status_code == 204


def _events(rt: Runtime, kind: str) -> list[CaseEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(CaseEvent).where(CaseEvent.kind == kind)))


def test_an_undelivered_forward_texts_the_next_on_the_ladder_at_once(
    rt, gateway, city, clock, client
):
    Phone(rt, gateway, RESIDENT).text("水管爆裂")
    code = _case(rt).code
    assert gateway.to(WORKER_B) == [] and gateway.to(TOWN_OFFICE) == []
    _report(client, _sid(rt, to=WORKER_A, template="forward"), "undelivered")
    run_once(rt, gateway)  # no clock step: well before the 30-minute claim deadline
    for phone in (WORKER_B, TOWN_OFFICE):
        assert any("未能送达" in b and f"#{code}" in b for b in gateway.to(phone))
    [event] = _events(rt, "undelivered")
    assert event.detail["status"] == "undelivered"
    assert event.detail["to"] == "138****0001"
    assert _case(rt).level == "grid"
    # A repeated callback changes nothing; the deadline still runs as before.
    _report(client, _sid(rt, to=WORKER_A, template="forward"), "undelivered")
    run_once(rt, gateway)
    assert len(_events(rt, "undelivered")) == 1


def test_a_notice_nobody_else_can_take_escalates_at_once(rt, gateway, city, clock, client):
    Phone(rt, gateway, RESIDENT).text("电线冒火花")
    clock.advance(minutes=31)  # claim deadline: the whole team and the town office texted
    run_once(rt, gateway)
    assert gateway.to(COUNTY_OFFICE) == []
    _report(client, _sid(rt, to=TOWN_OFFICE, template="claim_overdue"), "failed")
    run_once(rt, gateway)
    case = _case(rt)
    assert (case.level, case.status) == ("county", "open")
    with rt.sessions() as s:
        event = s.scalar(select(CaseEvent).where(CaseEvent.kind == "escalated"))
        assert event.detail["reason"] == "notice not delivered"
    assert gateway.to(COUNTY_OFFICE)


def test_a_report_due_with_the_claim_deadline_sees_what_the_deadline_did(
    rt, gateway, city, clock, client, caplog
):
    """Two steps of one case fired in one transaction (a batch): the second
    reads the first's rows. The claim deadline texts the whole team and the
    town office; the undelivered report behind it finds nobody left at the
    grid's level and goes to the county, texting nobody twice."""
    Phone(rt, gateway, RESIDENT).text("楼道灯不亮")
    sid = _sid(rt, to=WORKER_A, template="forward")
    clock.advance(minutes=31)  # past the claim deadline, not yet fired
    _report(client, sid, "undelivered")  # its step is due now, behind the deadline's
    with rt.sessions() as s:
        due = s.scalars(
            select(ScheduledStep.kind).where(
                ScheduledStep.done_at.is_(None), ScheduledStep.due_at <= clock.now
            )
        ).all()
    assert sorted(due) == ["claim_overdue", "undelivered"]
    assert rt.settings.step_fire_batch >= 2
    run_once(rt, gateway)
    # Both in one transaction: the batch did not fail and fall back to one by one.
    assert not [r for r in caplog.records if "one by one" in r.getMessage()]
    for phone in (WORKER_B, TOWN_OFFICE):
        assert [m.template for m in gateway.sent if m.to == phone] == ["claim_overdue"]
    with rt.sessions() as s:
        phones = s.scalars(select(CaseParticipant.phone).order_by(CaseParticipant.id)).all()
    assert sorted(phones) == sorted({*phones}), "a participant was added twice"
    [event] = _events(rt, "undelivered")
    assert event.detail["notified"] == []
    assert _case(rt).level == "county"


def test_an_undelivered_notice_of_a_claimed_case_changes_nothing(rt, gateway, city, clock, client):
    Phone(rt, gateway, RESIDENT).text("楼上漏水")
    code = _case(rt).code
    sid = _sid(rt, to=WORKER_A, template="forward")
    Phone(rt, gateway, WORKER_A).text(f"{code} 收到")
    _report(client, sid, "undelivered")
    run_once(rt, gateway)
    assert gateway.to(TOWN_OFFICE) == [] and _events(rt, "undelivered") == []
    with rt.sessions() as s:
        step = s.scalar(select(ScheduledStep).where(ScheduledStep.kind == "undelivered"))
        assert step is not None and step.outcome == "skipped"


@dataclass
class RefusingGateway(RecordingGateway):
    """Refuses every SMS to some phones for good (e.g. 21211, an invalid number)."""

    refused: set[str] = field(default_factory=set)

    def send(self, sms: OutgoingSms) -> SendResult:
        if sms.to in self.refused:
            raise PermanentSendError("invalid 'To' phone number", code="21211")
        return super().send(sms)


def test_a_forward_the_gateway_refuses_texts_the_next_on_the_ladder(rt, city, clock):
    gateway = RefusingGateway(refused={WORKER_A})
    Phone(rt, gateway, RESIDENT).text("窨井盖松动")
    run_once(rt, gateway)
    assert gateway.to(WORKER_A) == []
    assert any("未能送达" in b for b in gateway.to(WORKER_B))
    [event] = _events(rt, "undelivered")
    assert event.detail["status"] == "failed"
    clock.advance(minutes=1)
    run_once(rt, gateway)
    assert len(_events(rt, "undelivered")) == 1
    assert _case(rt).claim_due_at == clock.now - timedelta(minutes=1) + timedelta(minutes=30)


def test_a_reply_the_resident_never_gets_is_told_to_its_writer_and_shown_on_the_case(
    rt, city, clock
):
    """The worker's reply is refused for good: the worker is told, with the
    case's code, and the timeline shows it (what an office sees)."""
    gateway = RefusingGateway()
    resident, worker = Phone(rt, gateway, RESIDENT), Phone(rt, gateway, WORKER_A)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    worker.text(f"{code} 收到")
    gateway.refused.add(RESIDENT)  # the resident's number stops taking SMS
    worker.text(f"{code} 师傅下午到")
    run_once(rt, gateway)  # the undelivered step fires
    assert (
        worker.last()
        == f"#{code} 您发给居民的短信发送失败，居民没有收到。请稍后再发，或联系街道值班。"
    )
    [event] = _events(rt, "undelivered")
    assert event.detail["reason"] == "reply to the resident not delivered"
    assert event.detail["error"] == "21211" and event.detail["notified"] == ["138****0001"]
    assert _case(rt).status == "claimed"  # nothing else moved


def test_an_office_whose_message_never_arrives_is_told_by_its_webhook(rt, city, client):
    gateway = RefusingGateway(refused={RESIDENT})
    Phone(rt, gateway, RESIDENT).text("楼道灯坏了")
    with unit_of_work(rt.sessions) as session:
        _row, key = create_key(session, office_code="DH-JF", scope="write", now=rt.clock())
    headers = {"Authorization": f"Bearer {key}"}
    rt.settings.webhook_allow_private = True  # the receiver's URL is on loopback
    hook = {"url": "http://127.0.0.1:9/x", "events": ["case.undelivered"]}
    assert client.post("/api/v1/webhooks", json=hook, headers=headers).status_code == 201
    case_id = _case(rt).id
    sent = client.post(
        f"/api/v1/cases/{case_id}/message", json={"body": "明天上午来修"}, headers=headers
    )
    assert sent.status_code == 200, sent.text
    run_once(rt, gateway, webhooks=False)  # refused for good
    run_once(rt, gateway, webhooks=False)  # the undelivered step fires
    [event] = _events(rt, "undelivered")
    assert event.detail["notified"] == []  # no phone of the office's to text
    with rt.sessions() as s:
        deliveries = s.scalars(select(WebhookDelivery)).all()
    assert [(d.event_type, d.case_id) for d in deliveries] == [("case.undelivered", case_id)]


def test_a_reply_reported_undelivered_later_is_told_too(rt, city, client):
    gateway = RecordingGateway()
    resident, worker = Phone(rt, gateway, RESIDENT), Phone(rt, gateway, WORKER_A)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    worker.text(f"{code} 收到")
    worker.text(f"{code} 办结 已换灯泡")
    _report(client, _sid(rt, to=RESIDENT, template="resolved_resident"), "undelivered")
    run_once(rt, gateway)
    assert worker.last().startswith(f"#{code} 您发给居民的短信未送达")
    assert [e.detail["status"] for e in _events(rt, "undelivered")] == ["undelivered"]


@dataclass
class BusyGateway(RecordingGateway):
    """Answers every SMS to some phones with a transient error, for ever."""

    busy: set[str] = field(default_factory=set)

    def send(self, sms: OutgoingSms) -> SendResult:
        if sms.to in self.busy:
            raise TransientSendError("service unavailable", code="503")
        return super().send(sms)


def test_a_forward_out_of_attempts_texts_the_next_on_the_ladder(rt, city):
    rt.settings = rt.settings.model_copy(update={"outbox_max_attempts": 1})
    gateway = BusyGateway(busy={WORKER_A})
    Phone(rt, gateway, RESIDENT).text("窨井盖松动")  # one attempt: given up
    run_once(rt, gateway)  # the undelivered step fires
    assert gateway.to(WORKER_A) == []
    assert any("未能送达" in b for b in gateway.to(WORKER_B))
    [event] = _events(rt, "undelivered")
    assert event.detail["status"] == "failed"
