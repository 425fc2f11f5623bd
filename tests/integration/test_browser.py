"""End to end in a real headless Chromium with its virtual authenticator (Chrome DevTools
Protocol, WebAuthn domain): enroll from the bootstrap link, sign out, sign in, add a second
passkey, sign in with it, and see offboarding end another user's session in the browser."""
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
