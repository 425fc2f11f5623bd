"""The policy through the real binary: offline check, apply/diff/show/history/explain over the
admin socket, refusals that write nothing but an audit entry, survival across restart, and
replicas on one PostgreSQL picking up each other's versions."""
import json
import os
import time

import pytest

from conftest import BIN, Server, gatehouse

ROOT = os.path.join(os.path.dirname(__file__), "../..")
EXAMPLE = os.path.join(ROOT, "examples/company.policy")


def run(data, *args):
    return gatehouse(*args, "--data-dir", str(data))


def test_check_needs_no_server_and_reports_every_problem(tmp_path):
    r = gatehouse("policy", "check", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert "company.policy: valid, 12 rules, 22 tests passed" in r.stdout

    bad = tmp_path / "bad.policy"
    bad.write_text("group a { color = red }\nallow ssh x { who = [ghost] logins = [root] hosts = [h] }\n")
    r = gatehouse("policy", "check", str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "bad.policy:1:11: unknown field 'color' in group; expected one of members, description",
        "bad.policy:2:22: unknown group or role 'ghost'; write user:ghost for a person",
        "bad.policy:2:54: unknown host 'h'",
    ]
    assert "3 problem(s) in bad.policy" in r.stderr

    failing = tmp_path / "failing.policy"
    failing.write_text(open(EXAMPLE).read().replace("erin cannot use grafana", "erin can use grafana"))
    r = gatehouse("policy", "check", str(failing))
    assert r.returncode == 1
    assert "FAIL failing.policy:161: erin can use grafana — deny: no rule allows it" in r.stdout
    assert "1 of 22 tests failed" in r.stderr

    # Hostile files: too big, not UTF-8, binary, deeply nested, from standard input.
    big = tmp_path / "big.policy"
    big.write_bytes(b"#" * (8 * 1024 * 1024 + 1))
    r = gatehouse("policy", "check", str(big))
    assert r.returncode == 1 and "is larger than 8388608 bytes" in r.stderr
    (tmp_path / "latin1.policy").write_bytes(b"group caf\xe9 {}\n")
    r = gatehouse("policy", "check", str(tmp_path / "latin1.policy"))
    assert r.returncode == 1 and "not UTF-8" in r.stderr
    (tmp_path / "nested.policy").write_text("version = " + "[" * 50000)
    r = gatehouse("policy", "check", str(tmp_path / "nested.policy"))
    assert r.returncode == 1 and "nested deeper than" in r.stdout
    r = gatehouse("policy", "check", str(tmp_path / "missing.policy"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    import subprocess
    r = subprocess.run([BIN, "policy", "check", "-"], input=open(EXAMPLE).read(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("stdin: valid"), r.stderr


def test_apply_diff_show_history_explain_and_restart(servers, tmp_path):
    data = tmp_path / "data"
    server = servers(data).start()

    r = run(data, "policy", "history")
    assert "no policy has been applied yet" in r.stdout
    r = run(data, "policy", "explain", "--user", "alice", "--ssh", "root@web-1")
    assert r.returncode == 2 and "host 'web-1' is not in the policy" in r.stdout

    r = run(data, "policy", "apply", EXAMPLE, "--comment", "first version", "--expect-version", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("applied company.policy as version 1: 12 rules, 22 tests passed")
    assert "+ ssh web-1 group:sre root,deploy allow [sre-prod]" in r.stdout
    r = run(data, "policy", "apply", EXAMPLE)
    assert r.stdout.strip() == "unchanged: company.policy is already version 1"

    # A person joining a group is a change in access, and diff says so.
    v2 = tmp_path / "v2.policy"
    v2.write_text(open(EXAMPLE).read().replace("members = [erin]", "members = [erin, frank]"))
    r = run(data, "policy", "diff", str(v2))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["against version 1: 1 granted, 0 revoked", "+ member group:contractors user:frank"]

    # Refusals: a stale expected version, a failing test, a broken file. Nothing is written.
    r = run(data, "policy", "apply", str(v2), "--expect-version", "7")
    assert r.returncode == 1 and "the active policy is version 1, not 7" in r.stderr
    failing = tmp_path / "failing.policy"
    failing.write_text(open(EXAMPLE).read().replace("apps = [wiki]", "apps = [wiki, grafana]"))
    r = run(data, "policy", "apply", str(failing))
    assert r.returncode == 1 and "1 of 22 policy tests failed" in r.stderr and "erin cannot use grafana" in r.stderr
    broken = tmp_path / "broken.policy"
    broken.write_text("allow ssh {")
    r = run(data, "policy", "apply", str(broken))
    assert r.returncode == 1 and "broken.policy:1:1:" in r.stderr

    r = run(data, "policy", "apply", str(v2), "--expect-version", "1", "--comment", "frank joins")
    assert r.returncode == 0 and "as version 2" in r.stdout, r.stderr
    history = run(data, "policy", "history").stdout.splitlines()
    assert [h.split()[0] for h in history] == ["v2", "v1"]
    assert history[0].endswith("frank joins") and history[1].endswith("first version")
    assert run(data, "policy", "show", "--version", "1").stdout == open(EXAMPLE).read()
    assert run(data, "policy", "show").stdout == v2.read_text()

    r = run(data, "policy", "explain", "--user", "erin", "--ssh", "root@web-1", "--json")
    assert r.returncode == 2
    e = json.loads(r.stdout)
    assert e["allowed"] is False and e["rule"] == "no-contractor-root" and e["location"] == "policy@v2:93"
    r = run(data, "policy", "explain", "--user", "carol", "--reach", "db-1:5432", "--from", "192.168.10.9")
    assert r.returncode == 0 and "allow by allow reach developers-db (policy@v2:104)" in r.stdout
    r = run(data, "policy", "explain", "--user", "alice", "--ssh", "root@web-1", "--stepped-up", "30")
    assert r.returncode == 0
    r = run(data, "policy", "explain", "--user", "alice", "--ssh", "root@web-1")
    assert r.returncode == 2 and "needs a passkey check within the last 10m" in r.stdout
    r = run(data, "policy", "explain", "--user", "alice", "--ssh", "root@web-1", "--app", "wiki")
    assert r.returncode == 1 and "exactly one of" in r.stderr

    # Every apply and every refusal of a well-formed request is in the audit log, which verifies.
    tail = [json.loads(l) for l in run(data, "audit", "tail", "-n", "20").stdout.splitlines()]
    policy_events = [(e["code"], e["outcome"]) for e in tail if e["code"].startswith("policy.")]
    assert policy_events == [("policy.applied", "allowed"), ("policy.rejected", "denied"), ("policy.rejected", "denied"), ("policy.applied", "allowed")]
    applied = [e for e in tail if e["code"] == "policy.applied"][-1]
    import hashlib
    assert applied["details"]["sha256"] == hashlib.sha256(v2.read_bytes()).hexdigest()
    assert applied["details"]["previous_version"] == "1" and applied["reason"] == "frank joins"

    # The policy survives a restart and is in force at once.
    assert server.stop() == 0
    server = servers(data).start()
    assert json.loads(run(data, "admin", "status", "--json").stdout)["policyVersion"] == 2
    r = run(data, "policy", "explain", "--user", "frank", "--app", "wiki")
    assert r.returncode == 0, r.stdout
    assert run(data, "audit", "verify").returncode == 0


def test_replicas_pick_up_each_others_versions(servers, tmp_path, postgres_url):
    url, _ = postgres_url
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    env = {"GATEHOUSE_ROOT_KEY_FILE": str(key)}
    a = servers(tmp_path / "a", "--database", url, env=env).start()
    b = servers(tmp_path / "b", "--database", url, env=env).start()
    r = run(a.data_dir, "policy", "apply", EXAMPLE)
    assert r.returncode == 0, r.stderr
    # B reloads the latest version before it answers.
    r = run(b.data_dir, "policy", "explain", "--user", "carol", "--app", "grafana")
    assert r.returncode == 0 and "policy:     version 1" in r.stdout
    v2 = tmp_path / "v2.policy"
    v2.write_text(open(EXAMPLE).read().replace("allow app staff-apps {\n  who = [sre, developers]", "allow app staff-apps {\n  who = [sre]")
                  .replace("carol can use grafana", "carol cannot use grafana"))
    r = run(b.data_dir, "policy", "apply", str(v2), "--expect-version", "1")
    assert r.returncode == 0, r.stderr
    # A racing apply on A against version 1 is refused.
    r = run(a.data_dir, "policy", "apply", EXAMPLE, "--expect-version", "1")
    assert r.returncode == 1 and "not 1" in r.stderr
    r = run(a.data_dir, "policy", "explain", "--user", "carol", "--app", "grafana")
    assert r.returncode == 2 and "version 2" in r.stdout
