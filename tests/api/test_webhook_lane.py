"""Office webhooks never stall the worker: they go out on a lane of their own,
each attempt ends within `GRIDLINE_WEBHOOK_TIMEOUT_SECONDS` in all, and its
`webhook-timestamp` is the moment it is sent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from app.models.offices import WebhookAttempt
from app.runtime import Runtime
from app.worker.loop import WorkerThread
from tests.api.conftest import PT_RESIDENT, PT_WORKER, Api
from tests.conftest import Clock
from tests.factories import RESIDENT
from tests.helpers import RecordingGateway, text_in, wait_for

pytest_plugins = ["tests.api.receiver"]


@dataclass
class SlowReceiver:
    """A receiver on 127.0.0.1 that reads each request, then never answers
    (`trickle=False`) or sends its status line a byte every 50 ms, until
    released or the client hangs up (or for 20 s: then it closes, so that a
    client without a total deadline ends too, with another error)."""

    trickle: bool
    url: str = ""
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)
    bytes_sent: int = 0

    def serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.arrived.set()
            if not self.trickle:
                self.release.wait(60)
                return
            line = b"HTTP/1.1 200 OK\r\n"
            while not self.release.wait(0.05) and self.bytes_sent < 400:
                try:
                    conn.sendall(line[self.bytes_sent % len(line) :][:1])
                except OSError:
                    self.hung_up.set()
                    return
                self.bytes_sent += 1


def _slow(trickle: bool) -> Iterator[SlowReceiver]:
    state = SlowReceiver(trickle=trickle)
    listener = socket.create_server(("127.0.0.1", 0))
    state.url = f"http://127.0.0.1:{listener.getsockname()[1]}/gridline"
    serving: list[threading.Thread] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=state.serve, args=(conn,), daemon=True)
            thread.start()
            serving.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield state
    finally:
        state.release.set()
        listener.close()
        for thread in serving:
            thread.join(5)


@pytest.fixture
def hanging() -> Iterator[SlowReceiver]:
    yield from _slow(trickle=False)


@pytest.fixture
def trickling() -> Iterator[SlowReceiver]:
    yield from _slow(trickle=True)


def _subscribe(api: Api, url: str, events: list[str]) -> dict:
    r = api.post("/api/v1/webhooks", {"url": url, "events": events})
    assert r.status_code == 201, r.text
    return r.json()


def _attempts(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(WebhookAttempt.outcome, WebhookAttempt.error).order_by(WebhookAttempt.id)
        )
        return [(outcome, error) for outcome, error in rows]


def test_a_hanging_receiver_does_not_hold_up_another_offices_forward(
    client, make_key, phone, hanging: SlowReceiver, rt: Runtime
) -> None:
    """The town's receiver takes the first case's webhook and never answers;
    a text about the other county, arriving after, is routed and its forward
    reaches the gateway while that delivery is still waiting."""
    rt.settings = rt.settings.model_copy(update={"webhook_timeout_seconds": 120.0})
    _subscribe(Api(client, make_key("DH-JF")), hanging.url, ["case.opened"])
    gateway = RecordingGateway()
    worker = WorkerThread(rt, gateway)
    worker.start()
    try:
        text_in(rt, RESIDENT, "楼道灯坏了")
        worker.wake()
        assert hanging.arrived.wait(30), "the webhook never reached the receiver"
        text_in(rt, PT_RESIDENT, "码头护栏松了")
        worker.wake()
        wait_for(lambda: gateway.to(PT_WORKER), what="the other county's forward")
        # The town's delivery is still in flight: not answered, not given up.
        assert not hanging.release.is_set() and _attempts(rt) == []
    finally:
        hanging.release.set()
        worker.stop()


def test_a_trickling_receiver_is_cut_off_at_the_deadline(
    client, make_key, phone, trickling: SlowReceiver, rt: Runtime, work
) -> None:
    """A byte every 50 ms keeps each read alive; the attempt as a whole ends
    at the deadline and is retried later."""
    rt.settings = rt.settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    _subscribe(Api(client, make_key("DH-JF")), trickling.url, ["case.opened"])
    phone(RESIDENT).text("楼道灯坏了")  # the pass delivers: cut off at the deadline
    assert _attempts(rt) == [("retry", "no complete answer within 0.5 s")]
    assert trickling.hung_up.wait(30)  # we hung up; it would have gone on
    assert trickling.bytes_sent < 400


def test_each_attempt_is_stamped_when_it_is_sent(
    client, make_key, phone, receiver, clock: Clock, rt: Runtime, work
) -> None:
    """Five deliveries in one pass, each answered a minute of (injected)
    clock after it arrives: each `webhook-timestamp` is its own send time."""
    town = Api(client, make_key("DH-JF"))
    receiver.secret = _subscribe(town, receiver.url, ["case.commented"])["secret"]
    receiver.on_request = lambda: clock.advance(minutes=1)
    phone(RESIDENT).text("楼道灯坏了")
    case_id = town.get("/api/v1/cases").json()["items"][0]["id"]
    for n in range(5):
        assert town.post(f"/api/v1/cases/{case_id}/comment", {"body": f"第{n}次"}).is_success
    start = int(clock.now.timestamp())
    work()
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received]
    assert stamps == [start + 60 * n for n in range(5)]
    assert all(r.valid for r in receiver.received)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == 5
