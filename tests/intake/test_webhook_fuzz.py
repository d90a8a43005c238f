"""No input makes the webhooks answer 5xx."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.helpers import AUTH_TOKEN, PUBLIC_URL

FIELDS = st.sampled_from(
    ["MessageSid", "From", "To", "Body", "Latitude", "Longitude", "NumMedia", "SmsSid", "X"]
)
VALUES = st.text(max_size=80) | st.sampled_from(["", "+8613700000001", "13700000001", "SM1"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    form=st.dictionaries(FIELDS, VALUES, max_size=8),
    path=st.sampled_from(["/sms/inbound", "/sms/status"]),
    sign=st.booleans(),
    raw=st.none() | st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
    ),
)
def test_webhooks_never_answer_5xx(client, form, path, sign, raw, content_type):
    body = raw if raw is not None else urlencode(form).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_URL + path, form
        )
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["detail"]  # every refusal says why
