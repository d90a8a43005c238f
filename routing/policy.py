"""Escalation policy: durations, the TOML file of the contract, and deadlines."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class PolicyError(ValueError):
    pass


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`45s`, `30m`, `2h`, `3d` → timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise PolicyError(f"bad duration {text!r} (use e.g. 45s, 30m, 2h, 3d)")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])
    except OverflowError:
        raise PolicyError(f"duration {text!r} is too long") from None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Policy:
    name: str
    claim_within: timedelta
    escalate_after: timedelta
    resolve_within: timedelta


@dataclass(frozen=True)
class PriorityRule:
    policy: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, Policy]
    rules: tuple[PriorityRule, ...] = field(default=())

    def choose(self, text: str) -> Policy:
        """The first rule whose keyword appears in `text` wins; `normal` otherwise.

        Letters match in any case and width ("ＦＩＲＥ" is "fire").
        """
        folded = _fold(text)
        for rule in self.rules:
            if any(k and _fold(k) in folded for k in rule.keywords):
                return self.policies[rule.policy]
        return self.policies["normal"]


DEFAULT_POLICY_TOML = """
[policies.normal]
claim_within   = "30m"
escalate_after = "60m"
resolve_within = "72h"

[policies.urgent]
claim_within   = "10m"
escalate_after = "20m"
resolve_within = "6h"

[[priority]]
policy   = "urgent"
keywords = ["救命", "着火", "火灾", "溺水", "急救", "台风"]
"""


_POLICY_KEYS = ("claim_within", "escalate_after", "resolve_within")


def parse_policy(text: str) -> PolicySet:
    """Parse the TOML escalation policy; raise `PolicyError` naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from exc
    raw_policies = data.get("policies")
    if not isinstance(raw_policies, dict) or not raw_policies:
        raise PolicyError("no [policies.NAME] table")
    unknown = set(data) - {"policies", "priority"}
    if unknown:
        raise PolicyError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    policies: dict[str, Policy] = {}
    for name, body in raw_policies.items():
        if not isinstance(body, dict):
            raise PolicyError(f"policies.{name} must be a table")
        extra = set(body) - set(_POLICY_KEYS)
        if extra:
            raise PolicyError(f"policies.{name}: unknown key(s) {', '.join(sorted(extra))}")
        try:
            values = {k: parse_duration(body[k]) for k in _POLICY_KEYS}
        except KeyError as exc:
            raise PolicyError(f"policies.{name}: missing {exc.args[0]}") from exc
        except PolicyError as exc:
            raise PolicyError(f"policies.{name}: {exc}") from exc
        if values["escalate_after"] < values["claim_within"]:
            raise PolicyError(f"policies.{name}: escalate_after is before claim_within")
        policies[name] = Policy(name=name, **values)
    if "normal" not in policies:
        raise PolicyError("a [policies.normal] table is required")
    raw_rules = data.get("priority", [])
    if not isinstance(raw_rules, list):
        raise PolicyError("priority must be an array of tables: write [[priority]]")
    rules: list[PriorityRule] = []
    for i, rule in enumerate(raw_rules, start=1):
        if not isinstance(rule, dict):
            raise PolicyError(f"priority rule {i} must be a table")
        extra = set(rule) - {"policy", "keywords"}
        if extra:
            raise PolicyError(f"priority rule {i}: unknown key(s) {', '.join(sorted(extra))}")
        if rule.get("policy") not in policies:
            raise PolicyError(f"priority rule {i}: unknown policy {rule.get('policy')!r}")
        keywords = rule.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise PolicyError(f"priority rule {i}: keywords must be a list of strings")
        rules.append(PriorityRule(policy=rule["policy"], keywords=tuple(keywords)))
    return PolicySet(policies=policies, rules=tuple(rules))


def default_policy() -> PolicySet:
    """The built-in policy of DESIGN.md, used when no policy file is given."""
    return parse_policy(DEFAULT_POLICY_TOML)


@dataclass(frozen=True)
class Deadlines:
    claim_due_at: datetime
    escalate_due_at: datetime
    resolve_due_at: datetime


def deadlines_for(policy: Policy, *, opened_at: datetime) -> Deadlines:
    """Deadlines run from the moment the case opens."""
    return Deadlines(
        claim_due_at=opened_at + policy.claim_within,
        escalate_due_at=opened_at + policy.escalate_after,
        resolve_due_at=opened_at + policy.resolve_within,
    )
