"""The SSH bastion against real OpenSSH on both sides: a plain `ssh`/`scp`/`sftp` client talks to
Gatehouse's own SSH server, which checks the person's certificate and the policy, connects on
with a one-minute certificate to a real `sshd` set up by `gatehouse agent join` (its host key
pinned to the one it enrolled with), relays the session and records it. Recordings are read
back as asciicast, checked against the audit log, and tampering is caught by `audit verify`."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_port, gatehouse
from test_oidc import Provider
from test_ssh import SSHD_BIN, access_token, issue, keypair, wait_for_port

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
AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
        subprocess.run([SSHD_BIN, "-t", "-f", str(self.sshd_config)], check=True)
        self.sshd = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", str(self.sshd_config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_port(self.sshd_port)
        self.key, public = keypair(str(tmp_path), "user")
        r = issue(provider, access_token(provider), public)
        assert r.status_code == 201, r.text
        with open(self.key + "-cert.pub", "w") as f:
            f.write(r.json()["certificate"] + "\n")
        ca = requests.get(provider.url + "/api/ssh/ca", timeout=10).json()
        assert ca["bastion"]["port"] == self.ssh_port, ca
        self.known = tmp_path / "known_hosts"
        self.known.write_text(f"[127.0.0.1]:{self.ssh_port} {ca['bastion']['host_key']}\n")

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
            return self.sshd.communicate(timeout=10)[0]
        return ""


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
