"""The OpenAPI document is true: schemathesis drives every documented operation
of the office API (a bounded run) and finds no 5xx and no response that breaks
the schema.

Operations are walked in one test with Hypothesis' `@given` per operation
rather than `schema.parametrize()`: the schemathesis pytest plugin's fixture
loader does not work with pytest 9, and the schema needs the `client` fixture
(a migrated database on both backends) anyway. Each operation gets schema-valid
and schema-invalid examples (the latter must be refused with a documented 4xx).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.api.conftest import Api
from tests.factories import RESIDENT
from tests.helpers import new_sid, signed_post

EXAMPLES_PER_OPERATION = 6


def test_api_answers_as_documented(client, city, phone, make_key):
    key = make_key("DH")
    phone(RESIDENT).text("楼道灯坏了")  # something to find: a case of the office
    api = Api(client, key)
    hook = api.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["case.opened"]}
    ).json()["id"]
    real = {
        "case_id": str(api.get("/api/v1/cases").json()["items"][0]["id"]),
        "code": "DH-01",
        "webhook_id": str(hook),
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).include(
        path_regex="^/api/v1/"
    )
    walked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        walked.append(operation.label)
        names = {p.name for p in operation.path_parameters}
        strategies = [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        if names:  # and on things that exist, so that actions really act
            pinned = {name: real[name] for name in names}
            strategies.append(operation.as_strategy(path_parameters=pinned))
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {key}"},
                    excluded_checks=[
                        # Schema-valid but refused on meaning (a phone that is not one,
                        # a URL that is not public, a grid of another area): 422 is right.
                        schemathesis.checks.positive_data_acceptance,
                        # Unknown query parameters are ignored, as HTTP APIs do; what is
                        # checked of invalid requests is no 5xx and documented answers.
                        schemathesis.checks.negative_data_rejection,
                    ],
                )

            check()
    assert len(walked) >= 20, walked
    timeline = api.get(f"/api/v1/cases/{real['case_id']}").json()["timeline"]
    assert {"comment", "claimed"} & {e["kind"] for e in timeline}  # the actions acted


def test_the_gateway_webhooks_answer_as_documented(client):
    # Each refusal a gateway webhook can give must be in the document, so a
    # client generated from it (or schemathesis) knows it.
    paths = client.get("/openapi.json").json()["paths"]
    body = {"MessageSid": new_sid(), "From": RESIDENT, "Body": "x", "MessageStatus": "sent"}
    for path in ("/sms/inbound", "/sms/status"):
        documented = set(paths[path]["post"]["responses"])
        answers = {
            signed_post(client, path, {**body, "MessageSid": ""}).status_code,  # 400
            signed_post(client, path, body, signature="forged").status_code,  # 403
            signed_post(client, path, {**body, "Pad": "a" * 70_000}).status_code,  # 413
            client.post(path, json=body).status_code,  # 415
            signed_post(client, path, body).status_code,  # 200 / 204
        }
        assert len(answers) == 5, answers
        assert {str(code) for code in answers} <= documented, (path, answers, documented)
        assert "application/x-www-form-urlencoded" in paths[path]["post"]["requestBody"]["content"]
