"""The README's tour, run as written: every line of the fenced block marked `sh tour` in
README.md, in order, in a fresh directory, against a real server on its default ports, a real
sshd for web-1 and a headless Chromium as the person's browser. A README edit that documents a
command that does not work, or a change that breaks a documented command, fails here.

How the lines run (nothing in them is rewritten):
- `gatehouse serve ...` starts in the background (the tour's first terminal); the enrollment link
  it prints is opened in Chromium, whose virtual authenticator makes the first passkey.
- `gatehouse agent ...` runs as root "on web-1": in a private mount namespace where /etc/ssh and
  /var/lib are this test's, so the machine's own sshd configuration is never touched. After
  `agent join`, web-1's sshd (that /etc/ssh's, on the tour policy's port 2022) starts: the tour's
  "then reload sshd".
- Every other line runs with `bash -c` in the tour directory, HOME a fresh directory, `gatehouse`
  on PATH, and BROWSER a script that hands each URL to Chromium.

Also here: every `gatehouse` command written in README.md and docs/*.md parses
(GATEHOUSE_CHECK_ARGS=1), and the step-up loop of a `step_up` rule is broken in the browser.
"""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_port
from test_ssh import SSHD_LOCKED_DOWN

ROOT = os.path.join(os.path.dirname(__file__), "../..")
TOUR_PORTS = {8080: "the server's default listener", 2222: "the SSH bastion's default listener", 2022: "web-1's sshd in examples/tour.policy"}
SSHD_BIN = "/usr/sbin/sshd"

# What a line must print, for the lines whose output shows that they did what the README says.
EXPECTED = {
    "gatehouse admin status": ["users:                1 (1 administrator)"],
    "gatehouse policy check examples/company.policy": ["tests passed"],
    "gatehouse policy apply examples/tour.policy": ["version 1"],
    "gatehouse policy explain --user alice --ssh root@web-1": ["decision:   allow"],
    "gatehouse admin invite bob": ["/enroll#token="],
    "gatehouse admin invitations resend bob": ["/enroll#token="],
    "gatehouse agent join": ["Joined as web-1"],
    "gatehouse login": ["as alice"],
    "gatehouse status": ["signed in as: alice", "web-1 (127.0.0.1:2022)"],
    "gatehouse ssh root@web-1 id": ["uid=0(root)"],
    "ssh -p 2222 root@web-1@localhost id": ["uid=0(root)"],
    "gatehouse sessions list": ["root", "web-1"],
    "gatehouse admin oidc-client add grafana": ["ghcs_"],
    "gatehouse audit verify": ["verified"],
    "gatehouse audit export --out log.json": ["gatehouse audit verify --bundle log.json --key"],
    "gatehouse graphql schema": ["type Query"],
}


def fenced_blocks(text):
    """(info string, lines) of each fenced code block."""
    blocks, info, lines = [], None, []
    for line in text.splitlines():
        if info is None and line.startswith("```"):
            info, lines = line[3:].strip(), []
        elif info is not None and line.startswith("```"):
            blocks.append((info, lines))
            info = None
        elif info is not None:
            lines.append(line)
    return blocks


def tour_lines():
    tours = [lines for info, lines in fenced_blocks(open(os.path.join(ROOT, "README.md")).read()) if info.split() == ["sh", "tour"]]
    assert len(tours) == 1, "README.md must have exactly one ```sh tour block"
    return [line for line in tours[0] if line.strip() and not line.lstrip().startswith("#")]


def documented_commands():
    """Every `gatehouse ...` command line in a shell (or unlabeled) block of README.md and docs/*.md."""
    files = [os.path.join(ROOT, "README.md")] + sorted(os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    found = []
    for path in files:
        for info, lines in fenced_blocks(open(path).read()):
            if info.split()[:1] not in ([], ["sh"], ["bash"], ["shell"], ["console"]):
                continue
            for line in lines:
                line = re.sub(r"^\s*(\$ |# )?(sudo )?", "", line)
                if line.startswith("gatehouse "):
                    found.append((os.path.relpath(path, ROOT), line))
    return found


def test_every_documented_gatehouse_command_parses():
    commands = documented_commands()
    assert len(commands) >= 40, commands  # the README alone has more; a parser that finds nothing must not pass
    bad = []
    for where, line in commands:
        # A synopsis (`list [--all]`) must parse without its optional parts and with them.
        variants = {re.sub(r"\s*\[[^\]]*\]", "", line), re.sub(r"[\[\]]", "", line)}
        for variant in sorted(variants):
            # Split as a POSIX shell would (quotes; a comment ends the line); the CLI parses the words.
            args = shlex.split(variant, comments=True)
            # A pipeline or redirection ends the command's own words; a placeholder (N, SERIAL) stands for a value.
            for i, w in enumerate(args):
                if w in ("|", "||", "&&", ";", ">", ">>", "<") or w.startswith(">"):
                    args = args[:i]
                    break
            args = ["1" if re.fullmatch(r"[A-Z][A-Z_]*", w) else w for w in args]
            r = subprocess.run([BIN, *args[1:]], capture_output=True, text=True, timeout=10, env={**os.environ, "GATEHOUSE_CHECK_ARGS": "1"})
            if r.returncode != 0 or not r.stdout.startswith("parsed: "):
                bad.append(f"{where}: {variant}\n    {(r.stderr or r.stdout).strip().splitlines()[0] if (r.stderr or r.stdout).strip() else r.returncode}")
    assert not bad, "documented commands that do not parse:\n" + "\n".join(bad)


def test_the_argument_check_refuses_what_the_cli_refuses():
    env = {**os.environ, "GATEHOUSE_CHECK_ARGS": "1"}
    ok = subprocess.run([BIN, "admin", "invite", "bob", "--email", "bob@example.org"], capture_output=True, text=True, env=env, timeout=10)
    assert ok.returncode == 0 and ok.stdout.strip() == "parsed: invite", ok.stdout + ok.stderr
    for args in (["admin", "invite"], ["admin", "invite", "bob", "--bogus"], ["no-such-command"], ["ssh", "cert", "--ttl"]):
        r = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=10)
        assert r.returncode == 64 and "parsed" not in r.stdout, (args, r.stdout, r.stderr)


# ---- the tour ---------------------------------------------------------------------------------

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def need_browser():
    if not (CHROMIUM and DRIVER):
        if os.environ.get("GATEHOUSE_REQUIRE_BROWSER") == "1":
            pytest.fail("GATEHOUSE_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed", pytrace=False)
        pytest.skip("chromium and chromedriver are not installed")


@pytest.fixture
def chromium():
    need_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.execute_cdp_cmd("WebAuthn.enable", {})
    driver.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    yield driver
    driver.quit()


class Person:
    """The person at the keyboard (root, as on the test machine): a shell in the tour directory
    and a browser. Commands that
    open the browser (through BROWSER) are answered in Chromium while they run."""

    def __init__(self, directory, driver, extra_env=None):
        self.dir = str(directory)
        self.driver = driver
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home, exist_ok=True)
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir, exist_ok=True)
        if not os.path.exists(os.path.join(bindir, "gatehouse")):
            os.symlink(os.path.abspath(BIN), os.path.join(bindir, "gatehouse"))
        self.opened = os.path.join(self.dir, "browser-urls")
        shim = os.path.join(bindir, "to-chromium")
        with open(shim, "w") as f:
            f.write(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {self.opened}\n')
        os.chmod(shim, 0o755)
        self.seen = 0
        self.signins = 0
        # OpenSSH finds ~/.ssh in the password database, not in $HOME: the person's lines run in
        # a mount namespace where root's home directory is this one, so `~` means the same to
        # bash, gatehouse and ssh, and the machine's own /root/.ssh is never touched.
        self.env = {"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "BROWSER": shim, "LANG": "C.UTF-8", "TERM": "dumb",
                    **(extra_env or {})}

    def wrap(self, line):
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", 'mount --bind "$1" /root && exec bash -c "$0"', line, self.home]

    def pending_urls(self):
        if not os.path.exists(self.opened):
            return []
        urls = open(self.opened).read().splitlines()
        new, self.seen = urls[self.seen:], len(urls)
        return new

    def browse(self, url):
        """What a person does with a page the CLI opened: sign in with the passkey if asked,
        and follow it back to the CLI."""
        self.driver.get(url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = self.driver.current_url
            if current.startswith("http://127.0.0.1:") and "/callback" in current:
                return
            if "/signin" in current:
                buttons = self.driver.find_elements(By.ID, "signin")
                if buttons and buttons[0].is_enabled():
                    buttons[0].click()
                    self.signins += 1
                    time.sleep(0.5)
            time.sleep(0.2)
        raise AssertionError(f"the browser never got back to the CLI: at {self.driver.current_url}")

    def run(self, line, timeout=90, wrap=None):
        argv = (wrap or self.wrap)(line)
        proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            for url in self.pending_urls():
                self.browse(url)
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"`{line}` did not finish in {timeout} s: {proc.communicate()}")
            time.sleep(0.1)
        out, err = proc.communicate()
        return proc.returncode, out, err


class Web1:
    """This machine as web-1: a private /etc/ssh and /var/lib for the root lines, and its sshd."""

    def __init__(self, directory):
        self.etc = os.path.join(directory, "web-1", "etc-ssh")
        self.var = os.path.join(directory, "web-1", "var-lib")
        os.makedirs(os.path.join(self.etc, "sshd_config.d"))
        os.makedirs(self.var)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.etc, "ssh_host_ed25519_key")], check=True)
        with open(os.path.join(self.etc, "sshd_config"), "w") as f:
            f.write(f"""Include /etc/ssh/sshd_config.d/*.conf
Port 2022
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile {directory}/web-1/sshd.pid
{SSHD_LOCKED_DOWN}""")
        self.sshd = None

    def wrap(self, line):
        """`line` as root on web-1: its own /etc/ssh and /var/lib, the rest of the machine shared."""
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount --bind "$1" /etc/ssh && mount --bind "$2" /var/lib && exec bash -c "$0"', line, self.etc, self.var]

    def start_sshd(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run(self.wrap(f"{SSHD_BIN} -t"), capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.sshd = subprocess.Popen(self.wrap(f"exec {SSHD_BIN} -D -e"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", 2022)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("web-1's sshd did not listen on 127.0.0.1:2022")

    def stop(self):
        if self.sshd and self.sshd.poll() is None:
            self.sshd.terminate()
            self.sshd.wait(timeout=10)


def require_free(port, what):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pytest.fail(f"the tour needs 127.0.0.1:{port} ({what}) free, as on a fresh machine; something listens there", pytrace=False)


def enroll(person, link, name="alice"):
    """The first terminal printed the link; the person opens it and makes a passkey."""
    person.driver.get(link)
    person.driver.find_element(By.ID, "enroll").click()
    WebDriverWait(person.driver, 20).until(lambda d: d.current_url.endswith("/account"), message=lambda: person.driver.current_url)
    assert person.driver.find_element(By.TAG_NAME, "h1").text == name


def test_the_readme_tour_runs_as_written(tmp_path, chromium):
    if os.geteuid() != 0:
        pytest.skip("the tour's root lines need a mount namespace (root)")
    for port, what in TOUR_PORTS.items():
        require_free(port, what)
    tour = tmp_path / "tour"
    tour.mkdir()
    shutil.copytree(os.path.join(ROOT, "examples"), tour / "examples")
    person = Person(tour, chromium)
    web1 = Web1(str(tmp_path))
    server = None
    used = set()
    transcript = []
    try:
        for line in tour_lines():
            words = line.split()
            if words[:2] == ["gatehouse", "serve"]:
                server = subprocess.Popen(person.wrap(f"exec {line}"), cwd=person.dir, env=person.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                from test_ssh import read_until
                link = read_until(server, r"(http://localhost:8080/enroll#token=\S+)\n", timeout=60).group(1)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        if requests.get("http://127.0.0.1:8080/readyz", timeout=1).status_code == 200:
                            break
                    except requests.RequestException:
                        time.sleep(0.2)
                enroll(person, link)
                continue
            code, out, err = person.run(line, wrap=web1.wrap if words[:2] == ["gatehouse", "agent"] else None)
            transcript.append(f"$ {line}\n{out}{err}")
            assert code == 0, "\n".join(transcript[-3:])
            for prefix, wanted in EXPECTED.items():
                if line.startswith(prefix) and (len(line) == len(prefix) or line[len(prefix)] in " #"):
                    used.add(prefix)
                    for w in wanted:
                        assert w in out + err, f"`{line}` printed:\n{out}{err}\n(expected {w!r})"
            if words[:3] == ["gatehouse", "agent", "join"]:
                web1.start_sshd()  # "then reload sshd"
        assert used == set(EXPECTED), f"the tour no longer runs {sorted(set(EXPECTED) - used)}"

        # The command the export printed verifies the bundle offline.
        export = next(t for t in transcript if t.startswith("$ gatehouse audit export"))
        verify = re.search(r"(gatehouse audit verify --bundle log.json --key '[^']+')", export).group(1)
        code, out, err = person.run(verify)
        assert code == 0, out + err
        # The bastion session was recorded; the host joined; the client was made: all audited.
        audit = subprocess.run([BIN, "audit", "tail", "-n", "500", "--data-dir", str(tour / "gatehouse-data")], capture_output=True, text=True, timeout=30)
        codes = [json.loads(line)["code"] for line in audit.stdout.splitlines() if line.startswith("{")]
        for wanted in ["ssh.session_started", "ssh.recording_sealed", "host.joined", "oidc.client_registered"]:
            assert wanted in codes, (wanted, sorted(set(codes)))
    finally:
        web1.stop()
        if server and server.poll() is None:
            server.send_signal(2)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def test_a_stale_step_up_asks_for_the_passkey_again_instead_of_looping(servers, tmp_path, chromium):
    """A rule with step_up and a sign-in older than it: the server names the reason (not "the
    policy allows you no login"), the CLI opens the browser with prompt=login so it asks for the
    passkey even though it is signed in, and the certificate follows."""
    if os.geteuid() != 0:
        pytest.skip("the person's lines run in a mount namespace (root)")
    from test_passkeys import bootstrap_token
    server = servers(tmp_path / "data").start()
    base = f"http://localhost:{server.port}"
    person = Person(tmp_path / "person", chromium)
    enroll(person, f"{base}/enroll#token={bootstrap_token(server)}", name="admin")
    policy = tmp_path / "step.policy"
    policy.write_text("""
        group sre { members = [admin] }
        host web-1 { addresses = [127.0.0.1] }
        app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }
        allow app cli { who = [sre] apps = [cli] }
        allow ssh deploy { who = [sre] logins = [deploy] hosts = [web-1] }
        allow ssh root { who = [sre] logins = [root] hosts = [web-1] step_up = 3s }
        """)
    assert subprocess.run([BIN, "policy", "apply", str(policy), "--data-dir", server.data_dir], capture_output=True).returncode == 0
    code, out, err = person.run(f"gatehouse login --server {base}")
    assert code == 0, out + err
    time.sleep(4)  # the sign-in's passkey check is now older than the rule's 3 s

    # Over the API, the refusal says what is wrong (RFC 9470's challenge, and words).
    creds = json.load(open(os.path.join(person.home, ".config/gatehouse/credentials.json")))
    from test_ssh import keypair, prove
    _, public = keypair(str(tmp_path), "k")
    r = requests.post(server.url + "/api/ssh/certificates", json={"public_key": public, "hosts": ["web-1"], "proof": prove(public, creds["accessToken"], str(tmp_path / "k"))},
                      headers={"Authorization": "Bearer " + creds["accessToken"]}, timeout=10)
    assert r.status_code == 200 or r.status_code == 201, r.text  # deploy@web-1 needs no step-up: issued without root
    assert r.json()["principals"] == ["deploy@web-1"] and r.json()["step_up_would_add"] == ["root@web-1"], r.text

    # `gatehouse ssh web-1` names no login: it takes what the stale sign-in still gets (deploy)
    # and keeps that certificate; nothing asks for a passkey.
    cert = os.path.join(person.home, ".config/gatehouse/id_ed25519-web-1-cert.pub")
    code, out, err = person.run("gatehouse ssh -o ConnectTimeout=1 -p 1 web-1 true")
    assert "Connection refused" in err and person.signins == 0, out + err
    assert "root@web-1" not in subprocess.run(["ssh-keygen", "-L", "-f", cert], capture_output=True, text=True, check=True).stdout
    # `gatehouse ssh root@web-1` wants root: the cached certificate lacks it, so the CLI asks
    # again, hears that a passkey check would add it, asks for the passkey, and retries.
    code, out, err = person.run("gatehouse ssh -o ConnectTimeout=1 -p 1 root@web-1 true")
    assert "root@web-1 needs a recent passkey check" in out, out + err
    assert "Connection refused" in err  # ssh ran (nothing listens on port 1): the certificate came first
    shown = subprocess.run(["ssh-keygen", "-L", "-f", cert], capture_output=True, text=True, check=True).stdout
    assert "root@web-1" in shown, shown
    assert person.signins == 1  # the browser was signed in, and still asked for the passkey

    # With every login behind step_up, a stale sign-in is refused by name, and audited so.
    time.sleep(4)
    policy.write_text(policy.read_text().replace("allow ssh deploy { who = [sre] logins = [deploy] hosts = [web-1] }", ""))
    assert subprocess.run([BIN, "policy", "apply", str(policy), "--data-dir", server.data_dir], capture_output=True).returncode == 0
    creds = json.load(open(os.path.join(person.home, ".config/gatehouse/credentials.json")))
    r = requests.post(server.url + "/api/ssh/certificates", json={"public_key": public, "proof": prove(public, creds["accessToken"], str(tmp_path / "k"))},
                      headers={"Authorization": "Bearer " + creds["accessToken"]}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "step_up_required", r.text
    assert 'error="insufficient_user_authentication"' in r.headers["WWW-Authenticate"]
    assert "root@web-1 needs a passkey check within the last 3s" in r.json()["error"]["message"], r.text
    tail = subprocess.run([BIN, "audit", "tail", "-n", "5", "--code", "ssh.certificate_refused", "--data-dir", server.data_dir], capture_output=True, text=True).stdout
    assert "needs a passkey check within the last 3s" in tail, tail
    # `gatehouse ssh cert` gets the same answer, asks for the passkey, and is issued.
    code, out, err = person.run("gatehouse ssh cert")
    assert code == 0 and "needs a passkey check within the last 3s" in out and "root@web-1" in out, out + err
