"""The real TwilioGateway (the twilio library over requests) against the fake Twilio server."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import pytest

from sms.gateway import OutgoingSms, PermanentSendError, SendError, TransientSendError
from sms.twilio_gateway import TwilioGateway
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Drop,
    Failure,
    FakeTwilio,
    Hang,
    Problem,
    Status,
    TwilioError,
)

HOTLINE = "+8657000000000"
RESIDENT = "+8613700000001"
CALLBACK = "https://gridline.example.org/sms/status"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio.serve() as server:
        yield server


def make_gateway(fake: FakeTwilio, **overrides: object) -> TwilioGateway:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": HOTLINE,
        "api_base": fake.base_url,
        "timeout": 5.0,
        "status_callback": CALLBACK,
    }
    values.update(overrides)
    return TwilioGateway(**values)  # type: ignore[arg-type]


@pytest.fixture
def gateway(fake: FakeTwilio) -> Iterator[TwilioGateway]:
    gw = make_gateway(fake)
    yield gw
    gw.close()


def sms(to: str = RESIDENT, body: str = "您的诉求#4821已办结。") -> OutgoingSms:
    return OutgoingSms(to=to, body=body, template="resolved_resident", params={}, reference="1")


def test_send_goes_to_the_configured_base_url(fake: FakeTwilio, gateway: TwilioGateway) -> None:
    result = gateway.send(sms())

    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_sid)
    assert result.status == "queued"
    [message] = fake.messages
    assert message.sid == result.provider_sid
    assert (message.to, message.from_, message.body) == (RESIDENT, HOTLINE, "您的诉求#4821已办结。")
    assert message.status_callback == CALLBACK
    assert message.account_sid == ACCOUNT_SID


def test_each_send_is_one_message(fake: FakeTwilio, gateway: TwilioGateway) -> None:
    sids = {gateway.send(sms(body=f"text {i}")).provider_sid for i in range(5)}

    assert len(sids) == 5
    assert [m.body for m in fake.messages] == [f"text {i}" for i in range(5)]


def test_base_url_with_trailing_slash_and_no_callback(fake: FakeTwilio) -> None:
    gw = make_gateway(fake, api_base=fake.base_url + "/", status_callback=None)
    try:
        gw.send(sms())
    finally:
        gw.close()

    [message] = fake.messages
    assert message.status_callback is None


def test_twilio_edge_in_the_environment_does_not_reroute(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The twilio client would rewrite the host to api.<edge>.<region>.twilio.com.
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    gw = make_gateway(fake)
    try:
        gw.send(sms())
    finally:
        gw.close()

    assert len(fake.messages) == 1


def test_wrong_auth_token_is_a_retryable_configuration_error(fake: FakeTwilio) -> None:
    gw = make_gateway(fake, auth_token="not-the-token")
    try:
        with pytest.raises(TransientSendError) as info:
            gw.send(sms())
    finally:
        gw.close()

    # Failing every queued SMS for good while an operator fixes the token would lose them.
    assert info.value.code == "20003"
    assert not info.value.ambiguous
    assert fake.messages == []


def test_wrong_base_path_is_a_retryable_configuration_error(fake: FakeTwilio) -> None:
    gw = make_gateway(fake, api_base=fake.base_url + "/not-twilio")
    try:
        with pytest.raises(TransientSendError) as info:
            gw.send(sms())
    finally:
        gw.close()

    assert info.value.code == "20404"
    assert fake.messages == []


@pytest.mark.parametrize(
    ("failure", "kind", "code", "ambiguous"),
    [
        (Status(500), TransientSendError, "20500", False),
        (Status(503), TransientSendError, "20500", False),
        (Status(429), TransientSendError, "20429", False),
        # A proxy's 502/504: the request may have been forwarded before the failure.
        (Status(502, html=True), TransientSendError, "502", True),
        (Status(504, html=True), TransientSendError, "504", True),
        (TwilioError(21211), PermanentSendError, "21211", None),
        (TwilioError(21610), PermanentSendError, "21610", None),
        (TwilioError(21614), PermanentSendError, "21614", None),
        (TwilioError(21617), PermanentSendError, "21617", None),  # any other 400
        (Problem(21610), PermanentSendError, "21610", None),  # RFC 9457 answers
        (Problem(20500, status=503), TransientSendError, "20500", False),
        # 2xx that is not the message JSON: it may have been accepted.
        (Status(200, html=True), TransientSendError, "bad_answer", True),
    ],
    ids=lambda value: repr(value) if isinstance(value, Failure) else None,
)
def test_error_translation(
    fake: FakeTwilio,
    gateway: TwilioGateway,
    failure: Failure,
    kind: type[SendError],
    code: str,
    ambiguous: bool | None,
) -> None:
    fake.fail_next(failure)

    with pytest.raises(SendError) as info:
        gateway.send(sms())

    assert type(info.value) is kind
    assert info.value.code == code
    if ambiguous is not None:
        assert isinstance(info.value, TransientSendError)
        assert info.value.ambiguous is ambiguous
    assert fake.messages == []
    # The failure was for that request only.
    gateway.send(sms())
    assert len(fake.messages) == 1


def test_invalid_number_is_permanent_and_masked(fake: FakeTwilio, gateway: TwilioGateway) -> None:
    bad = "+86138001380009999"  # too long for E.164: the fake answers 21211 naming it

    with pytest.raises(PermanentSendError) as info:
        gateway.send(sms(to=bad))

    assert info.value.code == "21211"
    assert "not a valid phone number" in info.value.message
    assert "13800138000" not in info.value.message  # the reason lands in logs and rows
    assert fake.messages == []


def test_rejected_number_fails_every_time(fake: FakeTwilio, gateway: TwilioGateway) -> None:
    fake.reject_number(RESIDENT, 21610)

    for _ in range(2):
        with pytest.raises(PermanentSendError) as info:
            gateway.send(sms())
        assert info.value.code == "21610"
    gateway.send(sms(to="+8613700000002"))

    assert [m.to for m in fake.messages] == ["+8613700000002"]


def test_timeout_after_sending_is_ambiguous(fake: FakeTwilio) -> None:
    gw = make_gateway(fake, timeout=0.25)
    fake.fail_next(Hang(accept=True))
    try:
        with pytest.raises(TransientSendError) as info:
            gw.send(sms())
        fake.wait_hanging(1)  # the server holds the request: it got there
    finally:
        fake.release_hung()
        gw.close()

    assert info.value.code == "timeout"
    assert info.value.ambiguous
    # The gateway took the message although the client never heard back.
    assert [m.to for m in fake.messages] == [RESIDENT]


def test_connection_dropped_after_sending_is_ambiguous(
    fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    fake.fail_next(Drop(accept=True))

    with pytest.raises(TransientSendError) as info:
        gateway.send(sms())

    assert info.value.code == "transport"
    assert info.value.ambiguous
    assert len(fake.messages) == 1
    # A fresh connection is used for the next send.
    gateway.send(sms())
    assert len(fake.messages) == 2


def test_connection_refused_is_transient_and_not_ambiguous() -> None:
    # A bound socket that never listens: connecting is refused, and the port
    # stays ours so nothing else can answer on it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        gw = TwilioGateway(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=HOTLINE,
            api_base=f"http://127.0.0.1:{port}",
            timeout=5.0,
        )
        try:
            with pytest.raises(TransientSendError) as info:
                gw.send(sms())
        finally:
            gw.close()

    assert info.value.code == "connect"
    assert not info.value.ambiguous


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TwilioGateway(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=HOTLINE, timeout=0
        )


def test_twilio_request_log_is_quiet_and_masked(
    fake: FakeTwilio, gateway: TwilioGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger and its handlers: everything

    gateway.send(sms())
    with pytest.raises(PermanentSendError):
        gateway.send(sms(to="+86138001380009999"))

    assert not [r for r in caplog.records if r.name.startswith("twilio") and r.levelno < 30]
    assert all("13700000001" not in r.getMessage() for r in caplog.records)
    assert all("13800138000" not in r.getMessage() for r in caplog.records)

    # Someone turns the library's logger up to debug a problem: what it logs is
    # still masked.
    caplog.clear()
    twilio_log = logging.getLogger("twilio.http_client")
    twilio_log.setLevel(logging.DEBUG)
    try:
        gateway.send(sms())
        twilio_log.info("To: %s", RESIDENT)
    finally:
        twilio_log.setLevel(logging.WARNING)
    lines = [r.getMessage() for r in caplog.records if r.name == "twilio.http_client"]
    assert any("POST Request" in line for line in lines)
    assert "To: 137****0001" in lines
    assert all("13700000001" not in line for line in lines)
