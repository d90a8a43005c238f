"""`gridline route`: the decision and its evidence, without creating a case."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli.main import cli
from app.importer.demo_city import DEMO_PHONES
from app.models.cases import Case
from tests.cli.test_cli import _count


def test_route_prints_the_decision_and_evidence_without_a_case(tmp_path):
    env = {
        "GRIDLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GRIDLINE_SMS_PROVIDER": "console",
    }
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--no-serve"], env=env).exit_code == 0

    routed = runner.invoke(cli, ["route", "翁山新村三号楼2单元灯坏了"], env=env)
    assert routed.exit_code == 0, routed.output
    assert routed.output.startswith("route → DH-JF-WS-01 翁山社区第一网格 (by address)")
    evidence = json.loads(routed.output.split("\n", 2)[2])
    assert evidence["entry"] == "翁山新村3幢" and evidence["won"] == "address"

    asked = runner.invoke(cli, ["route", "翁山新村路灯坏了"], env=env)
    assert asked.exit_code == 0, asked.output
    assert "回复1 翁山新村1-3幢；回复2 翁山新村4-6幢" in asked.output

    home = runner.invoke(cli, ["route", "楼道灯坏了", "--from", DEMO_PHONES["resident"]], env=env)
    assert home.exit_code == 0, home.output
    assert "DH-JF-WS-01" in home.output and "(by registered)" in home.output
    assert DEMO_PHONES["resident"] not in home.output  # masked

    bad = runner.invoke(cli, ["route", "x", "--from", "12"], env=env)
    assert bad.exit_code == 2
    assert _count(env, Case) == 0
