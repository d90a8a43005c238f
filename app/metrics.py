"""Prometheus metrics. Counts come from the database at scrape time, so every
process reports the same truth however many servers and workers there are.

Only what happens inside this process is counted in-process: the webhook's
latency histogram, and the spool of this host (which is a local file).
When the database is unreachable the scrape still answers, with
`gridline_database_up 0` and the local metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import database_unavailable
from app.intake.spool import Spool
from app.models.cases import Case, CaseEvent
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime

log = logging.getLogger("gridline.metrics")

UNSENT = ("pending", "sending")


def _database_metrics(session: Session, now: datetime) -> list[GaugeMetricFamily]:
    families: list[GaugeMetricFamily] = []
    inbound = GaugeMetricFamily(
        "gridline_inbound_messages",
        "Inbound SMS stored, by processing status (received, processed, failed, throttled)",
        labels=["status"],
    )
    for status, count in session.execute(
        select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
    ):
        inbound.add_metric([status], count)
    families.append(inbound)

    outbound = GaugeMetricFamily(
        "gridline_outbound_messages", "Outbox rows by status", labels=["status"]
    )
    for status, count in session.execute(
        select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
    ):
        outbound.add_metric([status], count)
    families.append(outbound)

    delivery = GaugeMetricFamily(
        "gridline_outbound_delivery",
        "Sent SMS by the delivery status the gateway reported (none: no report yet)",
        labels=["status"],
    )
    for reported, count in session.execute(
        select(OutboundMessage.delivery_status, func.count())
        .where(OutboundMessage.status == "sent")
        .group_by(OutboundMessage.delivery_status)
    ):
        delivery.add_metric([reported or "none"], count)
    families.append(delivery)

    depth = GaugeMetricFamily(
        "gridline_outbox_depth",
        "Outbox rows not yet sent (pending or leased), by priority band",
        labels=["priority"],
    )
    for priority, count in session.execute(
        select(OutboundMessage.priority, func.count())
        .where(OutboundMessage.status.in_(UNSENT))
        .group_by(OutboundMessage.priority)
    ):
        depth.add_metric([str(priority)], count)
    families.append(depth)

    oldest = session.scalar(
        select(func.min(OutboundMessage.created_at)).where(OutboundMessage.status.in_(UNSENT))
    )
    age = GaugeMetricFamily(
        "gridline_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox row"
    )
    age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    families.append(age)

    by_case = GaugeMetricFamily(
        "gridline_cases", "Cases by status and level", labels=["status", "level"]
    )
    for status, level, count in session.execute(
        select(Case.status, Case.level, func.count()).group_by(Case.status, Case.level)
    ):
        by_case.add_metric([status, level], count)
    families.append(by_case)

    escalations = GaugeMetricFamily(
        "gridline_escalations",
        "Escalations recorded on case timelines, by the channel that caused them "
        "(system: a missed deadline; sms, api: a person)",
        labels=["channel"],
    )
    for channel, count in session.execute(
        select(CaseEvent.channel, func.count())
        .where(CaseEvent.kind == "escalated")
        .group_by(CaseEvent.channel)
    ):
        escalations.add_metric([channel], count)
    families.append(escalations)
    return families


class DatabaseCollector(Collector):
    def __init__(self, rt: Runtime, *spools: Spool) -> None:
        self._rt = rt
        self._spools = spools

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now: datetime = self._rt.clock()
        up = GaugeMetricFamily("gridline_database_up", "1 when the database answered this scrape")
        families: list[GaugeMetricFamily] = []
        try:
            with self._rt.sessions() as session:
                families = _database_metrics(session, now)
            up.add_metric([], 1)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("metrics: database unavailable (%s)", exc.__class__.__name__)
            up.add_metric([], 0)
        yield up
        yield from families
        if self._spools:
            spooled = GaugeMetricFamily(
                "gridline_spool_messages",
                "Inbound SMS in this host's spool, waiting for the database (app/intake/spool.py)",
            )
            spooled.add_metric([], sum(spool.count_lines() for spool in self._spools))
            yield spooled


def build_registry(rt: Runtime, *spools: Spool) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(rt, *spools))
    latency = Histogram(
        "gridline_webhook_seconds",
        "Time to store an inbound webhook and answer",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    return registry, latency
