"""Offices and keys: random keys with a visible prefix, stored hashed, 401/403."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli.main import cli
from app.models.offices import ApiKey
from tests.api.conftest import Api, auth


def test_no_key_wrong_key_and_revoked_key_are_401(rt, client, city, make_key):
    key = make_key("DH-JF", "read")
    r = client.get("/api/v1/cases")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"
    assert client.get("/api/v1/cases", headers={"Authorization": "Basic eDp5"}).status_code == 401
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert client.get("/api/v1/cases", headers=auth(wrong)).status_code == 401
    assert client.get("/api/v1/cases", headers=auth("gl_nothing")).status_code == 401
    assert client.get("/api/v1/cases", headers=auth(key)).status_code == 200

    from app.db import unit_of_work
    from app.directory.apikeys import revoke_key

    with unit_of_work(rt.sessions) as session:
        revoke_key(session, prefix=key[:11], now=rt.clock())
    assert client.get("/api/v1/cases", headers=auth(key)).status_code == 401


def test_read_key_reads_but_cannot_act(client, city, make_key, phone):
    from tests.factories import RESIDENT

    phone(RESIDENT).text("楼道灯坏了")
    reader = Api(client, make_key("DH-JF", "read"))
    case_id = reader.get("/api/v1/cases").json()["items"][0]["id"]
    assert reader.get(f"/api/v1/cases/{case_id}").status_code == 200
    r = reader.post(f"/api/v1/cases/{case_id}/claim", {})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    writer = Api(client, make_key("DH-JF", "write"))
    assert writer.post(f"/api/v1/cases/{case_id}/claim", {}).status_code == 200


def test_key_is_stored_only_as_its_hash_with_a_visible_prefix(rt, client, city, make_key):
    key = make_key("DH")
    assert key.startswith("gl_") and len(key) > 40
    with rt.sessions() as session:
        row = session.scalar(select(ApiKey))
        assert row.prefix == key[:11] and key.startswith(row.prefix + "_")
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
        assert key not in stored
    office = Api(client, key).get("/api/v1/office").json()
    assert office == {
        "code": "DH",
        "name": "定海区",
        "level": "county",
        "scope": "write",
        "key_prefix": key[:11],
    }
    # Two keys never share a secret or a prefix.
    other = make_key("DH")
    assert other[:11] != key[:11] and other != key


def test_offices_are_towns_counties_and_the_city(rt, city, make_key):
    from app.errors import DomainError

    for code in ("DH", "DH-JF", "CITY"):
        assert make_key(code).startswith("gl_")
    for code in ("DH-01", "DH-JF-WS", "NOPE"):
        with pytest.raises(DomainError):
            make_key(code)
    with pytest.raises(DomainError):
        make_key("DH", "admin")


def test_cli_create_list_revoke(db_url, rt, client, city, monkeypatch):
    monkeypatch.setenv("GRIDLINE_DATABASE_URL", db_url)
    monkeypatch.setenv("GRIDLINE_SMS_PROVIDER", "console")
    runner = CliRunner()
    created = runner.invoke(cli, ["apikey", "create", "--office", "DH-JF", "--scope", "read"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("gl_") and " " not in key
    assert Api(client, key).get("/api/v1/office").json()["scope"] == "read"

    listed = runner.invoke(cli, ["apikey", "list"])
    assert listed.exit_code == 0
    assert key[:11] in listed.output and "DH-JF" in listed.output and key not in listed.output

    revoked = runner.invoke(cli, ["apikey", "revoke", key[:11]])
    assert revoked.exit_code == 0 and key[:11] in revoked.output
    assert Api(client, key).get("/api/v1/office").status_code == 401

    default = runner.invoke(cli, ["apikey", "create", "--office", "CITY"])
    assert "scope read" in default.output  # least privilege unless asked
    city_key = default.output.strip().splitlines()[-1]
    assert Api(client, city_key).get("/api/v1/office").json()["level"] == "city"

    bad = runner.invoke(cli, ["apikey", "create", "--office", "DH-01"])
    assert bad.exit_code == 1
    assert runner.invoke(cli, ["apikey", "revoke", "gl_00000000"]).exit_code == 1
