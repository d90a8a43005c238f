"""GET /metrics (issue #6, point 7): values computed from the database at scrape
time, so they change with what happened, whichever process scrapes."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.db import unit_of_work
from app.delivery.outbox import deliver_due, enqueue
from app.models.cases import Case
from app.runtime import Runtime
from app.worker.loop import backoff_from, run_once
from routing.delivery import PRIORITY_BULK
from tests.conftest import Clock
from tests.factories import RESIDENT, WORKER_A, make_city
from tests.helpers import RecordingGateway, signed_post, webhook_params


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_what_happens(
    client, rt: Runtime, gateway: RecordingGateway, clock: Clock
) -> None:
    with unit_of_work(rt.sessions) as session:
        make_city(session)
    before = scrape(client)
    assert value(before, "gridline_database_up") == 1
    assert value(before, "gridline_inbound_messages", status="received") == 0
    assert value(before, "gridline_webhook_seconds_count") == 0

    params = webhook_params(sender=RESIDENT, body="楼道灯坏了")
    assert signed_post(client, "/sms/inbound", params).status_code == 200
    stored = scrape(client)
    assert value(stored, "gridline_inbound_messages", status="received") == 1
    assert value(stored, "gridline_webhook_seconds_count") == 1

    # The worker routes it: a case, two SMS queued, then sent.
    run_once(rt, gateway, now=clock.now)
    after = scrape(client)
    assert value(after, "gridline_inbound_messages", status="processed") == 1
    assert value(after, "gridline_cases", status="open", level="grid") == 1
    assert value(after, "gridline_outbound_messages", status="sent") == 2
    assert value(after, "gridline_outbound_delivery", status="none") == 2
    assert value(after, "gridline_outbox_oldest_unsent_seconds") == 0

    # A backlog: depth by priority band, and the age of the oldest unsent row.
    with unit_of_work(rt.sessions) as session:
        for n in range(3):
            enqueue(
                session,
                to=f"+8613710000{n:03d}",
                template="opted_in",
                params={},
                locale="zh",
                now=clock.now,
                priority=PRIORITY_BULK,
            )
    clock.advance(seconds=90)
    backlog = scrape(client)
    assert value(backlog, "gridline_outbox_depth", priority=str(PRIORITY_BULK)) == 3
    assert value(backlog, "gridline_outbox_oldest_unsent_seconds") == 90
    deliver_due(rt.sessions, gateway, now=clock.now, backoff=backoff_from(rt))
    assert value(scrape(client), "gridline_outbox_depth", priority=str(PRIORITY_BULK)) == 0

    # An escalation by SMS is counted.
    with rt.sessions() as s:
        code = s.query(Case.code).scalar()
    params = webhook_params(sender=WORKER_A, body=f"{code} 上报 需要执法")
    assert signed_post(client, "/sms/inbound", params).status_code == 200
    run_once(rt, gateway, now=clock.now)
    escalated = scrape(client)
    assert value(escalated, "gridline_escalations", channel="sms") == 1
    assert value(escalated, "gridline_cases", status="open", level="town") == 1
    assert value(escalated, "gridline_cases", status="open", level="grid") == 0
    assert value(escalated, "gridline_spool_messages") == 0
