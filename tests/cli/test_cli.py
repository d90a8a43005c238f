"""The `gridline` command line, run in-process with typer's runner on a real SQLite file."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli.main import cli
from app.db import make_engine, make_sessionmaker
from app.importer.demo_city import DEMO_PHONES
from app.models.cases import Case
from app.models.directory import Region
from sms.phones import normalize_phone


@pytest.fixture
def env(tmp_path):
    return {
        "GRIDLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GRIDLINE_SMS_PROVIDER": "console",
    }


def run(env, *args: str):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def _count(env, model) -> int:
    engine = make_engine(env["GRIDLINE_DATABASE_URL"])
    try:
        with make_sessionmaker(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(model)))
    finally:
        engine.dispose()


def test_db_upgrade(env):
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_demo_sets_up_and_prints_how_to_try_it(env):
    result = run(env, "demo", "--no-serve")
    assert result.exit_code == 0, result.output
    assert "gridline sms inbound --from" in result.output
    assert DEMO_PHONES["resident"] in result.output
    regions = _count(env, Region)
    assert regions > 8
    # Running it again re-imports without duplicating anything.
    again = run(env, "demo", "--no-serve")
    assert again.exit_code == 0, again.output
    assert _count(env, Region) == regions


def test_sms_inbound_plays_the_whole_loop(env):
    assert run(env, "demo", "--no-serve").exit_code == 0
    resident, worker = DEMO_PHONES["resident"], DEMO_PHONES["worker"]
    opened = run(env, "sms", "inbound", "--from", resident, "--body", "楼道灯坏了")
    assert opened.exit_code == 0, opened.output
    code = re.search(r"#(\d{4,6})", opened.output).group(1)
    assert normalize_phone(worker) in opened.output  # the forward went to the worker
    assert "已收到您的诉求" in opened.output

    claimed = run(env, "sms", "inbound", "--from", worker, "--body", f"{code} 收到")
    assert "已由您签收" in claimed.output
    done = run(env, "sms", "inbound", "--from", worker, "--body", f"{code} 办结 已修好")
    assert "满意请回复1" in done.output
    rated = run(env, "sms", "inbound", "--from", resident, "--body", "1")
    assert "感谢" in rated.output
    assert _count(env, Case) == 1


def test_sms_inbound_refuses_a_bad_phone(env):
    assert run(env, "db", "upgrade").exit_code == 0
    result = run(env, "sms", "inbound", "--from", "abc", "--body", "x")
    assert result.exit_code == 2
    assert "phone" in result.output


def test_import_errors_exit_non_zero_with_file_and_line(env, tmp_path):
    assert run(env, "db", "upgrade").exit_code == 0
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "regions.csv").write_text(
        "code,name,level,parent_code\nDH,定海区,county,\nDH-X,某镇,town,NOPE\n", encoding="utf-8"
    )
    result = run(env, "import", str(folder))
    assert result.exit_code == 1
    assert "regions.csv:3:" in result.output
    assert _count(env, Region) == 0  # nothing of the file was written


def test_bad_configuration_is_refused_with_a_reason(env):
    result = run({**env, "GRIDLINE_SMS_PROVIDER": "twilio"}, "db", "upgrade")
    assert result.exit_code == 2
    assert "TWILIO_ACCOUNT_SID" in result.output


def test_bad_policy_file_is_refused(env, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('[policies.normal]\nclaim_within = "soon"\n', encoding="utf-8")
    assert run(env, "db", "upgrade").exit_code == 0
    result = run(
        {**env, "GRIDLINE_POLICY_FILE": str(policy)},
        "sms",
        "inbound",
        "--from",
        "13700000001",
        "--body",
        "x",
    )
    assert result.exit_code == 2
    assert "policy" in result.output and "p.toml" in result.output
