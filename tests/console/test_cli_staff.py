"""`gridline staff …`: create (password from a prompt or the environment), list,
disable, revoke-sessions; and the production password hashing."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli.main import cli
from app.console.accounts import create_staff
from app.db import unit_of_work
from app.models.console import Staff
from tests.console.conftest import PASSWORD, Console


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {"GRIDLINE_DATABASE_URL": db_url, "GRIDLINE_SMS_PROVIDER": "console", **extra}


def test_create_with_the_password_from_the_environment_then_log_in(db_url, app, city):
    runner = CliRunner()
    env = _env(db_url, GRIDLINE_STAFF_PASSWORD=PASSWORD)
    r = runner.invoke(
        cli,
        ["staff", "create", "--office", "DH-JF", "--role", "handler", "--username", "Wang.Li"],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "wang.li" in r.output and PASSWORD not in r.output
    assert Console(app).login("wang.li").status_code == 303

    listed = runner.invoke(cli, ["staff", "list"], env=env)
    assert listed.exit_code == 0
    assert "wang.li\tDH-JF\thandler\tTrue" in listed.output


def test_create_prompts_for_the_password_twice(db_url, app, city):
    runner = CliRunner()
    r = runner.invoke(
        cli,
        ["staff", "create", "--office", "CITY", "--role", "admin", "--username", "chief"],
        env=_env(db_url),
        input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert r.exit_code == 0, r.output
    assert "do not match" in r.output.lower()
    assert Console(app).login("chief").status_code == 303


def test_create_refuses_bad_input_with_a_reason(db_url, city):
    runner = CliRunner()
    env = _env(db_url, GRIDLINE_STAFF_PASSWORD=PASSWORD)
    cases = [
        (["--office", "DH-01", "--role", "handler", "--username", "a1"], "town"),
        (["--office", "DH-JF", "--role", "boss", "--username", "a2"], "role"),
        (["--office", "DH-JF", "--role", "viewer", "--username", "x"], "username"),
        (["--office", "DH-JF", "--role", "viewer", "--username", "bad name"], "username"),
    ]
    for args, reason in cases:
        r = runner.invoke(cli, ["staff", "create", *args], env=env)
        assert r.exit_code == 1, (args, r.output)
        assert reason in r.output, (args, r.output)
    short = runner.invoke(
        cli,
        ["staff", "create", "--office", "DH-JF", "--role", "viewer", "--username", "shorty"],
        env=_env(db_url, GRIDLINE_STAFF_PASSWORD="short"),
    )
    assert short.exit_code == 1 and "at least 10" in short.output
    ok = ["staff", "create", "--office", "DH-JF", "--role", "viewer", "--username", "twice"]
    assert runner.invoke(cli, ok, env=env).exit_code == 0
    again = runner.invoke(cli, ok, env=env)
    assert again.exit_code == 1 and "taken" in again.output


def test_disable_and_revoke_sessions(db_url, app, browser):
    runner = CliRunner()
    env = _env(db_url)
    first = browser("DH-JF", "handler", "first")
    second = browser("DH-JF", "handler", "second")
    r = runner.invoke(cli, ["staff", "revoke-sessions", "first"], env=env)
    assert r.exit_code == 0 and "ended 1 session" in r.output
    assert first.get("/console").status_code == 303
    assert Console(app).login("first").status_code == 303  # may log in again

    r = runner.invoke(cli, ["staff", "disable", "second"], env=env)
    assert r.exit_code == 0
    assert second.get("/console").status_code == 303
    assert Console(app).login("second").status_code == 401
    assert "second\tDH-JF\thandler\tFalse" in runner.invoke(cli, ["staff", "list"], env=env).output
    assert runner.invoke(cli, ["staff", "disable", "nobody"], env=env).exit_code == 1


def test_production_hashes_are_argon2id_rfc9106_low_memory(rt, city, monkeypatch):
    from app.console import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher())
    with unit_of_work(rt.sessions) as s:
        create_staff(
            s, username="real", office_code="DH", role="viewer", password=PASSWORD, now=rt.clock()
        )
    with rt.sessions() as s:
        stored = s.scalar(select(Staff.password_hash))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(stored, PASSWORD)
