"""Harness for live tests: runs the real `gatehouse` binary as a subprocess.

GATEHOUSE_BIN names the binary (scripts/test sets it); GATEHOUSE_TEST_POSTGRES_URL names a
PostgreSQL server for the replica tests.
"""
import os
import signal
import socket
import subprocess
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(os.path.dirname(__file__), "../../.build/debug/gatehouse"))


def venv_tool(name):
    """The path of a command-line tool that tests/requirements.txt installs (pkilint's
    `lint_pkix_cert`, `ssh-audit`): the `bin/` beside the interpreter running the tests, never
    whatever a bare name finds on PATH, so a tool installed by hand elsewhere cannot make a run
    pass that a fresh machine would fail."""
    path = os.path.join(os.path.dirname(os.path.abspath(os.sys.executable)), name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{name} is not installed beside {os.sys.executable}: scripts/test installs tests/requirements.txt into .venv")
    return path


_handed_out = set()


def free_port():
    """A port nothing listens on now, never one handed out before in this run: the kernel may
    offer a just-released port again, and a test that takes several (a server's HTTP, SSH and
    mutual-TLS listeners) must not get the same one twice before any of them is bound."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Server:
    """A `gatehouse serve` process with its own port and data dir."""

    def __init__(self, data_dir, *extra, env=None, port=None, scheme="http"):
        self.port = port or free_port()
        self.data_dir = str(data_dir)
        self.scheme = scheme
        # Every server gets its own SSH bastion port, so servers never contend for the default 2222.
        self.ssh_port = free_port()
        ssh = [] if any(str(a).startswith("--ssh-listen") for a in extra) else ["--ssh-listen", f"127.0.0.1:{self.ssh_port}"]
        self.args = [BIN, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}", *ssh, *extra]
        self.env = {**os.environ, **(env or {})}
        self.proc = None
        self.stdout = ""
        self.stderr = ""

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait=True, timeout=30, **request_args):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True)
        if not wait:
            return self
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.collect()
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.stderr}")
            try:
                if requests.get(self.url + "/readyz", timeout=1, **request_args).status_code == 200:
                    self.wait_for_listeners(deadline)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not become ready: {self.stderr}")

    def wait_for_listeners(self, deadline):
        """/readyz speaks for the public listener; the mutual-TLS and SSH listeners bind in their
        own services and may come up a moment later (a clean-clone CI run met one closed)."""
        ports = []
        for flag in ("--mtls-listen", "--ssh-listen"):
            if flag in self.args:
                value = str(self.args[self.args.index(flag) + 1])
                host, _, port = value.rpartition(":")
                if port.isdigit():
                    ports.append(("127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host.strip("[]"), int(port)))
        for host, port in ports:
            while True:
                with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                    probe.settimeout(1)
                    if probe.connect_ex((host, port)) == 0:
                        break
                if time.time() > deadline:
                    return  # the test that needs it says what is missing
                time.sleep(0.05)

    def run_to_exit(self, timeout=30):
        """Starts and waits for the process to exit (for refusals)."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True)
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            raise AssertionError("expected the server to refuse to start, but it kept running")
        return self.proc.returncode

    def collect(self):
        out, err = self.proc.communicate(timeout=30)
        self.stdout += out or ""
        self.stderr += err or ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.collect()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.collect()
        elif self.proc:
            self.collect()
        return self.proc.returncode


def gatehouse(*args, env=None, timeout=30):
    """Runs a client command; returns CompletedProcess."""
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def servers():
    started = []

    def make(*args, **kwargs):
        s = Server(*args, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop(signal.SIGKILL)


@pytest.fixture
def postgres_url():
    """A fresh, empty database on the test PostgreSQL server."""
    base = os.environ.get("GATEHOUSE_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("GATEHOUSE_REQUIRE_POSTGRES") == "1":
            pytest.fail("GATEHOUSE_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL configured")
    name = "gh_it_" + uuid.uuid4().hex[:12]
    parts = urlsplit(base)
    psql = ["psql", "-h", parts.hostname, "-p", str(parts.port), "-U", parts.username or "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    subprocess.run(psql + ["-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield urlunsplit(parts._replace(path="/" + name)), psql + ["-d", name]
    subprocess.run(psql + ["-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
