"""The SSH bastion against real OpenSSH on both sides: a plain `ssh`/`scp`/`sftp` client talks to
Gatehouse's own SSH server, which checks the person's certificate and the policy, connects on
with a one-minute certificate to a real `sshd` set up by `gatehouse agent join` (its host key
pinned to the one it enrolled with), relays the session and records it. Recordings are read
back as asciicast, checked against the audit log, and tampering is caught by `audit verify`."""
import hashlib
import base64
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_port, gatehouse, venv_tool
from test_oidc import Provider
from test_passkeys import Authenticator, enroll, sign_in
from test_ssh import SSHD_BIN, SSHD_LOCKED_DOWN, access_token, issue, keypair, wait_for_port, with_device_scopes

if not SSHD_BIN or os.geteuid() != 0:
    pytest.skip("needs openssh-server and root", allow_module_level=True)


class Bastion:
    """A Gatehouse with its bastion, one joined host `web-1` running a real sshd, and the
    admin's key with a certificate."""

    def __init__(self, provider, tmp_path, rules="options = [permit-pty, permit-port-forwarding]"):
        self.provider = provider
        self.tmp = tmp_path
        self.ssh_port = provider.server.ssh_port
        self.sshd_port = free_port()
        provider.apply(provider.policy + f"""
            host web-1 {{ addresses = [127.0.0.1] ssh_port = {self.sshd_port} }}
            host db-1 {{ addresses = [127.0.0.2] }}
            allow ssh staff-root {{ who = [staff] logins = [root] hosts = [web-1, db-1] {rules} }}
            """)
        added = gatehouse("admin", "host", "add", "web-1", "--data-dir", provider.data)
        assert added.returncode == 0, added.stderr
        token = next(w for w in added.stdout.split() if w.startswith("ghjt_"))
        keys = tmp_path / "hostkeys"
        os.makedirs(keys)
        self.host_key = str(keys / "ssh_host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key], check=True)
        joined = subprocess.run([BIN, "agent", "join", "--server", provider.issuer, "--token", token, "--state-dir", str(tmp_path / "agent"),
                                 "--host-key", self.host_key, "--sshd-config-dir", str(tmp_path / "sshd_config.d")], capture_output=True, text=True, timeout=60)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.sshd_config = tmp_path / "sshd_config"
        self.sshd_config.write_text(f"""Include {tmp_path}/sshd_config.d/*.conf
Port {self.sshd_port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {tmp_path}/sshd.pid
{SSHD_LOCKED_DOWN}AcceptEnv LANG LC_* GH_SECRET
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
        subprocess.run([SSHD_BIN, "-t", "-f", str(self.sshd_config)], check=True)
        self.start_sshd()
        self.key, public = keypair(str(tmp_path), "user")
        r = issue(provider, access_token(provider), public)
        assert r.status_code == 201, r.text
        with open(self.key + "-cert.pub", "w") as f:
            f.write(r.json()["certificate"] + "\n")
        ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()
        assert ca["bastion"]["port"] == self.ssh_port, ca
        self.known = tmp_path / "known_hosts"
        self.known.write_text(f"[127.0.0.1]:{self.ssh_port} {ca['bastion']['host_key']}\n")

    def start_sshd(self):
        # sshd logs to a file: a pipe nobody reads fills up and stalls it after a few dozen sessions.
        self.sshd_log = open(self.tmp / "sshd.log", "a")
        self.sshd = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", str(self.sshd_config)], stdout=self.sshd_log, stderr=subprocess.STDOUT)
        wait_for_port(self.sshd_port)

    def ssh_args(self, key=None, cert=True):
        key = key or self.key
        args = ["-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known}",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        if cert:
            args += ["-o", f"CertificateFile={key}-cert.pub"]
        return args

    def ssh(self, *command, user="root@web-1", key=None, cert=True, input=None, timeout=60, extra=()):
        return subprocess.run(["ssh", *self.ssh_args(key, cert), *extra, "-p", str(self.ssh_port), f"{user}@127.0.0.1", *command],
                              capture_output=True, input=input, timeout=timeout)

    def sessions(self, *args):
        r = gatehouse("sessions", *args, "--data-dir", self.provider.data)
        return r

    def audit(self, code):
        r = gatehouse("audit", "tail", "-n", "1000", "--code", code, "--data-dir", self.provider.data)
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def stop(self):
        if self.sshd.poll() is None:
            self.sshd.terminate()
            self.sshd.wait(timeout=10)
        self.sshd_log.close()
        return (self.tmp / "sshd.log").read_text()


@pytest.fixture
def bastion(servers, tmp_path):
    provider = Provider(servers(tmp_path / "data").start(), 9)
    b = Bastion(provider, tmp_path)
    yield b
    b.stop()


def test_exec_relays_stdin_stdout_stderr_and_exit_status_and_is_recorded(bastion):
    r = bastion.ssh("cat; echo to-stderr >&2; exit 7", input=b"typed into stdin\n")
    assert r.returncode == 7, r.stderr
    assert r.stdout == b"typed into stdin\n" and r.stderr == b"to-stderr\n", (r.stdout, r.stderr)
    # The session is listed, ended, with its exit status and the recording's digest.
    listed = json.loads(bastion.sessions("list", "--json").stdout)
    assert len(listed) == 1, listed
    s = listed[0]
    assert s["login"] == "root" and s["host"] == "web-1" and s["username"] == "admin" and s["mode"] == "exec" and s["exit_status"] == 7, s
    path = os.path.join(bastion.provider.data, "recordings", s["id"] + ".ghrec")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == s["recording_sha256"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    sealed = bastion.audit("ssh.recording_sealed")
    assert sealed and sealed[-1]["details"]["sha256"] == s["recording_sha256"], sealed
    # Played back: asciicast v2 with the person, login, host and exit status in the header.
    played = bastion.sessions("play", s["id"], "--raw")
    assert played.returncode == 0, played.stderr
    lines = played.stdout.splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["gatehouse"]["user"] == "admin" and header["gatehouse"]["exit_status"] == 7, header
    events = [json.loads(line) for line in lines[1:]]
    assert ["i", "typed into stdin\n"] in [[e[1], e[2]] for e in events]
    assert "".join(e[2] for e in events if e[1] == "o") == "typed into stdin\nto-stderr\n"
    # The onward certificate: one minute, exactly root@web-1, issued through the bastion.
    issued = [e for e in bastion.audit("ssh.certificate_issued") if e["details"].get("bastion_session")]
    assert issued and issued[-1]["details"]["principals"] == "root@web-1", issued


def test_a_command_hidden_in_a_stray_byte_is_still_recorded(bastion):
    """The review's evasion: without a terminal, a non-UTF-8 chunk was recorded as a byte count
    plus printable runs of 8 or more, so a command cut into shorter runs around one stray byte
    ran in bash and left no trace. Input is now recorded whole, whatever its encoding."""
    evasion = b"cat\t/etc/s\\\nhadow #\xff\necho done-$((6*7))\n"
    r = bastion.ssh("bash", input=evasion)
    assert r.returncode == 0 and b"root:" in r.stdout and b"done-42" in r.stdout, (r.stdout[-200:], r.stderr)
    session = json.loads(bastion.sessions("list", "--json").stdout)[0]
    played = bastion.sessions("play", session["id"], "--raw")
    assert played.returncode == 0, played.stderr
    events = [json.loads(line) for line in played.stdout.splitlines()[1:]]
    typed = "".join(e[2] for e in events if e[1] == "i")
    assert "cat\t/etc/s\\\nhadow #\ufffd\n" in typed, typed
    exact = [e[2] for e in events if e[1] == "m" and e[2].startswith("input bytes (base64): ")]
    assert any(b"\xff" in base64.b64decode(m.split(": ", 1)[1]) for m in exact), exact
    # The output is in the recording as text too (not a transfer).
    assert "root:" in "".join(e[2] for e in events if e[1] == "o")


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


def wait_for_pane(session, text, timeout=15):
    deadline = time.time() + timeout
    pane = ""
    while time.time() < deadline:
        pane = tmux("capture-pane", "-p", "-t", session).stdout
        if text in pane:
            return pane
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; the pane shows:\n{pane}")


def test_interactive_pty_session_in_tmux_is_relayed_and_recorded(bastion, tmp_path):
    session = f"gh{os.getpid()}"
    command = " ".join(["ssh", *bastion.ssh_args(), "-tt", "-p", str(bastion.ssh_port), "root@web-1@127.0.0.1"])
    assert tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command).returncode == 0
    try:
        tmux("send-keys", "-t", session, "PS1='ready> '; stty size", "Enter")
        wait_for_pane(session, "24 80")
        tmux("send-keys", "-t", session, "echo typed-$((6*7))", "Enter")
        wait_for_pane(session, "typed-42")
        # A resize reaches the target's terminal.
        assert tmux("resize-window", "-t", session, "-x", "100", "-y", "30").returncode == 0
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "stty size", "Enter")
        wait_for_pane(session, "30 100")
        # Ctrl-C reaches the target's foreground process through the pty.
        tmux("send-keys", "-t", session, "sleep 60", "Enter")
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "C-c", "")
        tmux("send-keys", "-t", session, "echo after-interrupt", "Enter")
        wait_for_pane(session, "after-interrupt\r" if False else "after-interrupt")
        tmux("send-keys", "-t", session, "exit 3", "Enter")
        deadline = time.time() + 10
        while time.time() < deadline and tmux("has-session", "-t", session).returncode == 0:
            time.sleep(0.1)
    finally:
        tmux("kill-session", "-t", session)
    s = json.loads(bastion.sessions("list", "--json").stdout)[0]
    assert s["mode"] == "shell" and s["exit_status"] == 3, s
    lines = bastion.sessions("play", s["id"], "--raw").stdout.splitlines()
    header = json.loads(lines[0])
    assert header["width"] == 80 and header["height"] == 24 and header["env"]["TERM"], header
    events = [json.loads(line) for line in lines[1:]]
    typed = "".join(e[2] for e in events if e[1] == "i")
    shown = "".join(e[2] for e in events if e[1] == "o")
    assert "echo typed-$((6*7))" in typed and "typed-42" in shown and "\x03" in typed, typed
    assert ["r", "100x30"] in [[e[1], e[2]] for e in events], events
    # Played in the terminal: the output comes back, paced (here as fast as possible).
    played = bastion.sessions("play", s["id"], "--speed", "1000")
    assert played.returncode == 0 and "typed-42" in played.stdout, played.stderr


def test_scp_and_sftp_move_100_mb_intact_through_the_bastion(bastion, tmp_path):
    source = tmp_path / "payload"
    with open(source, "wb") as f:
        f.write(os.urandom(100 * 1024 * 1024))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "received"
    base = ["-F", "/dev/null", "-i", bastion.key, "-o", "IdentitiesOnly=yes", "-o", f"CertificateFile={bastion.key}-cert.pub",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={bastion.known}", "-o", "BatchMode=yes", "-P", str(bastion.ssh_port)]
    # scp over SFTP (OpenSSH's default) and the classic scp protocol (an exec of `scp -t`).
    for mode in ([], ["-O"]):
        remote = f"/tmp/gh-bastion-{os.getpid()}-{len(mode)}"
        up = subprocess.run(["scp", *base, *mode, str(source), f"root@web-1@127.0.0.1:{remote}"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        down = subprocess.run(["scp", *base, *mode, f"root@web-1@127.0.0.1:{remote}", str(target)], capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, down.stderr
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
        os.unlink(target)
        os.unlink(remote)
    batch = tmp_path / "batch"
    remote = f"/tmp/gh-bastion-sftp-{os.getpid()}"
    batch.write_text(f"put {source} {remote}\nget {remote} {target}\nrm {remote}\n")
    sftp = subprocess.run(["sftp", *base, "-b", str(batch), "root@web-1@127.0.0.1"], capture_output=True, text=True, timeout=300)
    assert sftp.returncode == 0, sftp.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    sessions = json.loads(bastion.sessions("list", "--json").stdout)
    modes = sorted((s["mode"], s["command"]) for s in sessions)
    assert ("subsystem", "sftp") in modes and any(m == "exec" and c.startswith("scp ") for m, c in modes), modes
    assert all(s["recording_sha256"] and s["exit_status"] == 0 for s in sessions), sessions
    # sftp is recorded as what it is (a subsystem and its byte counts), not as 100 MB of binary "terminal".
    sftp_session = next(s for s in sessions if s["mode"] == "subsystem")
    assert sftp_session["bytes_in"] > 100_000_000 or sftp_session["bytes_out"] > 100_000_000, sftp_session
    assert sftp_session["recording_bytes"] < 100_000, sftp_session


def text(r):
    return (r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout), (r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr)


def test_refusals_say_why_and_are_audited(bastion, tmp_path):
    # A key Gatehouse never certified: SSH authentication fails.
    stranger, _ = keypair(str(tmp_path), "stranger")
    r = bastion.ssh("true", key=stranger, cert=False)
    assert r.returncode == 255 and b"Permission denied (publickey)" in r.stderr, r.stderr
    # Proven keys that may not go where they ask: the reason, on stderr, exit 1.
    for user, reason in [("nobody@web-1", "does not allow nobody on web-1"), ("root@nowhere", "there is no host nowhere"),
                         ("root@db-1", "db-1 has not joined Gatehouse"), ("web-1", "does not allow admin on web-1"),
                         ("root@-evil", "must be HOST or LOGIN@HOST")]:
        r = bastion.ssh("echo should-not-run", user=user)
        out, err = text(r)
        assert r.returncode == 1 and reason in err and "should-not-run" not in out, (user, r.returncode, err)
    denied = bastion.audit("ssh.session_denied")
    assert len(denied) == 5 and all(e["outcome"] == "denied" and e["reason"] for e in denied), denied
    assert json.loads(bastion.sessions("list", "--json").stdout) == []  # nothing ran, nothing recorded

    # The target presenting another host key than the one it enrolled with: refused, never trusted on first use.
    other = str(tmp_path / "other_host_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    bastion.stop()
    config = bastion.sshd_config.read_text().replace(f"HostKey {bastion.host_key}", f"HostKey {other}")
    bastion.sshd_config.write_text(config)
    bastion.start_sshd()
    r = bastion.ssh("echo should-not-run")
    out, err = text(r)
    assert r.returncode == 1 and "not the key it enrolled with" in err and "should-not-run" not in out, err

    # The policy no longer allows it: refused though the certificate still names root@web-1.
    bastion.provider.apply(bastion.provider.policy + f"""
        host web-1 {{ addresses = [127.0.0.1] ssh_port = {bastion.sshd_port} }}
        """)
    r = bastion.ssh("true")
    assert r.returncode == 1 and b"the policy does not allow admin to log in as root on web-1" in r.stderr, r.stderr

    # An expired certificate (as the inventory records it): refused with when it expired.
    import sqlite3
    db = sqlite3.connect(os.path.join(bastion.provider.data, "gatehouse.sqlite"))
    db.execute("UPDATE ssh_certificates SET valid_before = ? WHERE kind = 'user'", (int((time.time() - 60) * 1000),))
    db.commit()
    db.close()
    r = bastion.ssh("true")
    assert r.returncode == 1 and b"your SSH certificate expired at" in r.stderr, r.stderr


def start_session(bastion, command, key=None):
    """A long-running exec session; returns the ssh process once its first line arrived."""
    proc = subprocess.Popen(["ssh", *bastion.ssh_args(key), "-p", str(bastion.ssh_port), "root@web-1@127.0.0.1", command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    assert first, proc.stderr.read()
    return proc


def carol_and_admin_in_sessions(bastion, tmp_path):
    """Carol (a member, signed in) with a certificate for her own key, and a live session each
    for her and the admin; returns her browser session and the two ssh processes."""
    provider = bastion.provider
    carol = provider.member("carol", "carol@example.org")
    key, public = keypair(str(tmp_path), "carol")
    r = issue(provider, access_token(provider, browser=carol), public)
    assert r.status_code == 201, r.text
    with open(key + "-cert.pub", "w") as f:
        f.write(r.json()["certificate"] + "\n")
    return carol, start_session(bastion, "echo started; sleep 60", key=key), start_session(bastion, "echo started; sleep 60")


def test_signing_out_ends_the_bastion_sessions_of_the_certificates_it_obtained(bastion, tmp_path):
    """A session cut revokes the certificates obtained through it; a live bastion session opened
    with such a certificate ends too (checked every half second, on every replica)."""
    provider = bastion.provider
    carol, carols, admins = carol_and_admin_in_sessions(bastion, tmp_path)
    try:
        out = carol.post(provider.url + "/api/session/signout", json={}, timeout=10)
        assert out.status_code == 204, out.text
        began = time.monotonic()
        carols.wait(timeout=10)
        assert time.monotonic() - began < 5
        assert b"revoked" in carols.stderr.read()
        assert admins.poll() is None  # someone else's session goes on
    finally:
        for p in (carols, admins):
            if p.poll() is None:
                p.kill()


def test_offboarding_ends_live_sessions_within_a_second(bastion, tmp_path):
    provider = bastion.provider
    carol, carols, admins = carol_and_admin_in_sessions(bastion, tmp_path)
    try:
        begun = time.monotonic()
        out = gatehouse("admin", "offboard", "carol", "--data-dir", provider.data)
        answered = time.monotonic()
        assert out.returncode == 0 and "1 ssh_sessions" in out.stdout, out.stdout + out.stderr
        carols.wait(timeout=5)
        ended = time.monotonic()
        assert ended - answered <= 1.0, f"carol's session outlived her offboarding by {ended - answered:.2f} s"
        print(f"offboarding: command {answered - begun:.3f} s, session gone {ended - answered:.3f} s after it returned")
        assert b"carol was offboarded" in carols.stderr.read()
        assert admins.poll() is None  # the admin's session is untouched
    finally:
        for p in (carols, admins):
            if p.poll() is None:
                p.kill()
    time.sleep(0.5)
    sessions = {s["username"]: s for s in json.loads(bastion.sessions("list", "--json").stdout)}
    assert "offboarded" in sessions["carol"]["ended_by"] and sessions["carol"]["recording_sha256"], sessions["carol"]
    # Carol cannot start another: she does not get past authentication, and the reason is audited.
    r = bastion.ssh("true", key=str(tmp_path / "carol"))  # her key, as carol_and_admin_in_sessions made it
    assert r.returncode == 255 and b"Permission denied" in r.stderr, r.stderr
    assert "offboarded" in bastion.audit("ssh.session_denied")[-1]["reason"]


def test_locking_ends_sessions_like_offboarding_and_unlocking_lets_the_person_sign_in_again(bastion, tmp_path):
    provider = bastion.provider
    r = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", "--data-dir", provider.data)
    assert r.returncode == 0, r.stderr
    passkey = Authenticator()
    enrolled, _, _ = enroll(provider.server, next(w for w in r.stdout.split() if "/enroll#token=" in w).split("token=")[1], passkey)
    assert enrolled.status_code == 201, enrolled.text

    def certify(browser_cookie):
        browser = requests.Session()
        browser.cookies.set("gatehouse_session", browser_cookie)
        key, public = keypair(str(tmp_path), f"carol-{time.monotonic_ns()}")
        issued = issue(provider, access_token(provider, browser=browser), public)
        assert issued.status_code == 201, issued.text
        with open(key + "-cert.pub", "w") as f:
            f.write(issued.json()["certificate"] + "\n")
        return key

    key = certify(enrolled.cookies["gatehouse_session"])
    carols = start_session(bastion, "echo started; sleep 60", key=key)
    try:
        out = gatehouse("admin", "lock", "carol", "--reason", "laptop stolen", "--data-dir", provider.data)
        answered = time.monotonic()
        # Her certificate and the bastion's one-minute onward certificate for her session.
        assert out.returncode == 0 and "1 ssh_sessions" in out.stdout and "2 ssh_certificates" in out.stdout, out.stdout + out.stderr
        carols.wait(timeout=5)
        assert time.monotonic() - answered <= 1.0
        assert b"carol was locked" in carols.stderr.read()
    finally:
        if carols.poll() is None:
            carols.kill()
    # Locked: no bastion session (the certificate was revoked), no sign-in, and it says so.
    assert bastion.ssh("true", key=key).returncode == 255
    refused, _ = sign_in(provider.server, passkey, "carol")
    assert refused.status_code in (400, 401, 403), refused.text
    again = gatehouse("admin", "lock", "carol", "--data-dir", provider.data)
    assert again.returncode != 0 and "already locked" in again.stderr, again.stderr
    locked = [e for e in bastion.audit("user.locked") if e["subject"] == "user:carol"]
    assert locked and locked[-1]["reason"] == "laptop stolen" and locked[-1]["details"]["ssh_sessions"] == "1", locked
    # Unlocked: the same passkey signs in again, and a new certificate opens a session; the old
    # certificate stays revoked.
    # (Unlocking waits until the ended session's record is closed: its recording sealed.)
    deadline = time.time() + 10
    while True:
        out = gatehouse("admin", "unlock", "carol", "--reason", "laptop found", "--data-dir", provider.data)
        if out.returncode == 0 or "still has" not in out.stderr or time.time() > deadline:
            break
        time.sleep(0.2)
    assert out.returncode == 0 and "Unlocked carol" in out.stdout, out.stdout + out.stderr
    signed_in, _ = sign_in(provider.server, passkey, "carol")
    assert signed_in.status_code == 200, signed_in.text
    old = bastion.ssh("true", key=key)
    assert old.returncode == 1 and b"your SSH certificate was revoked" in old.stderr, old.stderr
    fresh = certify(signed_in.cookies["gatehouse_session"])
    assert bastion.ssh("echo back", key=fresh).stdout == b"back\n"
    assert [e["reason"] for e in bastion.audit("user.unlocked")] == ["laptop found"]


def test_sessions_are_watched_live_and_killed_by_an_administrator(bastion):
    proc = start_session(bastion, "echo started; for i in $(seq 1 300); do echo tick $i; sleep 0.1; done")
    try:
        live = json.loads(bastion.sessions("list", "--live", "--json").stdout)
        assert len(live) == 1 and "ended_at" not in live[0], live
        sid = live[0]["id"]
        watch = subprocess.Popen([BIN, "sessions", "watch", sid, "--data-dir", bastion.provider.data], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = ""
        deadline = time.time() + 10
        while "tick 12" not in seen and time.time() < deadline:
            seen += watch.stdout.readline()
        assert "tick 12" in seen, seen
        killed = bastion.sessions("kill", sid, "--reason", "INC-7 review")
        assert killed.returncode == 0, killed.stderr
        proc.wait(timeout=5)
        assert b"INC-7 review" in proc.stderr.read()
        watch.wait(timeout=10)  # the recording was sealed: the watch ends by itself
        assert watch.returncode == 0, watch.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = bastion.audit("ssh.session_killed")
    assert killed and killed[-1]["reason"] == "INC-7 review" and killed[-1]["subject"] == f"session:{sid}", killed
    s = json.loads(bastion.sessions("list", "--json").stdout)[0]
    assert "INC-7" in s["ended_by"] and s["recording_sha256"], s
    assert bastion.sessions("kill", sid).returncode == 1  # not live any more
    assert bastion.sessions("kill", "../../etc/passwd").returncode == 1


def test_a_changed_recording_fails_audit_verify(bastion):
    assert bastion.ssh("echo recorded").returncode == 0
    ok = gatehouse("audit", "verify", "--data-dir", bastion.provider.data)
    assert ok.returncode == 0 and "1 sealed recordings match" in ok.stdout, ok.stdout + ok.stderr
    s = json.loads(bastion.sessions("list", "--json").stdout)[0]
    path = os.path.join(bastion.provider.data, "recordings", s["id"] + ".ghrec")
    data = bytearray(open(path, "rb").read())
    data[-20] ^= 0x01
    open(path, "wb").write(bytes(data))
    bad = gatehouse("audit", "verify", "--data-dir", bastion.provider.data)
    assert bad.returncode == 1 and f"the recording of session {s['id']} was changed" in bad.stderr, bad.stdout + bad.stderr
    played = bastion.sessions("play", s["id"])
    assert played.returncode == 1 and "does not match the SHA-256" in played.stderr, played.stderr
    os.unlink(path)
    gone = gatehouse("audit", "verify", "--data-dir", bastion.provider.data)
    assert gone.returncode == 1 and "is missing" in gone.stderr, gone.stderr


def test_a_server_crash_mid_session_closes_it_as_interrupted_with_its_recording_sealed(bastion):
    proc = start_session(bastion, "echo before-the-crash; sleep 60")
    live = json.loads(bastion.sessions("list", "--live", "--json").stdout)
    assert len(live) == 1, live
    time.sleep(1.5)  # the recorder flushes every second
    server = bastion.provider.server
    server.stop(signal.SIGKILL)
    assert proc.wait(timeout=10) != 0
    # The row still says live: nothing ended it. The next start (the store's only writer, so the
    # old process is known to be gone) closes it, sealing the file as found.
    server.start()
    deadline = time.time() + 15
    while time.time() < deadline:
        s = json.loads(bastion.sessions("list", "--json").stdout)[0]
        if s.get("ended_at"):
            break
        time.sleep(0.2)
    assert s["id"] == live[0]["id"] and s["ended_by"].startswith("interrupted: the Gatehouse server running it stopped"), s
    path = os.path.join(bastion.provider.data, "recordings", s["id"] + ".ghrec")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == s["recording_sha256"] and os.path.getsize(path) == s["recording_bytes"], s
    events = bastion.audit("ssh.recording_interrupted")
    assert len(events) == 1 and events[0]["details"]["sha256"] == s["recording_sha256"] and events[0]["outcome"] == "failed", events
    # The audit log now vouches for the cut-short file, which plays up to its last whole frame.
    ok = gatehouse("audit", "verify", "--data-dir", bastion.provider.data)
    assert ok.returncode == 0 and "1 sealed recordings match" in ok.stdout, ok.stdout + ok.stderr
    played = bastion.sessions("play", s["id"], "--raw")
    assert played.returncode == 0 and "before-the-crash" in played.stdout, played.stdout + played.stderr
    # Later starts leave it alone: one interrupted entry, and new sessions work.
    server.stop()
    server.start()
    assert bastion.ssh("echo after-restart").stdout == b"after-restart\n"
    assert len(bastion.audit("ssh.recording_interrupted")) == 1
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0x01
    open(path, "wb").write(bytes(data))
    bad = gatehouse("audit", "verify", "--data-dir", bastion.provider.data)
    assert bad.returncode == 1 and f"the recording of session {s['id']} was changed" in bad.stderr, bad.stdout + bad.stderr


def test_port_forwarding_follows_the_policy_and_is_audited(bastion, tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("through the bastion\n")
    http_port = free_port()
    web = subprocess.Popen(["python3", "-m", "http.server", str(http_port), "--bind", "127.0.0.1", "--directory", str(tmp_path / "www")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    local = free_port()
    forward = subprocess.Popen(["ssh", *bastion.ssh_args(), "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:127.0.0.1:{http_port}",
                                "-p", str(bastion.ssh_port), "root@web-1@127.0.0.1"], stderr=subprocess.PIPE)
    try:
        wait_for_port(http_port)
        wait_for_port(local)
        assert requests.get(f"http://127.0.0.1:{local}/hello.txt", timeout=10).text == "through the bastion\n"
        opened = bastion.audit("ssh.forwarding_opened")  # one per connection (the port probe made one too)
        assert opened and opened[-1]["details"]["to"] == f"127.0.0.1:{http_port}", opened
    finally:
        forward.kill()
    # Without permit-port-forwarding in the rule, the bastion refuses the channel.
    bastion.provider.apply(bastion.provider.policy + f"""
        host web-1 {{ addresses = [127.0.0.1] ssh_port = {bastion.sshd_port} }}
        allow ssh staff-root {{ who = [staff] logins = [root] hosts = [web-1] options = [permit-pty] }}
        """)
    r = subprocess.run(["ssh", *bastion.ssh_args(), "-W", f"127.0.0.1:{http_port}", "-p", str(bastion.ssh_port), "root@web-1@127.0.0.1"],
                       capture_output=True, timeout=30, input=b"")
    web.kill()
    assert r.returncode == 255 and b"forwarding failed" in r.stderr, r.stderr
    assert len(bastion.audit("ssh.forwarding_opened")) == len(opened)


def test_no_recording_no_session(bastion):
    recordings = os.path.join(bastion.provider.data, "recordings")
    # The recording cannot be created: the session is refused before anything runs.
    os.rename(recordings, recordings + ".moved")
    open(recordings, "w").close()
    r = bastion.ssh("touch /tmp/gh-should-not-exist; echo ran")
    out, err = text(r)
    assert r.returncode == 1 and "cannot be recorded" in err and "ran" not in out, err
    assert not os.path.exists("/tmp/gh-should-not-exist")
    os.unlink(recordings)
    os.rename(recordings + ".moved", recordings)
    failed = bastion.audit("ssh.recording_failed")
    assert failed and failed[-1]["outcome"] == "failed", failed
    # The disk fills up during a session: the session is ended, and that is audited.
    assert subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", recordings]).returncode == 0
    try:
        r = bastion.ssh("head -c 20000000 /dev/urandom | base64; echo finished", timeout=60)
        out, err = text(r)
        assert "recording failed" in err and "finished" not in out, err[-500:]
    finally:
        subprocess.run(["umount", "-l", recordings])
    failed = bastion.audit("ssh.recording_failed")
    assert len(failed) == 2 and "No space left" in failed[-1]["reason"], failed


def test_ssh_audit_reports_the_offered_algorithms(bastion):
    r = subprocess.run([venv_tool("ssh-audit"), "-j", "--skip-rate-test",
                        "-p", str(bastion.ssh_port), "127.0.0.1"], capture_output=True, text=True, timeout=60)
    report = json.loads(r.stdout)
    ciphers = {e["algorithm"] for e in report["enc"]}
    hostkeys = {e["algorithm"] for e in report["key"]}
    kex = [e["algorithm"] for e in report["kex"]]
    print("ssh-audit:", json.dumps({"kex": kex, "key": sorted(hostkeys), "enc": sorted(ciphers), "mac": [e["algorithm"] for e in report["mac"]]}))
    assert ciphers == {"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}, ciphers
    assert hostkeys == {"ssh-ed25519"}, hostkeys
    assert "curve25519-sha256" in kex
    # No failures beyond the NIST ECDH curves swift-nio-ssh 0.15.1 always offers (OpenSSH never picks them).
    failing = {e["algorithm"] for section in ("kex", "key", "enc", "mac") for e in report[section] if e.get("notes", {}).get("fail")}
    assert failing <= {"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"}, failing


def test_sessions_through_graphql(bastion):
    def admin(query):
        out = subprocess.run(["curl", "-sS", "--unix-socket", f"{bastion.provider.data}/admin.sock", "-H", "Content-Type: application/json",
                              "-d", json.dumps({"query": query}), "http://gatehouse/v1/graphql"], capture_output=True, text=True, timeout=30).stdout
        return json.loads(out)
    assert bastion.ssh("echo via-graphql").returncode == 0
    proc = start_session(bastion, "echo started; sleep 60")
    try:
        live = admin("{ sessions(live: true) { id username login host mode command endedAt } }")["data"]["sessions"]
        assert len(live) == 1 and live[0]["endedAt"] is None and live[0]["command"] == "echo started; sleep 60", live
        everything = admin("{ sessions { id exitStatus recordingSha256 } }")["data"]["sessions"]
        done = next(s for s in everything if s["id"] != live[0]["id"])
        assert done["exitStatus"] == 0 and len(done["recordingSha256"]) == 64, everything
        cast = admin(f'{{ sessionRecording(id: "{done["id"]}") }}')["data"]["sessionRecording"].splitlines()
        assert json.loads(cast[0])["gatehouse"]["exit_status"] == 0 and any("via-graphql" in line for line in cast[1:]), cast
        # Watching by polling: the events after those already seen.
        deadline = time.time() + 5  # frames reach the file at least every second
        while True:
            first = admin(f'{{ sessionRecording(id: "{live[0]["id"]}") }}')["data"]["sessionRecording"].splitlines()
            if any("started" in line for line in first[1:]) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert any("started" in line for line in first[1:]), first
        later = admin(f'{{ sessionRecording(id: "{live[0]["id"]}", afterEvent: {len(first) - 1}) }}')["data"]["sessionRecording"].splitlines()
        assert later[0] == first[0] and not any("started" in line for line in later[1:]), later
        killed = admin(f'mutation {{ killSession(id: "{live[0]["id"]}", reason: "graphql drill") }}')
        assert killed["data"]["killSession"] == live[0]["id"], killed
        proc.wait(timeout=5)
        assert b"graphql drill" in proc.stderr.read()
        again = admin(f'mutation {{ killSession(id: "{live[0]["id"]}") }}')
        assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND", again
        missing = admin('{ sessionRecording(id: "../../root.key") }')
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND", missing
    finally:
        if proc.poll() is None:
            proc.kill()


def test_gatehouse_login_writes_an_ssh_config_through_the_bastion(bastion, tmp_path):
    from test_ssh import read_until
    provider = bastion.provider
    provider.apply(with_device_scopes(provider.applied))
    env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path)}
    login = subprocess.Popen([BIN, "login", "--device", "--server", provider.issuer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    m = read_until(login, r"(http://\S+/device\?user_code=[A-Z-]+)")
    approved = provider.browser.post(provider.url + "/device", data={"user_code": m.group(1).split("=")[1], "decision": "allow"},
                                     headers={"Origin": provider.issuer}, timeout=10)
    assert approved.status_code == 200
    assert login.wait(timeout=30) == 0, login.stderr.read().decode()
    cert = subprocess.run([BIN, "ssh", "cert"], capture_output=True, text=True, timeout=60, env=env)
    assert cert.returncode == 0, cert.stderr
    config = tmp_path / "cli" / "ssh_bastion_config"
    text_ = config.read_text()
    assert "Host web-1\n" in text_ and f"Port {bastion.ssh_port}\n" in text_ and "HostKeyAlias gatehouse-bastion" in text_, text_
    assert "gatehouse-bastion ssh-ed25519 " in (tmp_path / "cli" / "known_hosts").read_text()
    ssh = lambda *args: subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", *args], capture_output=True, text=True, timeout=60, env=env)
    # The host key is checked (StrictHostKeyChecking's default asks; BatchMode refuses unknown keys).
    ok = ssh("-l", "root@web-1", "web-1", "echo through-the-bastion")
    assert ok.returncode == 0 and ok.stdout == "through-the-bastion\n", ok.stderr
    # `ssh web-1` logs in as the person's own name, which this policy does not allow: said so.
    own = ssh("web-1", "true")
    assert own.returncode == 1 and "does not allow admin on web-1" in own.stderr, own.stderr
    # `ssh root@web-1` puts `root` in the user name: the answer says how to name the target.
    wrong = ssh("root@web-1", "true")
    assert wrong.returncode == 1 and "ssh -l root@web-1 web-1" in wrong.stderr, wrong.stderr
    # The README's form, naming the bastion itself: its key is pinned under its real name and port.
    direct = ssh("-p", str(bastion.ssh_port), "root@web-1@localhost", "echo by-the-bastion-name")
    assert direct.returncode == 0 and direct.stdout == "by-the-bastion-name\n", direct.stderr


def test_unauthenticated_connections_are_capped_per_source(bastion):
    import socket
    held = []
    try:
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", bastion.ssh_port), timeout=5)
            assert s.recv(64).startswith(b"SSH-2.0-"), "the first 16 get the banner"
            held.append(s)
        extra = socket.create_connection(("127.0.0.1", bastion.ssh_port), timeout=5)
        assert extra.recv(64) == b"", "the 17th unauthenticated connection from one source is closed at once"
        extra.close()
        held.pop().close()
        time.sleep(0.2)
        again = socket.create_connection(("127.0.0.1", bastion.ssh_port), timeout=5)
        assert again.recv(64).startswith(b"SSH-2.0-"), "a slot freed by a closed connection is given again"
        again.close()
    finally:
        for s in held:
            s.close()
    assert bastion.ssh("echo still-open").returncode == 0


def test_environment_is_filtered_and_exit_signals_are_relayed(bastion):
    # The target's sshd would take GH_SECRET (AcceptEnv); the bastion passes only its allowlist.
    r = bastion.ssh("echo lang=$LANG secret=$GH_SECRET", extra=("-o", "SetEnv=LANG=C.UTF-8 GH_SECRET=leaked"))
    assert r.returncode == 0 and r.stdout == b"lang=C.UTF-8 secret=\n", (r.stdout, r.stderr)
    # A program killed by a signal: the client sees it, and the session records it.
    r = bastion.ssh("kill -TERM $$")
    assert r.returncode == 255, (r.returncode, r.stderr)
    s = json.loads(bastion.sessions("list", "--json").stdout)[0]
    assert s["exit_signal"] == "TERM" and "exit_status" not in s, s


def test_rsync_over_the_bastion(bastion, tmp_path):
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    remote = f"/tmp/gh-rsync-{os.getpid()}"
    shell = " ".join(["ssh", *bastion.ssh_args(), "-p", str(bastion.ssh_port), "-l", "root@web-1"])
    r = subprocess.run(["rsync", "-a", "-e", shell, f"{source}/", f"127.0.0.1:{remote}/"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    back = tmp_path / "back"
    r = subprocess.run(["rsync", "-a", "-e", shell, f"127.0.0.1:{remote}/", f"{back}/"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (back / "a.txt").read_text() == "alpha\n" and (back / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
    shutil.rmtree(remote)
    sessions = json.loads(bastion.sessions("list", "--json").stdout)
    assert len(sessions) == 2 and all(s["mode"] == "exec" and s["command"].startswith("rsync --server") and s["exit_status"] == 0 for s in sessions), sessions


def test_session_admin_routes_refuse_hostile_input(bastion):
    """Malformed, oversized and hostile requests on the admin socket's session routes: a clear
    error each, no crash, and nothing written (the audit log does not grow)."""
    def call(method, path, body=None):
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", f"{bastion.provider.data}/admin.sock", "-X", method]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", body]
        out = subprocess.run(args + [f"http://gatehouse{path}"], capture_output=True, text=True, timeout=30).stdout
        text_, _, code = out.rpartition("\n")
        return int(code), text_
    proc = start_session(bastion, "echo started; sleep 60")
    try:
        sid = json.loads(bastion.sessions("list", "--live", "--json").stdout)[0]["id"]
        before = len(bastion.audit("ssh.session_killed"))
        for body in ["{", "[]", '{"reason": 5}', '{"reason": "x", "extra": 1}', json.dumps({"reason": "x" * 501}), "x" * 10000]:
            code, text_ = call("POST", f"/v1/sessions/{sid}/kill", body)
            assert code in (400, 413) and json.loads(text_)["error"]["message"], (body[:20], code, text_)
        for path, expected in [("/v1/sessions?limit=0", 400), ("/v1/sessions?limit=100000", 400), ("/v1/sessions/..%2F..%2Froot.key", 404),
                               ("/v1/sessions/" + "a" * 300, 404), ("/v1/sessions/%00/recording", 404), ("/v1/sessions/nope/recording?follow=1", 404)]:
            code, text_ = call("GET", path)
            assert code == expected and json.loads(text_)["error"]["message"], (path, code, text_)
        assert call("POST", "/v1/sessions/not-a-session/kill")[0] == 404
        assert proc.poll() is None and len(bastion.audit("ssh.session_killed")) == before
    finally:
        proc.kill()
