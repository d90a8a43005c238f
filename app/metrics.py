"""Prometheus metrics. Counts come from the database at scrape time, so every
process reports the same truth however many servers and workers there are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.models import Case, InboundMessage, OutboundMessage
from app.runtime import Runtime


class DatabaseCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now: datetime = self._rt.clock()
        with self._rt.sessions() as session:
            inbound = GaugeMetricFamily(
                "gridline_inbound_messages",
                "Inbound SMS stored, by processing status",
                labels=["status"],
            )
            for status, count in session.execute(
                select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
            ):
                inbound.add_metric([status], count)
            yield inbound
            outbound = GaugeMetricFamily(
                "gridline_outbound_messages", "Outbox rows by status", labels=["status"]
            )
            for status, count in session.execute(
                select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
            ):
                outbound.add_metric([status], count)
            yield outbound
            oldest = session.scalar(
                select(func.min(OutboundMessage.created_at)).where(
                    OutboundMessage.status.in_(("pending", "sending"))
                )
            )
            age = GaugeMetricFamily(
                "gridline_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox row"
            )
            age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
            yield age
            by_case = GaugeMetricFamily(
                "gridline_cases", "Cases by status and level", labels=["status", "level"]
            )
            for status, level, count in session.execute(
                select(Case.status, Case.level, func.count()).group_by(Case.status, Case.level)
            ):
                by_case.add_metric([status, level], count)
            yield by_case


def build_registry(rt: Runtime) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(rt))
    latency = Histogram(
        "gridline_webhook_seconds",
        "Time to store an inbound webhook and answer",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    return registry, latency
