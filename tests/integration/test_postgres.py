"""Gatehouse on PostgreSQL: two replicas share one state; an outage is reported, not hidden."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import Server, free_port, gatehouse


def test_two_replicas_share_one_state(servers, tmp_path, postgres_url):
    url, psql = postgres_url
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    env = {"GATEHOUSE_ROOT_KEY_FILE": str(key)}
    # Start both at once: migrations and key generation race, and must settle on one state.
    a = servers(tmp_path / "a", "--database", url, env=env)
    b = servers(tmp_path / "b", "--database", url, env=env)
    a.start(wait=False)
    b.start(wait=False)
    for s in (a, b):
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(s.url + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail(f"replica did not start: {s.proc.stderr.read() if s.proc.poll() is not None else ''}")

    keys = subprocess.run(psql + ["-At", "-c", "SELECT count(*), count(DISTINCT purpose) FROM sealed_keys"], capture_output=True, text=True, check=True)
    assert keys.stdout.strip() == "6|6"
    versions = subprocess.run(psql + ["-At", "-c", "SELECT version FROM gatehouse_schema_migrations"], capture_output=True, text=True, check=True)
    # Each migration exactly once, in order, through the newest (13: passkey names and session browsers).
    applied = versions.stdout.split()
    assert applied == [str(n) for n in range(1, len(applied) + 1)] and len(applied) >= 13, applied

    # An invitation made through one replica is visible through the other.
    r = gatehouse("admin", "invite", "alice", "--email", "alice@example.org", "--data-dir", str(a.data_dir))
    assert r.returncode == 0, r.stderr
    r = gatehouse("admin", "invite", "alice", "--email", "alice@example.org", "--data-dir", str(b.data_dir))
    assert r.returncode == 1 and "alice already has a pending invitation" in r.stderr
    sa = json.loads(gatehouse("admin", "status", "--json", "--data-dir", str(a.data_dir)).stdout)
    sb = json.loads(gatehouse("admin", "status", "--json", "--data-dir", str(b.data_dir)).stdout)
    assert sa["storeKind"] == sb["storeKind"] == "postgresql"
    assert sa["pendingInvitations"] == sb["pendingInvitations"]
    assert sa["auditEvents"] == sb["auditEvents"]
    # Both replicas sign checkpoints of the one shared log; either can verify all of it.
    for s in (a, b):
        assert gatehouse("audit", "checkpoint", "--data-dir", str(s.data_dir)).returncode == 0
    for s in (a, b):
        r = gatehouse("audit", "verify", "--data-dir", str(s.data_dir))
        assert r.returncode == 0, r.stderr
    # The audit sequence is gap-free across both writers.
    seqs = subprocess.run(psql + ["-At", "-c", "SELECT seq FROM audit_events ORDER BY seq"], capture_output=True, text=True, check=True)
    numbers = [int(x) for x in seqs.stdout.split()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert a.stop() == 0 and b.stop() == 0


def test_a_replica_with_another_root_key_is_refused(servers, tmp_path, postgres_url):
    url, _ = postgres_url
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    k1.write_bytes(os.urandom(32))
    k2.write_bytes(os.urandom(32))
    os.chmod(k1, 0o600)
    os.chmod(k2, 0o600)
    servers(tmp_path / "a", "--database", url, env={"GATEHOUSE_ROOT_KEY_FILE": str(k1)}).start().stop()
    s = Server(tmp_path / "b", "--database", url, env={"GATEHOUSE_ROOT_KEY_FILE": str(k2)})
    assert s.run_to_exit() == 1
    assert "root key does not match" in s.stderr


def test_database_outage_shows_in_readiness_and_refuses_changes(servers, tmp_path):
    """A PostgreSQL of its own, stopped under a running server."""
    pg_bin = os.environ.get("GATEHOUSE_TEST_PG_BIN")
    if not pg_bin:
        pytest.skip("GATEHOUSE_TEST_PG_BIN not set")
    base = tempfile.mkdtemp(prefix="gh-pg-outage-")
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_pg + [f"{pg_bin}/initdb", "-D", f"{base}/data", "-U", "postgres", "-A", "trust", "--no-sync"], check=True, capture_output=True)
    start = as_pg + [f"{pg_bin}/pg_ctl", "-D", f"{base}/data", "-l", f"{base}/log", "-w", "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off", "start"]
    stop = as_pg + [f"{pg_bin}/pg_ctl", "-D", f"{base}/data", "-m", "immediate", "-w", "stop"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        s = servers(tmp_path / "d", "--database", f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable").start()
        subprocess.run(stop, check=True, capture_output=True)
        r = requests.get(s.url + "/readyz", timeout=10)
        assert r.status_code == 503 and r.json()["reason"] == "store unreachable"
        assert requests.get(s.url + "/healthz").status_code == 200
        r = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", "--data-dir", str(s.data_dir))
        assert r.returncode == 1 and r.stderr.startswith("gatehouse: error: "), r.stderr
        # Back up: ready again, and the refused invitation was never written.
        subprocess.run(start, check=True, capture_output=True)
        deadline = time.time() + 20
        while requests.get(s.url + "/readyz", timeout=10).status_code != 200:
            assert time.time() < deadline, "did not recover"
            time.sleep(0.2)
        r = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", "--data-dir", str(s.data_dir))
        assert r.returncode == 0, r.stderr
        assert s.stop() == 0
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
