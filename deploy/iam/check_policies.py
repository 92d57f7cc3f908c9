#!/usr/bin/env python3
"""Offline checks of the IAM policy documents in deploy/iam/.

Usage: check_policies.py [DIR]        (default: the folder of this script)

- revocation-policy.json: the least privilege of the revocation check. It must
  parse as JSON, be a version 2012-10-17 identity policy whose every
  statement is `Effect: Allow`, grants exactly `cognito-idp:AdminGetUser`
  (no wildcard, no other action, no NotAction) on Cognito user pool ARNs only
  (`arn:aws:cognito-idp:REGION:ACCOUNT_ID:userpool/USER_POOL_ID`, the
  placeholders or real values; no `*`, no NotResource, no Principal).
- trust-ecs-task.json, trust-eks-pod-identity.json, trust-irsa.json: trust
  policies of the role that holds it, each letting in only its one principal
  with its one way of assuming the role (ECS tasks of one account; the EKS
  Pod Identity agent; one Kubernetes service account through the cluster's
  OIDC provider).

Then a self-test: mutated copies of revocation-policy.json that widen it
(a wildcard or extra action, a `*` or non-userpool resource, NotAction, Deny
mixed in, a Principal) must each be refused, so the check cannot pass by
checking nothing.

Prints one line per check and exits non-zero if any failed. Standard library only.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

VERSION = "2012-10-17"
ACTION = "cognito-idp:AdminGetUser"
PARTITION = r"arn:aws(?:-cn|-us-gov)?"
REGION = r"(?:REGION|[a-z]{2}(?:-[a-z]+)+-\d)"
ACCOUNT = r"(?:ACCOUNT_ID|\d{12})"
USERPOOL_ARN = re.compile(rf"^{PARTITION}:cognito-idp:{REGION}:{ACCOUNT}:userpool/(?:USER_POOL_ID|[\w-]+_[0-9A-Za-z]+)$")
OIDC_PROVIDER_ARN = re.compile(
    rf"^{PARTITION}:iam::{ACCOUNT}:oidc-provider/(oidc\.eks\.{REGION}\.amazonaws\.com/id/(?:OIDC_ID|[0-9A-F]{{32}}))$"
)
SERVICE_ACCOUNT_SUB = re.compile(r"^system:serviceaccount:[a-zA-Z0-9_.-]+:[a-zA-Z0-9_.-]+$")
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
TRUST_KEYS = {"Sid", "Effect", "Principal", "Action", "Condition"}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(doc: Any) -> list[dict]:
    if not isinstance(doc, dict):
        raise ValueError("the policy is not a JSON object")
    extra = set(doc) - {"Version", "Id", "Statement"}
    if extra:
        raise ValueError(f"unknown top-level keys {sorted(extra)}")
    if doc.get("Version") != VERSION:
        raise ValueError(f"Version must be {VERSION!r} (policy variables and current grammar), not {doc.get('Version')!r}")
    stmts = as_list(doc.get("Statement"))
    if not stmts or not all(isinstance(s, dict) for s in stmts):
        raise ValueError("Statement must be one statement object or a non-empty list of them")
    sids = [s["Sid"] for s in stmts if "Sid" in s]
    if len(sids) != len(set(sids)):
        raise ValueError("Sid values must be unique")
    return stmts


def revocation_problems(doc: Any) -> list[str]:
    """Why ``doc`` is not exactly 'AdminGetUser on user pools' ([] when it is)."""
    try:
        stmts = statements(doc)
    except ValueError as e:
        return [str(e)]
    problems = []
    for i, s in enumerate(stmts):
        where = f"Statement[{i}]"
        extra = set(s) - STATEMENT_KEYS
        if extra:
            problems.append(f"{where} has {sorted(extra)} (an identity policy names no Principal; no NotAction/NotResource)")
        if s.get("Effect") != "Allow":
            problems.append(f"{where}: Effect must be Allow, not {s.get('Effect')!r}")
        actions = as_list(s.get("Action"))
        if actions != [ACTION]:
            problems.append(f"{where}: Action must be exactly {ACTION!r}, not {s.get('Action')!r}")
        resources = as_list(s.get("Resource"))
        if not resources or None in resources:
            problems.append(f"{where}: no Resource")
        for r in resources:
            if r is not None and not (isinstance(r, str) and USERPOOL_ARN.match(r)):
                problems.append(f"{where}: Resource {r!r} is not a Cognito user pool ARN "
                                "(arn:aws:cognito-idp:REGION:ACCOUNT_ID:userpool/USER_POOL_ID)")
    return problems


def trust_problems(doc: Any, principal: dict, actions: set[str], check: Callable[[dict], list[str]]) -> list[str]:
    try:
        stmts = statements(doc)
    except ValueError as e:
        return [str(e)]
    problems = []
    for i, s in enumerate(stmts):
        where = f"Statement[{i}]"
        extra = set(s) - TRUST_KEYS
        if extra:
            problems.append(f"{where} has {sorted(extra)}")
        if s.get("Effect") != "Allow":
            problems.append(f"{where}: Effect must be Allow")
        got = s.get("Principal")
        if not isinstance(got, dict) or set(got) != set(principal) or any(
            not check_principal(got[k], v) for k, v in principal.items()
        ):
            problems.append(f"{where}: Principal must be {principal}, not {got!r}")
        if set(as_list(s.get("Action"))) != actions:
            problems.append(f"{where}: Action must be {sorted(actions)}, not {s.get('Action')!r}")
        problems += [f"{where}: {p}" for p in check(s)]
    return problems


def check_principal(value: Any, want: Any) -> bool:
    if isinstance(want, re.Pattern):
        return isinstance(value, str) and bool(want.match(value))
    return value == want


def ecs_conditions(s: dict) -> list[str]:
    # The confused-deputy guard AWS recommends: only ECS acting for this account.
    cond = s.get("Condition", {})
    account = cond.get("StringEquals", {}).get("aws:SourceAccount")
    source = cond.get("ArnLike", {}).get("aws:SourceArn", "")
    problems = []
    if not (isinstance(account, str) and re.fullmatch(ACCOUNT, account)):
        problems.append("Condition StringEquals aws:SourceAccount (one account) is missing")
    if not re.fullmatch(rf"{PARTITION}:ecs:{REGION}:{ACCOUNT}:\*", source):
        problems.append("Condition ArnLike aws:SourceArn (arn:aws:ecs:REGION:ACCOUNT_ID:*) is missing")
    elif account and source.split(":")[4] != account:
        problems.append("aws:SourceArn and aws:SourceAccount name different accounts")
    return problems


def irsa_conditions(s: dict) -> list[str]:
    m = OIDC_PROVIDER_ARN.match(s.get("Principal", {}).get("Federated", "") or "")
    if not m:
        return []  # the Principal check already says so
    issuer = m.group(1)
    equals = s.get("Condition", {}).get("StringEquals", {})
    problems = []
    if set(equals) != {f"{issuer}:sub", f"{issuer}:aud"}:
        problems.append(f"Condition StringEquals must hold exactly {issuer}:sub and {issuer}:aud, not {sorted(equals)}")
    if equals.get(f"{issuer}:aud") != "sts.amazonaws.com":
        problems.append(f"{issuer}:aud must be sts.amazonaws.com")
    sub = equals.get(f"{issuer}:sub", "")
    if not (isinstance(sub, str) and SERVICE_ACCOUNT_SUB.match(sub)):
        problems.append(f"{issuer}:sub must name one service account (system:serviceaccount:NAMESPACE:NAME), "
                        f"not {sub!r} (StringLike and wildcards would let other pods in)")
    if "StringLike" in s.get("Condition", {}):
        problems.append("no StringLike: the service account is matched exactly")
    return problems


TRUSTS = {
    "trust-ecs-task.json": ({"Service": "ecs-tasks.amazonaws.com"}, {"sts:AssumeRole"}, ecs_conditions),
    "trust-eks-pod-identity.json": (
        {"Service": "pods.eks.amazonaws.com"}, {"sts:AssumeRole", "sts:TagSession"}, lambda s: (
            ["EKS Pod Identity: no Condition needed (the association names the service account)"]
            if s.get("Condition") else []
        ),
    ),
    "trust-irsa.json": ({"Federated": OIDC_PROVIDER_ARN}, {"sts:AssumeRoleWithWebIdentity"}, irsa_conditions),
}


def widened(policy: dict) -> dict[str, dict]:
    """Copies of a good revocation policy, each wider than it should be."""
    def mutate(change: Callable[[dict], None]) -> dict:
        doc = copy.deepcopy(policy)
        change(doc)
        return doc

    first = lambda d: as_list(d["Statement"])[0]  # noqa: E731
    return {
        "wildcard action cognito-idp:*": mutate(lambda d: first(d).update(Action="cognito-idp:*")),
        "wildcard action cognito-idp:Admin*": mutate(lambda d: first(d).update(Action="cognito-idp:Admin*")),
        "an extra action (AdminDisableUser)": mutate(
            lambda d: first(d).update(Action=[ACTION, "cognito-idp:AdminDisableUser"])),
        "Resource *": mutate(lambda d: first(d).update(Resource="*")),
        "every pool of the account (userpool/*)": mutate(
            lambda d: first(d).update(Resource="arn:aws:cognito-idp:REGION:ACCOUNT_ID:userpool/*")),
        "a non-Cognito resource": mutate(
            lambda d: first(d).update(Resource="arn:aws:s3:::bucket")),
        "NotAction": mutate(lambda d: first(d).update(NotAction=first(d).pop("Action"))),
        "NotResource": mutate(lambda d: first(d).update(NotResource=first(d).pop("Resource"))),
        "a second statement allowing iam:PassRole": mutate(lambda d: d.update(Statement=as_list(d["Statement"]) + [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}])),
        "Effect Deny": mutate(lambda d: first(d).update(Effect="Deny")),
        "a Principal": mutate(lambda d: first(d).update(Principal="*")),
        "Version 2008-10-17": mutate(lambda d: d.update(Version="2008-10-17")),
        "no Resource": mutate(lambda d: first(d).pop("Resource")),
    }


class Checks:
    def __init__(self) -> None:
        self.passed = self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok   {what}")
        else:
            self.failed += 1
            print(f"  FAIL {what}" + (f" -- {detail}" if detail else ""))
        return ok


def load(c: Checks, path: Path) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        c.check(False, f"{path.name} is JSON", str(e))
        return None
    c.check(True, f"{path.name} is JSON")
    return doc


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    c = Checks()
    policy = load(c, folder / "revocation-policy.json")
    if policy is not None:
        problems = revocation_problems(policy)
        c.check(not problems, f"revocation-policy.json allows only {ACTION} on Cognito user pool ARNs", "; ".join(problems))
        for name, doc in widened(policy).items():
            c.check(bool(revocation_problems(doc)), f"self-test: a policy with {name} is refused")
    for name, (principal, actions, extra) in TRUSTS.items():
        doc = load(c, folder / name)
        if doc is not None:
            problems = trust_problems(doc, principal, actions, extra)
            who = ", ".join(f"{k} {v.pattern if isinstance(v, re.Pattern) else v}" for k, v in principal.items())
            if "Federated" in principal:
                who = "Federated: the cluster's OIDC provider, one service account"
            c.check(not problems, f"{name} trusts only {who} with {sorted(actions)}", "; ".join(problems))
    print(f"deploy/iam: {c.passed} of {c.passed + c.failed} checks ok")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
