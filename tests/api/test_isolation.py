"""Isolation: an office sees and acts on its own area only; anything else is a 404."""

from __future__ import annotations

import pytest

from tests.api.conftest import HN_RESIDENT, PT_RESIDENT, Api, auth
from tests.factories import RESIDENT, STRANGER

BODIES = {
    "claim": {},
    "assign": {"phone": "13900001111"},
    "escalate": {"reason": "x"},
    "resolve": {"note": "x"},
    "comment": {"body": "x"},
    "message": {"body": "x"},
    "transfer": {"grid": "DH-02"},
}
WEBHOOK = {"url": "http://127.0.0.1:9/hook", "events": ["case.escalated"]}


@pytest.fixture
def cases(phone, rt):
    """One case in town DH-JF (county DH), one in DH-HN (county DH), one in PT."""
    from app.models.cases import Case

    phone(RESIDENT).text("楼道灯坏了")
    phone(HN_RESIDENT).text("路灯不亮")
    phone(PT_RESIDENT).text("码头护栏松了")
    phone(STRANGER).text("有事")  # awaiting an address: no town, no county
    with rt.sessions() as s:
        return {c.resident_phone: c.id for c in s.query(Case).all()}


def _ids(api: Api) -> set[int]:
    return {c["id"] for c in api.get("/api/v1/cases", limit=200).json()["items"]}


def test_each_office_lists_its_own_area(client, cases, make_key):
    town = Api(client, make_key("DH-JF"))
    county = Api(client, make_key("DH"))
    other_county = Api(client, make_key("PT"))
    city = Api(client, make_key("CITY"))
    assert _ids(town) == {cases[RESIDENT]}
    assert _ids(county) == {cases[RESIDENT], cases[HN_RESIDENT]}
    assert _ids(other_county) == {cases[PT_RESIDENT]}
    assert _ids(city) == set(cases.values())  # the city sees even unplaced cases
    grids = {g["code"] for g in town.get("/api/v1/grids").json()}
    assert grids == {"DH-01", "DH-02"}
    assert {r["code"] for r in county.get("/api/v1/regions", level="town").json()} == {
        "DH-JF",
        "DH-HN",
    }
    assert {m["unit"] for m in other_county.get("/api/v1/members").json()} == {"PT-01", "PT-SJM"}
    assert len(city.get("/api/v1/grids").json()) == 4


def test_every_endpoint_with_another_offices_key_is_404(client, cases, make_key, gateway, rt):
    """Walk every /api/v1 route with the key of the office next door (the other
    town of the same county): each one that names a case or a region is a 404,
    and each list leaves the other office's things out."""
    neighbour = Api(client, make_key("DH-HN"))
    owner = Api(client, make_key("DH-JF"))
    case_id = cases[RESIDENT]  # in DH-JF
    hook = owner.post("/api/v1/webhooks", WEBHOOK).json()["id"]
    sent_before = len(gateway.sent)
    paths = client.get("/openapi.json").json()["paths"]
    walked: set[tuple[str, str]] = set()
    for template, methods in paths.items():
        if not template.startswith("/api/v1"):
            continue
        for method in methods:
            path = (
                template.replace("{case_id}", str(case_id))
                .replace("{code}", "DH-01")
                .replace("{webhook_id}", str(hook))
            )
            if method == "get":
                r = neighbour.get(path)
            elif method == "delete":
                r = neighbour.client.delete(path, headers=auth(neighbour.key))
            elif template == "/api/v1/webhooks":
                r = neighbour.post(path, WEBHOOK)
            else:
                action = path.rsplit("/", 1)[-1]
                r = neighbour.post(path, BODIES[action], headers={"Idempotency-Key": action})
            if "{" in template:
                assert r.status_code == 404, (method, template, r.status_code, r.text)
                assert r.json()["error"] == "not_found"
            else:
                assert r.is_success, (method, template, r.text)
                assert "DH-01" not in r.text and "DH-JF" not in r.text, template
                assert f'"id":{hook},' not in r.text.replace(" ", ""), template
            walked.add((method, template))
    assert len(walked) >= 20
    # Nothing happened to the case, nobody was texted.
    assert len(gateway.sent) == sent_before
    assert owner.get("/api/v1/webhooks").json()[0]["active"] is True
    detail = owner.get(f"/api/v1/cases/{case_id}").json()
    assert detail["status"] == "open"
    assert [e["kind"] for e in detail["timeline"]] == ["received", "routed", "forwarded"]


def test_any_other_id_is_a_404(client, cases, make_key):
    office = Api(client, make_key("CITY"))
    for case_id in ("999999", "abc", "-1", "1.0", "0x1", "１", "9" * 40, "3000000000", "0"):
        assert office.get(f"/api/v1/cases/{case_id}").status_code == 404, case_id
        r = office.post(f"/api/v1/cases/{case_id}/comment", {"body": "x"})
        assert r.status_code == 404, case_id


def test_office_comes_from_the_key_alone(client, cases, make_key):
    neighbour = Api(client, make_key("DH-HN"))
    # Nothing a caller sends names another office.
    r = neighbour.get("/api/v1/cases", town="DH-JF")
    assert r.status_code == 200 and r.json()["items"] == []
    r = neighbour.get("/api/v1/members", unit="DH-01")
    assert r.status_code == 200 and r.json() == []
    assert neighbour.get("/api/v1/regions", parent="DH-JF-WS").json() == []


def test_transfer_only_to_grids_of_the_area(client, cases, make_key, phone):
    town = Api(client, make_key("DH-JF"))
    r = town.post(f"/api/v1/cases/{cases[RESIDENT]}/transfer", {"grid": "DH-HN-01"})
    assert r.status_code == 422
    county = Api(client, make_key("DH"))
    r = county.post(f"/api/v1/cases/{cases[RESIDENT]}/transfer", {"grid": "DH-HN-01"})
    assert r.status_code == 200 and r.json()["town"] == "DH-HN"
    # The case left DH-JF: its office no longer sees it.
    assert town.get(f"/api/v1/cases/{cases[RESIDENT]}").status_code == 404
