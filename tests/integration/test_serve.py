"""`gatehouse serve` on the embedded store: first start, restart, signals, endpoints, admin socket."""
import hashlib
import json
import os
import re
import signal
import sqlite3
import stat

import requests

from conftest import Server, gatehouse

ENROLL = re.compile(r"http://localhost:\d+/enroll#token=([A-Za-z0-9_-]{43})")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_start_creates_sealed_state_and_prints_one_enrollment_url(servers, tmp_path):
    data = tmp_path / "data"
    s = servers(data).start()
    assert requests.get(s.url + "/healthz").json() == {"status": "alive"}
    assert mode(data) == 0o700
    assert mode(data / "root.key") == 0o600
    assert os.path.getsize(data / "root.key") == 32
    assert stat.S_ISSOCK(os.stat(data / "admin.sock").st_mode)
    assert mode(data / "admin.sock") == 0o600
    assert s.stop() == 0
    links = ENROLL.findall(s.stdout)
    assert len(links) == 1, s.stdout
    # The secret is printed, never logged, and only its hash is stored.
    assert links[0] not in s.stderr
    db = sqlite3.connect(data / "gatehouse.sqlite")
    (stored,) = db.execute("SELECT token_hash FROM invitations WHERE kind = 'bootstrap'").fetchone()
    assert stored == hashlib.sha256(links[0].encode()).hexdigest()
    purposes = {row[0] for row in db.execute("SELECT purpose FROM sealed_keys")}
    assert purposes == {"token-signing", "ssh-user-ca", "ssh-host-ca", "x509-root", "audit-signing", "ssh-bastion-host"}
    # Private keys are not stored in clear: every sealed blob is version 1 AES-GCM of a 32-byte key.
    for (blob,) in db.execute("SELECT sealed_private_key FROM sealed_keys"):
        import base64
        raw = base64.b64decode(blob)
        assert raw[0] == 1 and len(raw) == 1 + 12 + 32 + 16
    codes = [row[0] for row in db.execute("SELECT code FROM audit_events ORDER BY seq")]
    # The token-signing key also becomes the first OIDC signing key (oidc.key_rotated, first=true).
    # The X.509 authority's first intermediate is audited once too (pki.authority_activated).
    rest = [c for c in codes if c != "pki.authority_activated"]
    assert codes.count("pki.authority_activated") == 1
    assert rest[0] == "system.initialized" and rest.count("key.generated") == 6 and rest[-2:] == ["invitation.created", "oidc.key_rotated"]
    # The socket is removed on a clean stop.
    assert not os.path.exists(data / "admin.sock")


def test_restart_keeps_keys_and_stops_bootstrap_once_an_admin_exists(servers, tmp_path):
    data = tmp_path / "data"
    s1 = servers(data).start()
    s1.stop()
    key_before = (data / "root.key").read_bytes()
    db = sqlite3.connect(data / "gatehouse.sqlite")
    keys_before = db.execute("SELECT purpose, public_key, sealed_private_key FROM sealed_keys ORDER BY purpose").fetchall()
    first = ENROLL.findall(s1.stdout)[0]

    # Before enrollment a restart prints a fresh link and revokes the old one.
    s2 = servers(data).start()
    s2.stop()
    second = ENROLL.findall(s2.stdout)
    assert len(second) == 1 and second[0] != first
    states = dict(db.execute("SELECT token_hash, state FROM invitations").fetchall())
    assert states[hashlib.sha256(first.encode()).hexdigest()] == "revoked"
    assert states[hashlib.sha256(second[0].encode()).hexdigest()] == "pending"

    # Once an administrator exists, no link is printed.
    db.execute("INSERT INTO users (id, username, email, role, status, created_at) VALUES ('u1', 'admin', NULL, 'admin', 'active', 0)")
    db.commit()
    s3 = servers(data).start()
    s3.stop()
    assert ENROLL.findall(s3.stdout) == []
    assert (data / "root.key").read_bytes() == key_before
    assert db.execute("SELECT purpose, public_key, sealed_private_key FROM sealed_keys ORDER BY purpose").fetchall() == keys_before


def test_sigterm_and_sigint_drain_and_exit_zero(servers, tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        s = servers(tmp_path / f"d{int(sig)}").start()
        assert s.stop(sig) == 0, s.stderr
        assert "stopped" in s.stderr
        # A clean stop warns about nothing (no CancellationError from a job cut short), and
        # every listener is logged as HOST:PORT.
        assert "warning" not in s.stderr and "CancellationError" not in s.stderr, s.stderr
        assert f"address=127.0.0.1:{s.ssh_port} " in s.stderr and "[IPv4]" not in s.stderr, s.stderr


def test_admin_status_and_invite_through_the_socket(servers, tmp_path):
    data = tmp_path / "data"
    s = servers(data).start()
    r = gatehouse("admin", "invite", "alice", "--email", "alice@example.org", "--role", "member", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    link = re.search(r"http://localhost:\d+/enroll#token=[A-Za-z0-9_-]{43}", r.stdout)
    assert link, r.stdout
    r = gatehouse("admin", "status", "--json", "--data-dir", str(data))
    status = json.loads(r.stdout)
    assert status["pendingInvitations"] == 2 and status["storeKind"] == "sqlite"
    assert status["auditEvents"] == 11  # 7 keys and init, the first OIDC key, the X.509 intermediate, bootstrap and this invitation
    # A second invitation for the same person is refused with a clear line and exit 1.
    r = gatehouse("admin", "invite", "alice", "--email", "alice@example.org", "--data-dir", str(data))
    assert r.returncode == 1
    assert r.stderr.startswith("gatehouse: error: alice already has a pending invitation")
    # Bad input is refused before anything is sent.
    for args, message in [
        (["Alice", "--email", "a@example.org"], "username must start with a lower-case letter"),
        (["bob", "--email", "not-an-email"], "email must look like"),
        (["bob", "--email", "b@example.org", "--role", "Root"], "role must be"),
    ]:
        r = gatehouse("admin", "invite", *args, "--data-dir", str(data))
        assert r.returncode == 1 and message in r.stderr, r.stderr
    status = json.loads(gatehouse("admin", "status", "--json", "--data-dir", str(data)).stdout)
    assert status["pendingInvitations"] == 2 and status["auditEvents"] == 11
    s.stop()
    r = gatehouse("admin", "status", "--data-dir", str(data))
    assert r.returncode == 1 and "no gatehouse server is running" in r.stderr


def test_metrics_graphql_and_json_logs(servers, tmp_path):
    s = servers(tmp_path / "data", "--log-format", "json").start()
    q = requests.post(s.url + "/graphql", json={"query": "{ serverInfo { name relyingPartyId publicUrl } }"})
    assert q.json() == {"data": {"serverInfo": {"name": "Gatehouse", "relyingPartyId": "localhost", "publicUrl": f"http://localhost:{s.port}"}}}
    deep = "{" * 10_000
    r = requests.post(s.url + "/graphql", json={"query": deep})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    m = requests.get(s.url + "/metrics").text
    assert 'gatehouse_http_requests_total{route="/graphql",method="POST",status="200"} 1' in m
    assert 'gatehouse_http_requests_total{route="/graphql",method="POST",status="400"} 1' in m
    rss = float(re.search(r"^process_resident_memory_bytes (\S+)$", m, re.M).group(1))
    assert 1e6 < rss < 2e9
    # Prometheus's own linter: every metric has HELP and TYPE, names and units as it wants them.
    import subprocess
    lint = subprocess.run(["promtool", "check", "metrics"], input=m, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
    for name in ["gatehouse_http_requests_total", "gatehouse_http_request_duration_seconds"]:
        assert f"# HELP {name} " in m and f"# TYPE {name} " in m, name
    assert s.stop() == 0
    lines = [json.loads(line) for line in s.stderr.splitlines() if line.strip()]
    assert any(l["message"] == "listening" and l["level"] == "notice" for l in lines)
    assert all({"time", "level", "label", "message"} <= l.keys() for l in lines)


def test_schema_command_matches_checked_in_schema():
    r = gatehouse("graphql", "schema")
    root = os.path.join(os.path.dirname(__file__), "../..")
    assert r.returncode == 0
    assert r.stdout == open(os.path.join(root, "schema.graphql")).read()
    r = gatehouse("graphql", "schema", "--admin")
    assert r.returncode == 0 and "auditEvents" in r.stdout
    assert r.stdout == open(os.path.join(root, "schema.admin.graphql")).read()


def test_config_file_with_flags_overriding(servers, tmp_path):
    cfg = tmp_path / "gatehouse.toml"
    port = Server(tmp_path).port
    cfg.write_text(f'# test config\nlisten = "127.0.0.1:1"\ndata_dir = "{tmp_path / "from-config"}"\nlog_format = "json"\n')
    # Server passes --data-dir and --listen flags, which override the file's values.
    s = servers(tmp_path / "from-flag", "--config", str(cfg), port=port)
    s.start()
    assert os.path.isdir(tmp_path / "from-flag") and not os.path.exists(tmp_path / "from-config")
    s.stop()
    assert s.stderr.lstrip().startswith("{")


def test_every_command_finds_the_data_dir_from_the_environment(servers, tmp_path):
    """GATEHOUSE_DATA_DIR instead of --data-dir on every admin command; the flag still wins."""
    import subprocess
    from conftest import BIN
    s = servers(tmp_path / "data").start()
    env = {**os.environ, "GATEHOUSE_DATA_DIR": s.data_dir}
    run = lambda *args, e=env: subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, env=e, cwd=str(tmp_path))
    status = run("admin", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["users"] == 0, status.stderr
    assert run("admin", "invite", "zoe", "--email", "zoe@example.org").returncode == 0
    assert "zoe" in run("admin", "invitations", "list").stdout
    assert run("audit", "verify").returncode == 0
    # The flag wins over the environment; without either, ./gatehouse-data (absent here) is used.
    wrong = run("admin", "status", "--data-dir", str(tmp_path / "nowhere"))
    assert wrong.returncode != 0
    bare = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_DATA_DIR"}
    assert run("admin", "status", e=bare).returncode != 0
    # The help names the default once, and names the variable.
    usage = run("admin", "status", "--help").stdout
    assert usage.count("(default:") == 1 and "GATEHOUSE_DATA_DIR" in usage, usage
    assert s.stop() == 0


def test_standard_introspection_passes_and_abusive_introspection_does_not(servers, tmp_path):
    """GraphiQL, gql and graphql-js send the standard introspection query (13-15 levels of
    ofType); it was refused as QUERY_TOO_DEEP. graphql-core (an independent implementation)
    writes the query and rebuilds a schema from our answer; abusive nesting is still refused."""
    from graphql import build_client_schema, get_introspection_query, print_schema
    s = servers(tmp_path / "data").start()
    for descriptions in (True, False):
        r = requests.post(s.url + "/graphql", json={"query": get_introspection_query(descriptions=descriptions)}, timeout=10)
        assert r.status_code == 200 and "errors" not in r.json(), r.text[:500]
        schema = build_client_schema(r.json()["data"])
        assert "serverInfo" in print_schema(schema)
    # Lists nested to multiply the work, or a type chain past the limit: refused before running.
    lists = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    chain = "{ __type(name: \"Query\") { " + "ofType { " * 25 + "name" + " }" * 25 + " } }"
    for query in (lists, chain):
        r = requests.post(s.url + "/graphql", json={"query": query}, timeout=10)
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP", (query[:60], r.text)
    assert s.stop() == 0


def test_a_browser_finds_its_way_in(servers, tmp_path):
    """`/` leads to the account page (or sign-in), an unknown path is a styled page, and a page
    visited under another host name than the public URL's (127.0.0.1 for localhost, where
    passkeys cannot work) is sent to the public URL. API clients keep their plain answers."""
    s = servers(tmp_path / "data").start()
    html = {"Accept": "text/html,application/xhtml+xml"}
    local = f"http://localhost:{s.port}"
    r = requests.get(local + "/", headers=html, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/account", r.status_code
    r = requests.get(local + "/", headers=html, timeout=10)
    assert r.url.endswith("/signin") and "<h1>" in r.text
    r = requests.get(local + "/no/such/page", headers=html, timeout=10)
    assert r.status_code == 404 and "There is no page here" in r.text and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    # The same over 127.0.0.1: sent to the public URL, path and query kept; never a host from the request.
    r = requests.get(s.url + "/signin?return_to=/account", headers=html, allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"] == local + "/signin?return_to=/account", r.headers
    r = requests.get(s.url + "/signin", headers={**html, "Host": "evil.example"}, allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"].startswith(local + "/"), r.headers
    # API clients and non-page paths are untouched.
    assert requests.get(s.url + "/healthz", timeout=10).status_code == 200
    r = requests.get(s.url + "/no/such/page", timeout=10)
    assert r.status_code == 404 and "There is no page here" not in r.text
    assert requests.post(s.url + "/graphql", json={"query": "{ serverInfo { name } }"}, timeout=10).status_code == 200
    assert s.stop() == 0
