"""End to end in a real headless Chromium with its virtual authenticator (Chrome DevTools
Protocol, WebAuthn domain): enroll from the bootstrap link, sign out, sign in, add a second
passkey, sign in with it, and see offboarding end another user's session in the browser."""
import json
import os
import shutil

import pytest

from conftest import gatehouse
from test_passkeys import bootstrap_token

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("GATEHOUSE_REQUIRE_BROWSER") == "1":
        pytest.fail("GATEHOUSE_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed", pytrace=False)
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915"]:  # a phone-sized window
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.execute_cdp_cmd("WebAuthn.enable", {})
    yield driver
    driver.quit()


def add_authenticator(driver):
    return driver.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]


def wait_for_path(driver, path):
    WebDriverWait(driver, 15).until(lambda d: d.current_url.split("#")[0].endswith(path),
                                    message=lambda: f"still at {driver.current_url}: {status(driver)}")


def status(driver):
    try:
        return driver.find_element(By.ID, "status").text
    except Exception:
        return ""


def listed(driver, list_id):
    return driver.find_elements(By.CSS_SELECTOR, f"#{list_id} li")


def test_enroll_sign_out_sign_in_second_passkey_and_offboarding(servers, tmp_path, browser):
    server = servers(tmp_path / "data").start()
    base = f"http://localhost:{server.port}"
    first = add_authenticator(browser)

    # Enroll from the bootstrap link.
    browser.get(f"{base}/enroll#token={bootstrap_token(server)}")
    browser.find_element(By.ID, "enroll").click()
    wait_for_path(browser, "/account")
    assert browser.find_element(By.TAG_NAME, "h1").text == "admin"
    assert len(listed(browser, "passkeys")) == 1 and len(listed(browser, "sessions")) == 1
    assert "#token=" not in browser.current_url
    credentials = browser.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": first})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"] and credentials[0]["rpId"] == "localhost"

    # Sign out, then sign in with the discoverable passkey (no user name typed).
    browser.find_element(By.ID, "signout").click()
    wait_for_path(browser, "/signin")
    browser.get(f"{base}/account")
    wait_for_path(browser, "/signin")
    browser.find_element(By.ID, "signin").click()
    wait_for_path(browser, "/account")

    # After sign-in the page goes only to a path on this origin: a TAB or newline that the
    # browser strips (turning "/\t/evil.example/" into "//evil.example/") is refused.
    for hostile in ["/%09/evil.example/", "/%0A/evil.example/", "/%5C/evil.example/", "/.//evil.example/", "/a/..//evil.example/x"]:
        browser.find_element(By.ID, "signout").click()
        wait_for_path(browser, "/signin")
        browser.get(f"{base}/signin?return_to={hostile}")
        browser.find_element(By.ID, "signin").click()
        wait_for_path(browser, "/account")
        assert browser.current_url.startswith(base + "/") and "evil.example" not in browser.current_url.split("/")[2], (hostile, browser.current_url)

    # Add a second passkey on another authenticator, then sign in with that one alone.
    browser.execute_cdp_cmd("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    second = add_authenticator(browser)
    browser.find_element(By.ID, "add-passkey").click()
    WebDriverWait(browser, 15).until(lambda d: len(listed(d, "passkeys")) == 2, message=lambda: status(browser))
    browser.find_element(By.ID, "signout").click()
    wait_for_path(browser, "/signin")
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "signin").click()
    wait_for_path(browser, "/account")
    assert len(browser.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": second})["credentials"]) == 1

    # A second person enrolls in the same browser; offboarding ends their session at once.
    invite = gatehouse("admin", "invite", "bob", "--email", "bob@example.org", "--data-dir", server.data_dir)
    browser.delete_all_cookies()
    # Chrome allows one internal authenticator at a time: bob gets a fresh one.
    browser.execute_cdp_cmd("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": second})
    bobs = add_authenticator(browser)
    browser.get(next(w for w in invite.stdout.split() if "/enroll#token=" in w))
    browser.find_element(By.ID, "enroll").click()
    wait_for_path(browser, "/account")
    assert browser.find_element(By.TAG_NAME, "h1").text == "bob"
    r = gatehouse("admin", "offboard", "bob", "--reason", "browser test", "--data-dir", server.data_dir)
    assert r.returncode == 0 and "ended 1 sessions" in r.stdout, r.stdout + r.stderr
    browser.get(f"{base}/account")
    wait_for_path(browser, "/signin")
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 15).until(lambda d: "not registered here" in status(d), message=lambda: status(browser))
    assert browser.find_element(By.ID, "status").get_attribute("class") == "error"
    assert bobs
    # By name: the browser finds no passkey for the account (decoys only) and says so in words,
    # not with its raw WebAuthn error.
    browser.get(f"{base}/signin")
    browser.find_element(By.ID, "username").send_keys("bob")
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 20).until(lambda d: "No passkey was used" in status(d), message=lambda: status(browser))
    assert "ask an administrator for a recovery link" in status(browser)


def test_oidc_sign_in_consent_and_device_approval_in_the_browser(servers, tmp_path, browser):
    """The browser half of OIDC: a signed-out user is sent to sign in with the passkey and comes
    back to the app with a code; a third-party client shows the consent page (whose form must be
    allowed to land on the app: CSP form-action); the device page approves a headless client."""
    import base64
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlencode, urlsplit

    import requests
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.jose import JsonWebKey, JsonWebToken

    from conftest import free_port

    class App(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>app</title><p id=app>signed in</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    app = ThreadingHTTPServer(("127.0.0.1", free_port()), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{app.server_address[1]}/cb"
    server = servers(tmp_path / "data").start()
    base = f"http://localhost:{server.port}"
    add_authenticator(browser)
    browser.get(f"{base}/enroll#token={bootstrap_token(server)}")
    browser.find_element(By.ID, "enroll").click()
    wait_for_path(browser, "/account")
    policy = tmp_path / "p.policy"
    policy.write_text('group staff { members = [admin] }\napp grafana { client_id = "grafana" }\napp wiki { client_id = "wiki" }\n'
                      'app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }\n'
                      'allow app staff-apps { who = [staff] apps = [grafana, wiki, cli] }\n')
    assert gatehouse("policy", "apply", str(policy), "--data-dir", server.data_dir).returncode == 0
    secret = next(w for w in gatehouse("admin", "oidc-client", "add", "grafana", "--redirect-uri", callback, "--data-dir", server.data_dir).stdout.split()
                  if w.startswith("ghcs_"))
    assert gatehouse("admin", "oidc-client", "add", "wiki", "--public", "--third-party", "--name", "Team Wiki", "--redirect-uri", callback,
                     "--data-dir", server.data_dir).returncode == 0

    def code_from(url):
        q = parse_qs(urlsplit(url).query)
        assert q.get("state") == ["s"], url
        return q["code"][0]

    # Signed out: authorize → sign-in page → passkey → back to the app with a code.
    browser.find_element(By.ID, "signout").click()
    wait_for_path(browser, "/signin")
    client = OAuth2Session("grafana", secret, scope="openid profile", redirect_uri=callback, code_challenge_method="S256")
    verifier = "v" * 64
    url, _ = client.create_authorization_url(f"{base}/oauth2/authorize", code_verifier=verifier, state="s", nonce="n")
    browser.get(url)
    WebDriverWait(browser, 15).until(lambda d: "/signin?return_to=" in d.current_url, message=lambda: browser.current_url)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 15).until(lambda d: d.current_url.startswith(callback), message=lambda: f"at {browser.current_url}: {status(browser)}")
    token = client.fetch_token(f"http://127.0.0.1:{server.port}/oauth2/token", code=code_from(browser.current_url), code_verifier=verifier)
    keys = JsonWebKey.import_key_set(requests.get(f"http://127.0.0.1:{server.port}/oauth2/jwks", timeout=10).json())
    claims = JsonWebToken(["ES256"]).decode(token["id_token"], keys)
    assert claims["preferred_username"] == "admin" and claims["nonce"] == "n" and claims["acr"] in ("phr", "phrh")

    # A third-party client: the consent page, then the app.
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    browser.get(f"{base}/oauth2/authorize?" + urlencode({"client_id": "wiki", "redirect_uri": callback, "response_type": "code", "scope": "openid",
                                                       "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Allow Team Wiki?"
    browser.find_element(By.ID, "allow").click()
    WebDriverWait(browser, 15).until(lambda d: d.current_url.startswith(callback), message=lambda: f"at {browser.current_url}")
    r = requests.post(f"http://127.0.0.1:{server.port}/oauth2/token", data={"grant_type": "authorization_code", "code": code_from(browser.current_url),
                                                                            "code_verifier": verifier, "redirect_uri": callback, "client_id": "wiki"}, timeout=10)
    assert r.status_code == 200 and "id_token" in r.json(), r.text

    # The device grant: the CLI asks, the person approves on the device page.
    started = requests.post(f"http://127.0.0.1:{server.port}/oauth2/device_authorization", data={"client_id": "gatehouse-cli", "scope": "openid"}, timeout=10).json()
    browser.get(started["verification_uri_complete"])
    assert started["user_code"] in browser.page_source
    browser.find_element(By.ID, "allow").click()
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(lambda d: "is signed in" in d.find_element(By.TAG_NAME, "h1").text)
    app.shutdown()


def test_gatehouse_login_loopback_and_device_in_the_browser(servers, tmp_path, browser):
    """`gatehouse login` end to end with a real browser and a passkey: the loopback flow (the
    browser signs in and is sent back to the CLI's 127.0.0.1 listener) and the device flow (the
    browser approves the code the CLI printed)."""
    import os
    import re
    import select
    import subprocess
    import time

    from conftest import BIN

    server = servers(tmp_path / "data").start()
    base = f"http://localhost:{server.port}"
    add_authenticator(browser)
    browser.get(f"{base}/enroll#token={bootstrap_token(server)}")
    browser.find_element(By.ID, "enroll").click()
    wait_for_path(browser, "/account")
    policy = tmp_path / "p.policy"
    policy.write_text('group staff { members = [admin] }\napp cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }\n'
                      'allow app staff-cli { who = [staff] apps = [cli] }\n')
    assert gatehouse("policy", "apply", str(policy), "--data-dir", server.data_dir).returncode == 0
    env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path)}

    def printed(proc, pattern):
        seen, deadline = "", time.time() + 20
        while time.time() < deadline:
            if select.select([proc.stdout.fileno()], [], [], 0.5)[0]:
                seen += os.read(proc.stdout.fileno(), 4096).decode()
                m = re.search(pattern, seen)
                if m:
                    return m.group(1)
        raise AssertionError(f"never printed {pattern}: {seen}")

    # Loopback: sign out first, so the browser has to use the passkey on the way.
    browser.find_element(By.ID, "signout").click()
    wait_for_path(browser, "/signin")
    login = subprocess.Popen([BIN, "login", "--no-browser", "--server", base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    browser.get(printed(login, r"Sign in at: (\S+)"))
    WebDriverWait(browser, 15).until(lambda d: "/signin?return_to=" in d.current_url)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 15).until(lambda d: d.current_url.startswith("http://127.0.0.1:"), message=browser.current_url)
    assert "Signed in" in browser.page_source
    assert login.wait(timeout=30) == 0, login.stderr.read().decode()
    status = subprocess.run([BIN, "status"], capture_output=True, text=True, env=env)
    assert "signed in as: admin" in status.stdout

    # Device: the CLI prints a link; the browser opens it and approves.
    login = subprocess.Popen([BIN, "login", "--device", "--server", base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    browser.get(printed(login, r"(http://\S+/device\?user_code=\S+)"))
    # The page says where the request started, and the policy keeps Gatehouse's own scopes out
    # of the device flow by default (the CLI asked again without them).
    origin_note = browser.find_element(By.ID, "device-origin").text
    assert "started from 127.0.0.1" in origin_note, origin_note
    assert "SSH certificates" not in browser.page_source
    browser.find_element(By.ID, "allow").click()
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(lambda d: "is signed in" in d.find_element(By.TAG_NAME, "h1").text)
    assert login.wait(timeout=30) == 0, login.stderr.read().decode()


SHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS", os.path.join(os.path.dirname(__file__), "../../test-artifacts/screenshots"))
WIDTHS = {"desktop": (1280, 900), "phone": (412, 915)}


def shoot(browser, name):
    """Screenshots of the page at desktop and phone width (test-artifacts/screenshots, or
    $GATEHOUSE_SCREENSHOTS), and a check that nothing overflows sideways at either width."""
    os.makedirs(SHOTS, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        browser.set_window_size(width, height)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} overflows sideways by {overflow}px at {label} width"
        browser.save_screenshot(os.path.join(SHOTS, f"{name}-{label}.png"))
    browser.set_window_size(*WIDTHS["desktop"])


def test_every_page_at_desktop_and_phone_width(servers, tmp_path, browser):
    """Each page a person meets, looked at in a real browser at two widths: the account page
    names passkeys and renames them, shows where each session is, keeps the only passkey, says
    what the policy gives and what to do next; consent and device pages name the app and what
    it may do; unknown paths and the proxy's refusal look like the rest."""
    import requests
    server = servers(tmp_path / "data").start()
    base = f"http://localhost:{server.port}"
    add_authenticator(browser)
    browser.set_window_size(*WIDTHS["desktop"])
    browser.get(f"{base}/enroll#token={bootstrap_token(server)}")
    shoot(browser, "enroll")
    browser.find_element(By.ID, "enroll").click()
    wait_for_path(browser, "/account")
    policy = tmp_path / "p.policy"
    policy.write_text('group staff { members = [admin] }\n'
                      'app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }\n'
                      'app internal { upstream = "http://127.0.0.1:9" path = "/internal/" share_origin = true }\n'
                      'allow app staff-apps { who = [staff] apps = [cli] }\n')
    assert gatehouse("policy", "apply", str(policy), "--data-dir", server.data_dir).returncode == 0
    browser.get(f"{base}/account")

    # The account page: what the policy gives, the only passkey kept, sessions told apart, the next step.
    main = browser.find_element(By.ID, "main").text
    assert "The policy puts you in group staff" in main and "You administer this Gatehouse" in main, main
    assert f"gatehouse login --server {base}" == browser.find_element(By.ID, "next-step").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#passkeys [data-action=remove-passkey]") and "This is your only passkey" in main
    session = listed(browser, "sessions")[0].text
    assert "Chrome (headless) on Linux" in session and "from 127.0.0.1" in session and "(this one)" in session, session
    shoot(browser, "account")
    # Rename the passkey: shown by its new name, audited.
    browser.find_element(By.CSS_SELECTOR, "#passkeys details summary").click()
    field = browser.find_element(By.CSS_SELECTOR, "#passkeys form.rename input")
    field.clear()
    field.send_keys("work laptop")
    shoot(browser, "account-rename")
    browser.find_element(By.CSS_SELECTOR, "#passkeys form.rename button").click()
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException, IndexError]).until(
        lambda d: "work laptop" in listed(d, "passkeys")[0].text, message=lambda: status(browser))
    tail = gatehouse("audit", "tail", "-n", "5", "--code", "passkey.renamed", "--data-dir", server.data_dir).stdout
    assert json.loads(tail.splitlines()[-1])["details"] == {"name": "work laptop"}, tail
    # Hostile names are refused with a clear error and nothing written.
    cookie = browser.get_cookie("gatehouse_session")["value"]
    pid = browser.find_element(By.CSS_SELECTOR, "#passkeys form.rename").get_attribute("data-id")
    for bad, code in [({"id": pid, "name": ""}, 400), ({"id": pid, "name": "x" * 65}, 400), ({"id": pid, "name": "a\u0000b"}, 400),
                      ({"id": pid, "name": "a\u202eb"}, 400), ({"id": pid}, 400), ({"id": "AAAA", "name": "x"}, 404), ({"id": pid, "name": 5}, 400),
                      ({"id": pid, "name": "x", "extra": 1}, 400)]:
        r = requests.post(f"http://127.0.0.1:{server.port}/api/passkeys/rename", json=bad, cookies={"gatehouse_session": cookie},
                          headers={"Origin": base}, timeout=10)
        assert r.status_code == code, (bad, r.status_code, r.text)
    assert "work laptop" in listed(browser, "passkeys")[0].text
    unauthenticated = requests.post(f"http://127.0.0.1:{server.port}/api/passkeys/rename", json={"id": pid, "name": "x"}, timeout=10)
    assert unauthenticated.status_code == 401

    # The device page names the CLI for what it is, and the scopes by what they allow.
    started = requests.post(f"http://127.0.0.1:{server.port}/oauth2/device_authorization", data={"client_id": "gatehouse-cli", "scope": "openid profile"},
                            timeout=10).json()
    browser.get(f"{base}/device")
    shoot(browser, "device-entry")
    browser.get(started["verification_uri_complete"])
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in the Gatehouse command line (gatehouse login) on your device?"
    assert "see your user name" in browser.find_element(By.ID, "main").text
    shoot(browser, "device-confirm")
    browser.find_element(By.ID, "deny").click()

    # A path that is not a page, and an app the policy does not give this person.
    browser.get(f"{base}/no-such-page")
    assert browser.find_element(By.TAG_NAME, "h1").text and "gatehouse.css" in browser.page_source
    shoot(browser, "not-found")
    browser.get(f"{base}/internal/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "You cannot use internal"
    assert "does not allow admin to use internal" in browser.find_element(By.ID, "main").text
    shoot(browser, "proxy-denied")
    browser.find_element(By.ID, "signout").click() if browser.find_elements(By.ID, "signout") else None
    browser.get(f"{base}/account")
    browser.delete_all_cookies()
    browser.get(f"{base}/signin")
    shoot(browser, "signin")
