"""Each credential's whole life across surfaces (DESIGN.md invariants 9 and 10), from the
independent review's findings: a lost device keeps nothing after recovery, revoking a session or
removing a passkey ends the CLI tokens and certificates obtained through it, Gatehouse's own
scopes belong to the clients the policy names, and a flood of pending passkey ceremonies from
many networks cannot lock anyone out. Real server, real `ssh-keygen -Q` against the KRL."""
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token

from conftest import gatehouse
from test_oidc import Provider, APP_REDIRECT
from test_passkeys import Authenticator, enroll, origin, post, sign_in
from test_ssh import CLI_REDIRECT, prove


@pytest.fixture
def provider(servers, tmp_path):
    p = Provider(servers(tmp_path / "data").start(), 9)
    p.apply(p.policy + """
        host web-1 { addresses = [127.0.0.1] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] }
        """)
    return p


def cli_tokens(provider, browser, scope="openid offline_access ssh"):
    """The CLI's sign-in (gatehouse login): code flow of gatehouse-cli from `browser`'s session."""
    verifier = generate_token(48)
    r, _ = provider.authorize(browser=browser, client_id="gatehouse-cli", redirect_uri=CLI_REDIRECT, scope=scope, verifier=verifier)
    assert r.status_code == 303, r.text
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = requests.post(provider.url + "/oauth2/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                                            "redirect_uri": CLI_REDIRECT, "client_id": "gatehouse-cli"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(provider, refresh_token):
    return requests.post(provider.url + "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                               "client_id": "gatehouse-cli"}, timeout=10)


def certificate(provider, access_token, directory, name):
    path = os.path.join(directory, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    public = open(path + ".pub").read().strip()
    r = requests.post(provider.url + "/api/ssh/certificates", json={"public_key": public, "proof": prove(public, access_token, path)},
                      headers={"Authorization": "Bearer " + access_token}, timeout=10)
    return r, path


def revoked_by_krl(provider, directory, cert_text):
    """`ssh-keygen -Q` (OpenSSH's own KRL reader) on the served KRL: is this certificate revoked?"""
    krl = os.path.join(directory, "krl")
    with open(krl, "wb") as f:
        f.write(requests.get(provider.url + "/api/ssh/krl", timeout=10).content)
    cert = os.path.join(directory, "probe-cert.pub")
    with open(cert, "w") as f:
        f.write(cert_text + "\n")
    r = subprocess.run(["ssh-keygen", "-Q", "-f", krl, cert], capture_output=True, text=True)
    return r.returncode != 0 and "REVOKED" in r.stdout


def audit(provider, code):
    r = gatehouse("audit", "tail", "-n", "10000", "--data-dir", provider.data)
    return [e for e in (json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")) if e["code"] == code]


def test_recovery_ends_the_lost_devices_cli_tokens_and_certificates(provider, tmp_path):
    """Confirmed by the review: after recovery and re-enrollment the old laptop's refresh token
    still refreshed and its new access token got an SSH certificate."""
    carol = provider.member("carol", "carol@example.org")
    laptop = cli_tokens(provider, carol)
    r, _ = certificate(provider, laptop["access_token"], str(tmp_path), "laptop")
    assert r.status_code == 201, r.text
    laptop_cert = r.json()["certificate"]
    assert not revoked_by_krl(provider, str(tmp_path), laptop_cert)

    r = gatehouse("admin", "recover", "carol", "--data-dir", provider.data)
    assert r.returncode == 0, r.stderr
    link = r.stdout.split("token=")[1].split()[0]
    # From this moment, before carol re-enrolls: nothing from the lost laptop works.
    assert refresh(provider, laptop["refresh_token"]).status_code == 400
    assert not provider.active(laptop["access_token"])
    r, _ = certificate(provider, laptop["access_token"], str(tmp_path), "after-recover")
    assert r.status_code == 401, r.text
    assert revoked_by_krl(provider, str(tmp_path), laptop_cert)
    assert requests.get(provider.url + "/api/session", cookies={"gatehouse_session": carol.cookies["gatehouse_session"]}, timeout=10).status_code == 401
    cut = audit(provider, "user.recovery_started")
    assert len(cut) == 1 and cut[0]["details"]["oidc_grants"] == "1" and cut[0]["details"]["ssh_certificates"] == "1" and cut[0]["details"]["passkeys_removed"] == "1", cut

    # Re-enrollment gives carol her access back; the laptop's tokens stay dead.
    new_device = Authenticator()
    r, _, _ = enroll(provider.server, link, new_device)
    assert r.status_code == 201, r.text
    assert refresh(provider, laptop["refresh_token"]).status_code == 400
    fresh = requests.Session()
    fresh.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])
    assert certificate(provider, cli_tokens(provider, fresh)["access_token"], str(tmp_path), "new")[0].status_code == 201


def test_revoking_a_session_or_removing_its_passkey_ends_what_it_opened(provider, tmp_path):
    # Erin signs in on a laptop (passkey A) and on a phone (passkey B), and logs the CLI in from the laptop.
    r = gatehouse("admin", "invite", "erin", "--email", "erin@example.org", "--data-dir", provider.data)
    link = next(w for w in r.stdout.split() if "/enroll#token=" in w).split("token=")[1]
    laptop_key = Authenticator()
    r, _, _ = enroll(provider.server, link, laptop_key)
    assert r.status_code == 201
    laptop = requests.Session()
    laptop.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])
    provider.apply(provider.policy.replace("members = [admin, carol]", "members = [admin, carol, erin]") + """
        host web-1 { addresses = [127.0.0.1] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] }
        """)
    phone_key = Authenticator()
    r = laptop.post(provider.url + "/api/passkeys/options", json={}, timeout=10)
    assert r.status_code == 200, r.text
    started = r.json()
    credential = phone_key.create(started["publicKey"], origin(provider.server))
    assert laptop.post(provider.url + "/api/passkeys/verify", json={"ceremony": started["ceremony"], "credential": credential}, timeout=10).status_code == 201
    r, _ = sign_in(provider.server, phone_key, username="erin")
    assert r.status_code == 200
    phone = requests.Session()
    phone.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])

    cli = cli_tokens(provider, laptop)
    r, _ = certificate(provider, cli["access_token"], str(tmp_path), "cli")
    assert r.status_code == 201
    cli_cert = r.json()["certificate"]
    phone_cli = cli_tokens(provider, phone)

    # From the phone, Erin revokes the laptop's session: the CLI logged in through it dies with it.
    listing = phone.get(provider.url + "/api/sessions", timeout=10).json()
    other = next(s["id"] for s in listing if not s["current"])
    assert phone.post(provider.url + "/api/sessions/revoke", json={"id": other}, timeout=10).status_code == 204
    assert refresh(provider, cli["refresh_token"]).status_code == 400
    assert not provider.active(cli["access_token"])
    assert certificate(provider, cli["access_token"], str(tmp_path), "again")[0].status_code == 401
    assert revoked_by_krl(provider, str(tmp_path), cli_cert)
    revoked = audit(provider, "session.revoked")
    assert revoked[-1]["details"]["grants_revoked"] == "1" and revoked[-1]["details"]["ssh_certificates"] == "1", revoked
    # The phone's own CLI is untouched (refresh tokens rotate: keep the new one).
    r = refresh(provider, phone_cli["refresh_token"])
    assert r.status_code == 200, r.text
    phone_cli = r.json()

    # Erin signs in again on the laptop and logs the CLI in; then, from the phone (after a
    # step-up), removes the laptop's passkey: every session it opened, ended or not, takes its
    # CLI grant along.
    r, _ = sign_in(provider.server, laptop_key, username="erin")
    laptop.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])
    cli = cli_tokens(provider, laptop)
    r = phone.post(provider.url + "/api/webauthn/stepup/options", json={}, timeout=10)
    started = r.json()
    assertion = phone_key.get(started["publicKey"], origin(provider.server))
    assert phone.post(provider.url + "/api/webauthn/stepup/verify", json={"ceremony": started["ceremony"], "credential": assertion}, timeout=10).status_code == 204
    passkeys = phone.get(provider.url + "/api/passkeys", timeout=10).json()
    laptop_id = next(p["id"] for p in passkeys if p["id"] != assertion["id"])
    assert phone.post(provider.url + "/api/passkeys/remove", json={"id": laptop_id}, timeout=10).status_code == 204
    assert refresh(provider, cli["refresh_token"]).status_code == 400
    assert laptop.get(provider.url + "/api/session", timeout=10).status_code == 401
    assert refresh(provider, phone_cli["refresh_token"]).status_code == 200


def test_gatehouse_scopes_belong_to_the_clients_the_policy_names(provider, tmp_path):
    """Confirmed by the review: a first-party wiki got `ssh certificates network` without consent
    and minted an SSH certificate for a user."""
    # grafana (a registered app) asks for ssh: refused at the authorization endpoint.
    r, _ = provider.authorize(scope="openid ssh")
    assert r.status_code == 303
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_scope"] and "gatehouse-cli" in q["error_description"][0], q
    # The device flow refuses it too.
    r = requests.post(provider.url + "/oauth2/device_authorization", data={"scope": "openid certificates"}, auth=("grafana", provider.secret), timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text

    # The policy can give a client some of them; the CLI holds them by default.
    provider.apply(provider.policy.replace('app grafana { client_id = "grafana" }', 'app grafana { client_id = "grafana" gatehouse_scopes = [ssh] }') + """
        host web-1 { addresses = [127.0.0.1] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] }
        """)
    code, verifier = provider.code(scope="openid ssh")
    token = provider.exchange(code, verifier).json()["access_token"]
    r, _ = certificate(provider, token, str(tmp_path), "grafana")
    assert r.status_code == 201
    grafana_cert = r.json()["certificate"]
    assert provider.authorize(scope="openid network")[0].headers["Location"].find("error=invalid_scope") > 0

    # Taken away again: the token it already holds is worthless at Gatehouse's APIs (the
    # audience check happens at every use), though the app can still introspect it.
    provider.apply(provider.policy + """
        host web-1 { addresses = [127.0.0.1] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] }
        """)
    r, _ = certificate(provider, token, str(tmp_path), "grafana-after")
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope", r.text
    assert provider.active(token)
    assert certificate(provider, cli_tokens(provider, provider.browser)["access_token"], str(tmp_path), "cli")[0].status_code == 201

    # Removing the client revokes its grants and what Gatehouse issued with their tokens.
    assert not revoked_by_krl(provider, str(tmp_path), grafana_cert)
    r = gatehouse("admin", "oidc-client", "remove", "grafana", "--data-dir", provider.data)
    assert r.returncode == 0, r.stderr
    assert revoked_by_krl(provider, str(tmp_path), grafana_cert)
    # A bad gatehouse_scopes value is a policy error, not ignored.
    path = os.path.join(provider.data, "..", "bad.policy")
    with open(path, "w") as f:
        f.write('app grafana { client_id = "grafana" gatehouse_scopes = [ssh, admin] }\n')
    r = gatehouse("policy", "check", path)
    assert r.returncode != 0 and "'admin' is not one of Gatehouse's own scopes" in r.stdout + r.stderr


def test_the_consent_page_says_what_gatehouse_scopes_do(provider):
    r = gatehouse("admin", "oidc-client", "add", "vendor", "--redirect-uri", APP_REDIRECT, "--third-party", "--data-dir", provider.data)
    assert r.returncode == 0, r.stderr
    provider.apply(provider.policy.replace("apps = [grafana,", "apps = [vendor, grafana,")
                   + 'app vendor { client_id = "vendor" gatehouse_scopes = [ssh, network] }\n')
    r, _ = provider.authorize(client_id="vendor", scope="openid ssh network")
    assert r.status_code == 200, r.status_code
    assert "obtain SSH certificates as you" in r.text and "add devices as you to the private WireGuard network" in r.text
    assert "to see:" not in r.text


def test_a_ceremony_flood_from_200_networks_does_not_stop_a_fresh_sign_in(servers, tmp_path):
    """Confirmed by the review: 10,100 option requests from 101 sources made every sign-in
    answer 429 for five minutes. Each network now holds at most its share of the table."""
    server = servers(tmp_path / "data", "--trusted-proxies", "127.0.0.0/8").start()
    admin = Authenticator()
    r, _, _ = enroll(server, __import__("test_passkeys").bootstrap_token(server), admin)
    assert r.status_code == 201

    def flood(n):
        address = f"198.51.{n // 200}.{n % 200}" if n % 2 == 0 else f"2001:db8:{n:x}::1"
        session = requests.Session()
        codes = [session.post(server.url + "/api/webauthn/authentication/options", json={}, headers={"X-Forwarded-For": address}, timeout=10).status_code
                 for _ in range(40)]
        return codes
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(flood, range(200)))
    assert sum(c.count(200) for c in results) >= 200 * 32, "the flood did not reach the server"
    # A person from a fresh address still signs in.
    r = requests.post(server.url + "/api/webauthn/authentication/options", json={"username": "admin"}, headers={"X-Forwarded-For": "203.0.113.77"}, timeout=10)
    assert r.status_code == 200, r.text
    started = r.json()
    assertion = admin.get(started["publicKey"], origin(server))
    r = requests.post(server.url + "/api/webauthn/authentication/verify", json={"ceremony": started["ceremony"], "credential": assertion},
                      headers={"X-Forwarded-For": "203.0.113.77"}, timeout=10)
    assert r.status_code == 200, r.text


def test_device_sign_in_carries_no_gatehouse_scope_unless_the_policy_says_so(provider, tmp_path):
    """Device-grant phishing: anyone can start a device authorization for gatehouse-cli and send
    a victim the real /device link. By default such a code cannot carry ssh, certificates or
    network, and the approval page shows where and when the request started."""
    from conftest import BIN
    from test_ssh import read_until, with_device_scopes
    r = requests.post(provider.url + "/oauth2/device_authorization", data={"client_id": "gatehouse-cli", "scope": "openid ssh"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope" and "device_gatehouse_scopes" in r.json()["error_description"], r.text
    # The CLI asks again without them, says so, and signs in.
    env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path)}
    login = subprocess.Popen([BIN, "login", "--device", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # The notice comes first, then the link.
    m = read_until(login, r"(?s)Device sign-in cannot obtain SSH certificates.*?(http://\S+/device\?user_code=([A-Z-]+))")
    page = provider.browser.get(m.group(1), timeout=10)
    assert "This request started from <strong>127.0.0.1</strong>" in page.text and "you are at 127.0.0.1" in page.text, page.text
    assert "SSH certificates" not in page.text and "stay signed in" in page.text
    approved = provider.browser.post(provider.url + "/device", data={"user_code": m.group(2), "decision": "allow"}, headers={"Origin": provider.issuer}, timeout=10)
    assert approved.status_code == 200
    out, err = login.communicate(timeout=30)
    assert login.returncode == 0 and b"Signed in to" in out, (out, err)
    # `gatehouse status` asks the server, and says in words what this sign-in can do.
    status = subprocess.run([BIN, "status"], capture_output=True, text=True, env=env, timeout=30)
    assert status.returncode == 0 and "no SSH access in this sign-in" in status.stdout, status.stdout + status.stderr
    # With the policy's opt-in, the device flow carries them (and the page says what they do).
    provider.apply(with_device_scopes(provider.applied))
    r = requests.post(provider.url + "/oauth2/device_authorization", data={"client_id": "gatehouse-cli", "scope": "openid ssh"}, timeout=10)
    assert r.status_code == 200, r.text
    page = provider.browser.get(r.json()["verification_uri_complete"], timeout=10)
    assert "obtain SSH certificates as you" in page.text
    # A bad device_gatehouse_scopes value is a policy error.
    path = os.path.join(provider.data, "..", "bad-device.policy")
    with open(path, "w") as f:
        f.write('app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] device_gatehouse_scopes = [root] }\n')
    r = gatehouse("policy", "check", path)
    assert r.returncode != 0 and "'root' is not one of Gatehouse's own scopes" in r.stdout + r.stderr
    # The browser session that approved the device signs out: the device's sign-in is over, and
    # status says so in words (it used to print "valid until ..." from its own file).
    assert provider.browser.post(provider.url + "/api/session/signout", json={}, timeout=10).status_code == 204
    status = subprocess.run([BIN, "status"], capture_output=True, text=True, env=env, timeout=30)
    assert status.returncode == 1 and "no longer accepts this sign-in" in status.stdout and "gatehouse login" in status.stdout, status.stdout + status.stderr


def test_repeated_anonymous_failures_are_counted_not_each_logged(servers, tmp_path):
    """Each failed anonymous sign-in or host join was a permanent audit event. Now the first of
    each kind, reason and network per minute is logged at once and the repeats as one counted
    event (written when the minute is over, or when the server stops): nothing is lost."""
    from test_passkeys import bootstrap_token
    server = servers(tmp_path / "data").start()
    assert enroll(server, bootstrap_token(server), Authenticator())[0].status_code == 201
    for _ in range(40):
        started = post(server, "/api/webauthn/authentication/options", {}).json()
        r = post(server, "/api/webauthn/authentication/verify", {"ceremony": started["ceremony"], "credential": {"id": "AAAA", "type": "public-key"}})
        assert r.status_code == 400, r.text
    for _ in range(20):
        r = requests.post(server.url + "/api/hosts/join", json={"token": "ghjt_" + "A" * 43, "host_key": "ssh-ed25519 AAAA"}, timeout=10)
        assert r.status_code == 401, r.text

    def events():
        r = gatehouse("audit", "tail", "-n", "1000", "--data-dir", server.data_dir)
        return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    now = events()
    assert len([e for e in now if e["code"] == "signin.failed"]) == 1 and len([e for e in now if e["code"] == "host.join_refused"]) == 1
    # The counts are written at a graceful stop (or after the minute), and the log still verifies.
    assert server.stop() == 0
    server.start()
    after = events()
    counted = {e["details"]["code"]: int(e["details"]["count"]) for e in after if e["code"] == "audit.failures_aggregated"}
    assert counted == {"signin.failed": 39, "host.join_refused": 19}, counted
    summary = next(e for e in after if e["code"] == "audit.failures_aggregated" and e["details"]["code"] == "signin.failed")
    assert summary["source"] == "127.0.0.1" and summary["outcome"] == "denied" and summary["details"]["reason"], summary
    assert gatehouse("audit", "verify", "--data-dir", server.data_dir).returncode == 0


def test_a_grant_revoked_first_still_takes_its_certificates_along(provider, tmp_path):
    """The review's bypass: revoke the CLI's own refresh token (a public client may), so the
    grant is already revoked when the session is cut, and the certificates it obtained were
    never revoked. Revoking a grant now revokes what was issued under it, by any path."""
    carol = provider.member("carol", "carol@example.org")
    cli = cli_tokens(provider, carol)
    r, _ = certificate(provider, cli["access_token"], str(tmp_path), "laptop")
    assert r.status_code == 201
    cert = r.json()["certificate"]
    r = requests.post(provider.url + "/oauth2/revoke", data={"token": cli["refresh_token"], "client_id": "gatehouse-cli"}, timeout=10)
    assert r.status_code == 200, r.text
    assert revoked_by_krl(provider, str(tmp_path), cert)
    # And a second CLI whose grant was revoked by refresh reuse, then the session cut: same.
    cli = cli_tokens(provider, carol)
    r, _ = certificate(provider, cli["access_token"], str(tmp_path), "second")
    cert = r.json()["certificate"]
    assert refresh(provider, cli["refresh_token"]).status_code == 200
    assert refresh(provider, cli["refresh_token"]).status_code == 400  # reuse: the grant is revoked
    assert revoked_by_krl(provider, str(tmp_path), cert)
    out = carol.post(provider.url + "/api/session/signout", json={}, timeout=10)
    assert out.status_code == 204
    signed_out = audit(provider, "signin.signed_out")[-1]
    assert signed_out["details"]["grants_revoked"] == "0" and signed_out["details"]["ssh_certificates"] == "0", signed_out
