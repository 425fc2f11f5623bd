"""SSH certificates from Gatehouse's user CA against real OpenSSH: `ssh-keygen -L` reads what we
issue, and a real `sshd` (Debian's openssh-server, started here on a loopback port) that trusts
the CA accepts the certificate for an allowed principal and refuses the rest: another host's
principal, another CA, a plain key, an expired certificate. The access token comes from the
OIDC code flow of the policy-declared public client `gatehouse-cli` with the `ssh` scope."""
import json
import os
import shutil
import socket
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.common.security import generate_token

from conftest import free_port, gatehouse
from test_oidc import Provider, s256

SSHD_BIN = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
if not SSHD_BIN or os.geteuid() != 0:
    if os.environ.get("GATEHOUSE_REQUIRE_BROWSER") == "1":  # scripts/test: every peer must be there
        pytest.fail("sshd (openssh-server) and root are needed for the SSH tests", pytrace=False)
    pytest.skip("needs openssh-server and root", allow_module_level=True)

CLI_REDIRECT = "http://127.0.0.1:5555/callback"
# What every test sshd shares: certificates only (no keys, passwords or PAM), root by key.
SSHD_LOCKED_DOWN = """AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
"""


@pytest.fixture
def provider(servers, tmp_path):
    p = Provider(servers(tmp_path / "data").start(), 9)
    p.apply(p.policy + """
        host web-1 { addresses = [127.0.0.1] }
        host db-1 { addresses = [127.0.0.2] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] options = [permit-pty] }
        """)
    return p


def access_token(provider, scope="openid ssh", browser=None):
    verifier = generate_token(48)
    r, _ = provider.authorize(browser=browser, client_id="gatehouse-cli", redirect_uri=CLI_REDIRECT, scope=scope, verifier=verifier)
    assert r.status_code == 303, r.text
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = requests.post(provider.url + "/oauth2/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                                            "redirect_uri": CLI_REDIRECT, "client_id": "gatehouse-cli"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


_PRIVATE = {}  # public key line (type and base64) -> its private key file, for proofs of possession


CLI_APP = 'app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }'


def with_device_scopes(policy):
    """The policy with Gatehouse's own scopes allowed through device sign-in (off by default:
    a device code approved by mistake must not mint SSH certificates)."""
    assert CLI_APP in policy, policy
    return policy.replace(CLI_APP, CLI_APP[:-2] + " device_gatehouse_scopes = [ssh, certificates, network] }")


def keypair(directory, name="id", kind="ed25519"):
    path = os.path.join(directory, name)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", path], check=True)
    public = open(path + ".pub").read().strip()
    _PRIVATE[" ".join(public.split()[:2])] = path
    return path, public


def prove(public_key, token, key_path=None):
    """OpenSSH's own proof of possession: `ssh-keygen -Y sign` over the request's message."""
    import hashlib
    key_path = key_path or _PRIVATE[" ".join(public_key.split()[:2])]
    message = b"gatehouse ssh certificate request\n" + hashlib.sha256(token.encode()).hexdigest().encode() + b"\n"
    r = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", key_path, "-n", "gatehouse-ssh-certificate"], input=message, capture_output=True, check=True)
    return r.stdout.decode()


def issue(provider, token, public_key, **extra):
    body = {"public_key": public_key, **extra}
    if "proof" not in body and " ".join(public_key.split()[:2]) in _PRIVATE:
        body["proof"] = prove(public_key, token)
    return requests.post(provider.url + "/api/ssh/certificates", json=body, headers={"Authorization": "Bearer " + token}, timeout=10)


def wait_for_port(port, timeout=10):
    """Waits until something listens on 127.0.0.1:port (sshd after start or reload)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


class SSHD:
    """A real sshd on a loopback port, trusting Gatehouse's user CA."""

    def __init__(self, directory, user_ca, principals):
        self.dir = directory
        self.port = free_port()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(directory, "host_key")], check=True)
        with open(os.path.join(directory, "user_ca.pub"), "w") as f:
            f.write(user_ca + "\n")
        os.makedirs(os.path.join(directory, "principals"), exist_ok=True)
        self.set_principals(principals)
        config = os.path.join(directory, "sshd_config")
        with open(config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {directory}/host_key
PidFile {directory}/sshd.pid
TrustedUserCAKeys {directory}/user_ca.pub
AuthorizedPrincipalsFile {directory}/principals/%u
{SSHD_LOCKED_DOWN}LogLevel VERBOSE
""")
        subprocess.run([SSHD_BIN, "-t", "-f", config], check=True)
        self.proc = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_port(self.port)

    def enable_krl(self, path):
        """Adds RevokedKeys and reloads sshd (SIGHUP re-execs it with the new configuration)."""
        with open(os.path.join(self.dir, "sshd_config"), "a") as f:
            f.write(f"RevokedKeys {path}\n")
        subprocess.run([SSHD_BIN, "-t", "-f", os.path.join(self.dir, "sshd_config")], check=True)
        self.proc.send_signal(1)
        time.sleep(0.5)
        wait_for_port(self.port)

    def set_principals(self, principals):
        with open(os.path.join(self.dir, "principals", "root"), "w") as f:
            f.write("\n".join(principals) + "\n")

    def ssh(self, key, certificate=None, command="echo hello-from-sshd"):
        args = ["ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-p", str(self.port)]
        if certificate:
            args += ["-o", f"CertificateFile={certificate}"]
        return subprocess.run(args + ["root@127.0.0.1", command], capture_output=True, text=True, timeout=30)

    def stop(self):
        self.proc.terminate()
        return self.proc.communicate(timeout=10)[0]


def test_a_real_sshd_accepts_our_certificate_for_allowed_principals_only(provider, tmp_path):
    token = access_token(provider)
    ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()
    assert ca["user_ca"].startswith("ssh-ed25519 ") and ca["host_ca"].startswith("ssh-ed25519 ") and ca["user_ca"] != ca["host_ca"]
    key, public = keypair(str(tmp_path))
    r = issue(provider, token, public)
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["principals"] == ["root@web-1"]
    certificate = key + "-cert.pub"
    with open(certificate, "w") as f:
        f.write(issued["certificate"] + "\n")

    # ssh-keygen reads it: our type, our CA, the policy's principal and option, about 8 hours.
    shown = subprocess.run(["ssh-keygen", "-L", "-f", certificate], capture_output=True, text=True, check=True).stdout
    assert "ssh-ed25519-cert-v01@openssh.com user certificate" in shown
    assert f"Serial: {issued['serial']}" in shown and "root@web-1" in shown and "permit-pty" in shown
    with open(tmp_path / "ca.pub", "w") as f:
        f.write(ca["user_ca"] + "\n")
    ca_fp = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "ca.pub")], capture_output=True, text=True, check=True).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fp}" in shown

    os.makedirs(tmp_path / "sshd")
    sshd = SSHD(str(tmp_path / "sshd"), ca["user_ca"], ["root@web-1"])
    try:
        ok = sshd.ssh(key, certificate)
        assert ok.returncode == 0 and ok.stdout.strip() == "hello-from-sshd", ok.stderr
        # The plain key alone is not enough (no authorized_keys). (ssh would pick up
        # KEY-cert.pub by itself: use a copy of the key that has none beside it.)
        bare = str(tmp_path / "bare")
        shutil.copy(key, bare)
        os.chmod(bare, 0o600)
        assert sshd.ssh(bare).returncode == 255
        # Another host's principal: refused.
        sshd.set_principals(["root@db-1"])
        assert sshd.ssh(key, certificate).returncode == 255
        sshd.set_principals(["root@web-1"])
        # A certificate from another CA, for the right principal: refused.
        other_ca, _ = keypair(str(tmp_path), "other_ca")
        key2, _ = keypair(str(tmp_path), "id2")
        subprocess.run(["ssh-keygen", "-q", "-s", other_ca, "-I", "forged", "-n", "root@web-1", "-V", "-5m:+1h", key2 + ".pub"], check=True)
        assert sshd.ssh(key2, key2 + "-cert.pub").returncode == 255
        # A one-minute certificate (valid from a minute back): refused once it has expired.
        key3, public3 = keypair(str(tmp_path), "id3")
        r = issue(provider, token, public3, lifetime_seconds=60)
        assert r.status_code == 201, r.text
        with open(key3 + "-cert.pub", "w") as f:
            f.write(r.json()["certificate"] + "\n")
        assert sshd.ssh(key3, key3 + "-cert.pub").returncode == 0
        time.sleep(61)
        expired = sshd.ssh(key3, key3 + "-cert.pub")
        assert expired.returncode == 255
    finally:
        log = sshd.stop()
    assert "Accepted publickey for root" in log and "ID admin serial:" in log
    assert "expired" in log.lower() or "not yet valid" in log.lower() or "certificate invalid" in log.lower()


def test_offboarding_revokes_certificates_through_the_krl(provider, tmp_path):
    carol = provider.member("carol", "carol@example.org")
    admin_key, admin_public = keypair(str(tmp_path), "admin")
    carol_key, carol_public = keypair(str(tmp_path), "carol")
    admin_cert = issue(provider, access_token(provider), admin_public).json()
    carol_cert = issue(provider, access_token(provider, browser=carol), carol_public).json()
    for key, cert in [(admin_key, admin_cert), (carol_key, carol_cert)]:
        with open(key + "-cert.pub", "w") as f:
            f.write(cert["certificate"] + "\n")
    ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()["user_ca"]
    os.makedirs(tmp_path / "sshd")
    sshd = SSHD(str(tmp_path / "sshd"), ca, ["root@web-1"])
    krl = str(tmp_path / "sshd" / "revoked.krl")
    try:
        def fetch_krl():
            r = requests.get(provider.url + "/api/ssh/krl", timeout=10)
            assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
            with open(krl, "wb") as f:
                f.write(r.content)
        fetch_krl()
        sshd.enable_krl(krl)
        assert sshd.ssh(carol_key, carol_key + "-cert.pub").returncode == 0
        out = gatehouse("admin", "offboard", "carol", "--data-dir", provider.data)
        assert out.returncode == 0 and "1 ssh_certificates" in out.stdout, out.stdout
        fetch_krl()
        # ssh-keygen reads our list: carol's certificate (and key) revoked, the admin's not.
        q = subprocess.run(["ssh-keygen", "-Q", "-f", krl, carol_key + "-cert.pub"], capture_output=True, text=True)
        assert q.returncode != 0 and "REVOKED" in q.stdout, q.stdout + q.stderr
        q = subprocess.run(["ssh-keygen", "-Q", "-f", krl, admin_key + "-cert.pub"], capture_output=True, text=True)
        assert q.returncode == 0 and "ok" in q.stdout, q.stdout + q.stderr
        listing = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", krl], capture_output=True, text=True, check=True).stdout
        assert f"serial: {carol_cert['serial']}" in listing, listing
        # sshd re-reads RevokedKeys on each authentication: refused at once, the admin still in.
        assert sshd.ssh(carol_key, carol_key + "-cert.pub").returncode == 255
        assert sshd.ssh(admin_key, admin_key + "-cert.pub").returncode == 0
    finally:
        log = sshd.stop()
    assert "revoked" in log.lower(), log[-2000:]


def test_certificate_requests_are_checked(provider, tmp_path):
    _, public = keypair(str(tmp_path))
    colleague_key, colleague = keypair(str(tmp_path), "colleague")
    token = access_token(provider)
    proof = prove(public, token)
    no_ssh = access_token(provider, scope="openid")
    post = lambda body, headers: requests.post(provider.url + "/api/ssh/certificates", data=body, headers=headers, timeout=10)
    auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    assert post(json.dumps({"public_key": public}), {"Content-Type": "application/json"}).status_code == 401
    assert post(json.dumps({"public_key": public}), {**auth, "Authorization": "Bearer ghat_" + "A" * 43}).status_code == 401
    r = post(json.dumps({"public_key": public}), {**auth, "Authorization": "Bearer " + no_ssh})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    for body, status, code in [
        ("{", 400, "input.invalid"), ("[]", 400, "input.invalid"), (json.dumps({}), 400, "input.invalid"),
        (json.dumps({"public_key": public, "admin": True}), 400, "input.invalid"),
        (json.dumps({"public_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x"}), 400, "ssh.unsupported_key"),
        (json.dumps({"public_key": "ssh-ed25519 AAAA"}), 400, "ssh.malformed"),
        (json.dumps({"public_key": public, "proof": proof, "hosts": ["web-9"]}), 400, "ssh.invalid_certificate"),
        (json.dumps({"public_key": public, "proof": proof, "hosts": "web-1"}), 400, "input.invalid"),
        (json.dumps({"public_key": public, "proof": proof, "lifetime_seconds": "8h"}), 400, "input.invalid"),
        (json.dumps({"public_key": public, "proof": proof, "lifetime_seconds": 5}), 400, "ssh.invalid_certificate"),
        (json.dumps({"public_key": public, "proof": proof, "hosts": ["db-1"]}), 403, "ssh.not_permitted"),
        # Proof of possession: a colleague's public key cannot be certified to you (the review
        # had one certified, then offboarding revoked the colleague's key everywhere).
        (json.dumps({"public_key": colleague}), 400, "ssh.proof_required"),
        (json.dumps({"public_key": colleague, "proof": proof}), 400, "ssh.proof_required"),
        (json.dumps({"public_key": public, "proof": prove(public, no_ssh)}), 400, "ssh.proof_required"),
        (json.dumps({"public_key": public, "proof": prove(public, token).replace("SIGNATURE-----\n", "SIGNATURE-----\nAAAA", 1)}), 400, None),
        (json.dumps({"public_key": public, "proof": 7}), 400, "input.invalid"),
        (json.dumps({"public_key": public, "proof": "-----BEGIN SSH SIGNATURE-----\n!!\n-----END SSH SIGNATURE-----"}), 400, "ssh.malformed"),
        (json.dumps({"public_key": public, "proof": "A" * 9000}), 413, "ssh.too_large"),
        (json.dumps({"public_key": "x" * 20000}), 413, None),
    ]:
        r = post(body, auth)
        assert r.status_code == status, (body[:60], r.status_code, r.text)
        if code:
            assert r.json()["error"]["code"] == code, (body[:60], r.text)
    # Refusals were audited; nothing was issued by them.
    codes = provider.audit_codes()
    assert codes.count("ssh.certificate_refused") >= 5 and "ssh.certificate_issued" not in codes


def read_until(proc, pattern, timeout=20):
    """Reads the process's stdout (raw, so select() sees what is buffered) until `pattern`."""
    import re
    import select
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
            m = re.search(pattern, seen.decode(errors="replace"))
            if m:
                return m
    raise AssertionError(f"never printed {pattern}: {seen!r}")


def test_gatehouse_login_and_ssh_cert_end_to_end(provider, tmp_path):
    from conftest import BIN
    env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path)}
    run = lambda *args: subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=env)

    # --device: the CLI prints a code; the person approves it in a signed-in browser. The
    # policy lets the device flow carry the ssh scope (it does not by default).
    provider.apply(with_device_scopes(provider.applied))
    login = subprocess.Popen([BIN, "login", "--device", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # It prints the page to open, then says what it waits for and for how long (not silence).
    m = read_until(login, r"(http://\S+/device\?user_code=[A-Z-]+)[\s\S]*Waiting for approval of [A-Z]{4}-[A-Z]{4} \(\d+m \d+s left\)\.\.\.")
    approved = provider.browser.post(provider.url + "/device", data={"user_code": m.group(1).split("=")[1], "decision": "allow"},
                                     headers={"Origin": provider.issuer}, timeout=10)
    assert approved.status_code == 200 and "is signed in" in approved.text
    assert login.wait(timeout=30) == 0, login.stderr.read().decode()
    assert oct(os.stat(tmp_path / "cli").st_mode & 0o777) == "0o700"
    assert oct(os.stat(tmp_path / "cli" / "credentials.json").st_mode & 0o777) == "0o600"
    status = run("status")
    assert status.returncode == 0 and "signed in as: admin" in status.stdout, status.stdout + status.stderr
    # Trust and the certificate are scoped to the hosts the policy lets this person reach.
    known = (tmp_path / "cli" / "known_hosts").read_text()
    assert known.startswith("@cert-authority web-1,127.0.0.1 ssh-ed25519 "), known
    ssh_config = (tmp_path / "cli" / "ssh_config").read_text()
    assert "Host web-1\n    HostName 127.0.0.1\n    Port 22\n    HostKeyAlias web-1\n" in ssh_config and "Host 127.0.0.1\n" in ssh_config, ssh_config

    # ssh cert: a key made here, a certificate from the policy.
    cert = run("ssh", "cert", "--ttl", "1h")
    assert cert.returncode == 0 and "root@web-1" in cert.stdout, cert.stdout + cert.stderr
    shown = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / "cli" / "id_ed25519-cert.pub")], capture_output=True, text=True, check=True).stdout
    assert "Principals: \n                root@web-1" in shown
    ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()["user_ca"]
    os.makedirs(tmp_path / "sshd")
    sshd = SSHD(str(tmp_path / "sshd"), ca, ["root@web-1"])
    try:
        ok = sshd.ssh(str(tmp_path / "cli" / "id_ed25519"), str(tmp_path / "cli" / "id_ed25519-cert.pub"))
        assert ok.returncode == 0 and ok.stdout.strip() == "hello-from-sshd", ok.stderr
    finally:
        sshd.stop()

    # The loopback flow (RFC 8252): the CLI listens on 127.0.0.1; the signed-in browser is sent back to it.
    login = subprocess.Popen([BIN, "login", "--no-browser", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    url = read_until(login, r"Sign in at: (\S+)").group(1)
    assert "code_challenge_method=S256" in url and "redirect_uri=http://127.0.0.1:" in url.replace("%3A", ":").replace("%2F", "/")
    r = provider.browser.get(provider.url + "/oauth2/authorize?" + url.split("?", 1)[1], allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].startswith("http://127.0.0.1:"), r.text
    assert "Signed in" in requests.get(r.headers["Location"], timeout=10).text
    assert login.wait(timeout=30) == 0, login.stderr.read().decode()

    # logout revokes the refresh token (the whole sign-in) and forgets it.
    refresh = json.loads((tmp_path / "cli" / "credentials.json").read_text())["refreshToken"]
    out = run("logout")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "cli" / "credentials.json").exists()
    assert not provider.active(refresh)
    assert run("ssh", "cert").returncode == 1


def test_agent_join_certifies_the_host_and_configures_sshd(provider, tmp_path):
    from conftest import BIN
    provider.apply(provider.policy + """
        host web-1 { addresses = [127.0.0.1] labels = { env = prod } }
        host db-1 { addresses = [127.0.0.2] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] options = [permit-pty] }
        """)
    wrong = gatehouse("admin", "host", "add", "web-1", "--labels", "env=dev", "--data-dir", provider.data)
    assert wrong.returncode == 1 and "env=prod in the policy" in wrong.stderr, wrong.stderr
    added = gatehouse("admin", "host", "add", "web-1", "--labels", "env=prod", "--data-dir", provider.data)
    assert added.returncode == 0, added.stderr
    token = next(w for w in added.stdout.split() if w.startswith("ghjt_"))
    assert gatehouse("admin", "host", "add", "nowhere", "--data-dir", provider.data).returncode == 1  # not in the policy

    keys = tmp_path / "hostkeys"
    os.makedirs(keys)
    host_key = str(keys / "ssh_host_ed25519_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
    agent = lambda *args: subprocess.run([BIN, "agent", *args, "--state-dir", str(tmp_path / "agent"), "--host-key", host_key],
                                         capture_output=True, text=True, timeout=60)
    (tmp_path / "token").write_text(token + "\n")
    assert agent("join", "--server", "http://gatehouse.example.com", "--token", token, "--sshd-config-dir", str(tmp_path / "x.d")).returncode == 1  # https only off-host
    joined = agent("join", "--server", provider.issuer, "--token-file", str(tmp_path / "token"), "--sshd-config-dir", str(tmp_path / "sshd_config.d"))
    assert joined.returncode == 0 and "Joined as web-1" in joined.stdout, joined.stdout + joined.stderr
    # The token works once.
    again = agent("join", "--server", provider.issuer, "--token", token, "--sshd-config-dir", str(tmp_path / "other.d"))
    assert again.returncode == 1 and "not valid" in again.stderr, again.stderr
    shown = subprocess.run(["ssh-keygen", "-L", "-f", host_key + "-cert.pub"], capture_output=True, text=True, check=True).stdout
    assert "host certificate" in shown and "web-1" in shown and "127.0.0.1" in shown
    assert agent("run", "--once").returncode == 0
    assert open(tmp_path / "agent" / "revoked.krl", "rb").read(6) == b"SSHKRL"
    # Renewal with the agent's token, for the same host key only.
    state = json.load(open(tmp_path / "agent" / "agent.json"))
    assert oct(os.stat(tmp_path / "agent" / "agent.json").st_mode & 0o777) == "0o600"
    # Agent tokens have their own prefix, never an OIDC access token's (ghat_): scanners and
    # incident response tell them apart.
    assert state["agentToken"].startswith("ghag_") and len(state["agentToken"]) == 48, state["agentToken"][:5]
    renew = lambda key: requests.post(provider.url + "/api/hosts/renew", json={"host_key": key}, headers={"Authorization": "Bearer " + state["agentToken"]}, timeout=10)
    renewed = renew(open(host_key + ".pub").read())
    assert renewed.status_code == 200 and renewed.json()["principals"] == ["web-1", "127.0.0.1"] and renewed.json().get("agent_token") is None, renewed.text
    _, other_public = keypair(str(tmp_path), "not_the_host_key")
    assert renew(other_public).status_code == 409

    # A real sshd with nothing but the agent's drop-in for Gatehouse trust.
    port = free_port()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    config = tmp_path / "sshd_config"
    config.write_text(f"""Include {tmp_path}/sshd_config.d/*.conf
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {tmp_path}/sshd.pid
{SSHD_LOCKED_DOWN}""")
    subprocess.run([SSHD_BIN, "-t", "-f", str(config)], check=True)
    sshd = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port)
        key, public = keypair(str(tmp_path), "user")
        with open(key + "-cert.pub", "w") as f:
            f.write(issue(provider, access_token(provider), public).json()["certificate"] + "\n")
        ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()
        known = tmp_path / "known_hosts"

        def ssh(known_hosts_line):
            known.write_text(known_hosts_line + "\n")
            return subprocess.run(["ssh", "-F", "/dev/null", "-i", key, "-o", f"CertificateFile={key}-cert.pub", "-o", "IdentitiesOnly=yes",
                                   "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
                                   "-p", str(port), "root@127.0.0.1", "echo trusted-by-ca"], capture_output=True, text=True, timeout=30)
        # No prior entry for this host: only the host CA, and StrictHostKeyChecking=yes.
        ok = ssh("@cert-authority * " + ca["host_ca"])
        assert ok.returncode == 0 and ok.stdout.strip() == "trusted-by-ca", ok.stderr
        # The same host, trusted through another CA: refused before any login.
        _, other_ca = keypair(str(tmp_path), "other_host_ca")
        refused = ssh("@cert-authority * " + other_ca)
        assert refused.returncode == 255 and "Host key verification failed" in refused.stderr, refused.stderr
        # And the host presenting a certificate from another CA: refused by a client that trusts ours.
        subprocess.run(["ssh-keygen", "-q", "-s", str(tmp_path / "other_host_ca"), "-h", "-I", "forged-host", "-n", "web-1,127.0.0.1", "-V", "-5m:+1h",
                        host_key + ".pub"], check=True)
        sshd.send_signal(1)  # sshd reads its host certificate when it starts a connection's child after a reload
        time.sleep(1)
        forged = ssh("@cert-authority * " + ca["host_ca"])
        assert forged.returncode == 255 and "Host key verification failed" in forged.stderr, forged.stderr

    finally:
        if sshd.poll() is None:
            sshd.terminate()
            sshd.communicate(timeout=10)

    # Hostile joins: a clear error, nothing issued, and the token not spent by them.
    fresh = next(w for w in gatehouse("admin", "host", "add", "db-1", "--data-dir", provider.data).stdout.split() if w.startswith("ghjt_"))
    for body, code in [({"token": "ghjt_" + "A" * 43, "host_key": open(host_key + ".pub").read()}, 401), ({"token": fresh}, 400),
                       ({"token": fresh, "host_key": "ssh-rsa AAAA"}, 400), ({"token": fresh, "host_key": 5}, 400),
                       ({"token": fresh, "host_key": "x", "extra": 1}, 400), ({"token": fresh * 3, "host_key": "x"}, 401)]:
        r = requests.post(provider.url + "/api/hosts/join", json=body, timeout=10)
        assert r.status_code == code, (body, r.status_code, r.text)
    r = requests.post(provider.url + "/api/hosts/join", json={"token": fresh, "host_key": open(host_key + ".pub").read()}, timeout=10)
    assert r.status_code == 201 and r.json()["principals"] == ["db-1", "127.0.0.2"], r.text
    assert requests.post(provider.url + "/api/hosts/renew", json={"host_key": open(host_key + ".pub").read()}, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401



def test_source_address_and_gatehouse_ssh(provider, tmp_path):
    """A rule with `from` gives the certificate a source-address that sshd enforces; and
    `gatehouse ssh` runs OpenSSH with the certificate and the host CA, renewing as needed."""
    from conftest import BIN
    provider.apply(provider.policy + """
        host web-1 { addresses = [127.0.0.1] }
        allow ssh staff-root { who = [staff] logins = [root] hosts = [web-1] options = [permit-pty] from = [127.0.0.1/32, 10.0.0.0/8] }
        """)
    key, public = keypair(str(tmp_path))
    r = issue(provider, access_token(provider), public)
    assert r.status_code == 201, r.text
    with open(key + "-cert.pub", "w") as f:
        f.write(r.json()["certificate"] + "\n")
    shown = subprocess.run(["ssh-keygen", "-L", "-f", key + "-cert.pub"], capture_output=True, text=True, check=True).stdout
    assert "source-address 10.0.0.0/8,127.0.0.1" in shown or "source-address 127.0.0.1,10.0.0.0/8" in shown, shown
    ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()
    os.makedirs(tmp_path / "sshd")
    sshd = SSHD(str(tmp_path / "sshd"), ca["user_ca"], ["root@web-1"])
    try:
        assert sshd.ssh(key, key + "-cert.pub").returncode == 0
        # The same certificate from another source address (127.0.0.2): refused by sshd.
        other = subprocess.run(["ssh", "-F", "/dev/null", "-b", "127.0.0.2", "-i", key, "-o", f"CertificateFile={key}-cert.pub", "-o", "IdentitiesOnly=yes",
                                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p", str(sshd.port),
                                "root@127.0.0.1", "true"], capture_output=True, text=True, timeout=30)
        assert other.returncode == 255, other.stdout + other.stderr

        # gatehouse ssh: sign in (device grant), then connect; the CLI gets the certificate itself.
        env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path)}
        provider.apply(with_device_scopes(provider.applied))
        login = subprocess.Popen([BIN, "login", "--device", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        m = read_until(login, r"user_code=([A-Z-]+)")
        provider.browser.post(provider.url + "/device", data={"user_code": m.group(1), "decision": "allow"}, headers={"Origin": provider.issuer}, timeout=10)
        assert login.wait(timeout=30) == 0
        # The sshd here has a plain host key: trust it for this test alone, with the CLI's own known_hosts.
        host_key = open(str(tmp_path / "sshd" / "host_key.pub")).read().split()[:2]
        with open(tmp_path / "cli" / "known_hosts", "a") as f:
            f.write(f"[127.0.0.1]:{sshd.port} {host_key[0]} {host_key[1]}\n")
        out = subprocess.run([BIN, "ssh", "-p", str(sshd.port), "root@127.0.0.1", "echo via-gatehouse-ssh"], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0 and out.stdout.strip() == "via-gatehouse-ssh", out.stdout + out.stderr
        # A certificate for that host alone.
        per_host = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / "cli" / "id_ed25519-web-1-cert.pub")], capture_output=True, text=True, check=True).stdout
        assert "root@web-1" in per_host

        # By the policy's name, as the README says (`gatehouse ssh root@web-1`): the CLI reaches
        # the host's address on its ssh_port and checks its key under the name web-1.
        provider.apply(with_device_scopes(provider.policy) + f"""
            host web-1 {{ addresses = [127.0.0.1] ssh_port = {sshd.port} }}
            allow ssh staff-root {{ who = [staff] logins = [root] hosts = [web-1] options = [permit-pty] from = [127.0.0.1/32, 10.0.0.0/8] }}
            """)
        login = subprocess.Popen([BIN, "login", "--device", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        m = read_until(login, r"user_code=([A-Z-]+)")
        provider.browser.post(provider.url + "/device", data={"user_code": m.group(1), "decision": "allow"}, headers={"Origin": provider.issuer}, timeout=10)
        assert login.wait(timeout=30) == 0
        assert f"Port {sshd.port}\n    HostKeyAlias web-1\n" in (tmp_path / "cli" / "ssh_config").read_text()
        with open(tmp_path / "cli" / "known_hosts", "a") as f:
            f.write(f"web-1 {host_key[0]} {host_key[1]}\n")
        out = subprocess.run([BIN, "ssh", "root@web-1", "echo by-name"], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0 and out.stdout.strip() == "by-name", out.stdout + out.stderr
    finally:
        sshd.stop()
