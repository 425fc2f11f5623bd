"""End to end in a real headless Chromium with its virtual authenticator (Chrome DevTools
Protocol, WebAuthn domain): enroll from the bootstrap link, sign out, sign in, add a second
passkey, sign in with it, and see offboarding end another user's session in the browser."""
import os
import shutil

import pytest

from conftest import gatehouse
from test_passkeys import bootstrap_token

webdriver = pytest.importorskip("selenium.webdriver")
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
