"""Open311 GeoReport v2 read endpoints over the office's cases."""

from __future__ import annotations

from tests.api.conftest import PT_RESIDENT, Api
from tests.factories import RESIDENT, WORKER_A

FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


def test_services_are_the_categories(client, make_key, city, categories):
    services = Api(client, make_key("DH")).get("/api/v1/open311/services.json").json()
    assert [s["service_code"] for s in services] == ["health", "safety", "general"]
    assert services[1]["keywords"] == "着火,护栏" and services[0]["type"] == "realtime"


def test_requests_map_cases_and_respect_the_office(client, make_key, phone, clock, categories):
    key = make_key("DH-JF")
    office = Api(client, key)
    phone(RESIDENT).text("楼道灯坏了")
    clock.advance(minutes=1)
    phone(RESIDENT.replace("0001", "0002")).text("翁山新村3幢 着火了")  # urgent, safety
    phone(PT_RESIDENT).text("码头")  # another county
    cases = office.get("/api/v1/cases").json()["items"]
    normal = next(c for c in cases if c["priority"] == "normal")
    phone(WORKER_A).text(f"{normal['code']} 办结 换好了")

    listed = office.get("/api/v1/open311/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [str(c["id"]) for c in cases]
    assert set(listed[0]) == FIELDS
    done = next(r for r in listed if r["service_request_id"] == str(normal["id"]))
    assert done["status"] == "closed" and done["status_notes"] == "已办结"
    assert done["agency_responsible"] == "翁山一网格服务团队"
    assert done["service_notice"] == f"#{normal['code']}" and done["address"] is None
    assert "13700000001" not in str(listed)

    def ids(**params: object) -> list[str]:
        r = office.get("/api/v1/open311/requests.json", **params)
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert ids(status="closed") == [str(normal["id"])]
    assert len(ids(status="open")) == 1 and ids(service_code="safety") == ids(status="open")
    assert ids(service_code="general") == [str(normal["id"])]
    assert ids(service_request_id=f"{normal['id']},999") == [str(normal["id"])]
    assert ids(end_date="2026-11-01T00:00:00Z") == []
    number = office.get("/api/v1/open311/requests.json", start_date="0.5")
    assert number.status_code == 422 and "ISO-8601" in number.text
    one = office.get(f"/api/v1/open311/requests/{normal['id']}.json").json()
    assert len(one) == 1 and one[0]["service_request_id"] == str(normal["id"])

    # The GeoReport api_key parameter works too; another office gets a 404.
    plain = client.get("/api/v1/open311/requests.json", params={"api_key": key})
    assert plain.status_code == 200 and len(plain.json()) == 2
    assert client.get("/api/v1/open311/services.json").status_code == 401
    other = Api(client, make_key("PT"))
    assert other.get(f"/api/v1/open311/requests/{normal['id']}.json").status_code == 404
    theirs = [r["service_request_id"] for r in other.get("/api/v1/open311/requests.json").json()]
    assert len(theirs) == 1 and str(normal["id"]) not in theirs


def test_phone_numbers_in_a_residents_text_are_masked_everywhere_an_office_reads_it(
    client, make_key, phone
):
    office = Api(client, make_key("DH-JF"))
    phone(RESIDENT).text("楼道灯坏了，请打我女儿电话13912345678或0580-2021234")
    case = office.get("/api/v1/cases").json()["items"][0]
    detail = office.get(f"/api/v1/cases/{case['id']}").json()
    listed = office.get("/api/v1/open311/requests.json").json()
    for shown in (case["summary"], str(detail), listed[0]["description"]):
        assert "13912345678" not in shown and "2021234" not in shown
        assert "139****5678" in shown and "楼道灯坏了" in shown
