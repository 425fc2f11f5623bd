"""The OpenID Connect provider and the identity-aware proxy, against independent peers:
authlib (an OAuth 2 / OIDC client and a JOSE implementation) runs discovery, the code flow
with PKCE, ID-token validation through the JWKS, userinfo, refresh, introspection and
revocation; then a negative battery modelled on the OpenID Foundation's provider tests, the
device grant, offboarding, and the proxy in front of a plain HTTP app.

The passkey sign-in that precedes each flow uses the software authenticator of
test_passkeys (python-fido2); test_browser_oidc does the same in headless Chromium."""
import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oidc.core import CodeIDToken

from conftest import free_port, gatehouse
from test_passkeys import Authenticator, bootstrap_token, enroll, origin

# Exactly what we issue; a verifier that also accepted "none" or HS256 would hide a bug.
jwt = JsonWebToken(["ES256", "EdDSA"])

APP_REDIRECT = "http://127.0.0.1:9/cb"  # never contacted: codes are read from the Location header


def s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Echo(BaseHTTPRequestHandler):
    """An upstream app that speaks no OIDC: answers with the headers it received."""
    seen = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Echo.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        out = json.dumps({"path": self.path, "method": self.command, "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode(errors="replace")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.path.endswith("/evil"):  # an app trying to plant a Gatehouse session or widen a service worker
            self.send_header("Set-Cookie", "gatehouse_session=planted; Path=/")
            self.send_header("Set-Cookie", "app_pref=1; Path=/wiki/")
            self.send_header("Service-Worker-Allowed", "/")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Echo.seen = []
    yield httpd.server_address[1]
    httpd.shutdown()


class Provider:
    """A running Gatehouse with an enrolled admin (signed in as `browser`), a policy, and a
    registered confidential client `grafana`."""

    def __init__(self, server, upstream_port):
        self.server = server
        self.url = server.url
        self.issuer = origin(server)
        self.data = server.data_dir
        self.admin = Authenticator()
        r, _, _ = enroll(server, bootstrap_token(server), self.admin)
        assert r.status_code == 201, r.text
        self.browser = requests.Session()
        self.browser.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])
        self.policy = f"""
            group staff {{ members = [admin, carol] }}
            group contractors {{ members = [bob] }}
            app grafana {{ client_id = "grafana" }}
            app cli {{ client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }}
            app wiki {{ upstream = "http://127.0.0.1:{upstream_port}" path = "/wiki/" share_origin = true }}
            app docs {{ upstream = "http://127.0.0.1:{upstream_port}" host = "docs.localhost" }}
            allow app staff-apps {{ who = [staff] apps = [grafana, cli, wiki, docs] }}
            """
        self.apply(self.policy)
        r = gatehouse("admin", "oidc-client", "add", "grafana", "--redirect-uri", APP_REDIRECT, "--post-logout-redirect-uri", "http://127.0.0.1:9/bye",
                      "--name", "Grafana", "--data-dir", self.data)
        assert r.returncode == 0, r.stderr
        self.secret = next(w for w in r.stdout.split() if w.startswith("ghcs_"))

    def apply(self, text):
        self.applied = text
        path = f"{self.data}/../test.policy"
        with open(path, "w") as f:
            f.write(text)
        r = gatehouse("policy", "apply", path, "--data-dir", self.data)
        assert r.returncode == 0, r.stdout + r.stderr

    def discovery(self):
        return requests.get(self.url + "/.well-known/openid-configuration", timeout=10).json()

    def keys(self):
        return JsonWebKey.import_key_set(requests.get(self.url + "/oauth2/jwks", timeout=10).json())

    def member(self, name, email):
        """Invites and enrolls another person; returns their signed-in session."""
        r = gatehouse("admin", "invite", name, "--email", email, "--data-dir", self.data)
        assert r.returncode == 0, r.stderr
        token = next(w for w in r.stdout.split() if "/enroll#token=" in w).split("token=")[1]
        r, _, _ = enroll(self.server, token, Authenticator())
        assert r.status_code == 201, r.text
        s = requests.Session()
        s.cookies.set("gatehouse_session", r.cookies["gatehouse_session"])
        return s

    def authorize(self, browser=None, verifier=None, **params):
        """GET /oauth2/authorize as the browser; returns the response (not followed)."""
        verifier = verifier or generate_token(48)
        query = {"client_id": "grafana", "redirect_uri": APP_REDIRECT, "response_type": "code", "scope": "openid profile groups offline_access",
                 "state": "st-1", "nonce": "n-1", "code_challenge": s256(verifier), "code_challenge_method": "S256"}
        query.update({k: v for k, v in params.items() if v is not None})
        for k in [k for k, v in params.items() if v is None]:
            query.pop(k, None)
        return (browser or self.browser).get(self.url + "/oauth2/authorize?" + urlencode(query), allow_redirects=False, timeout=10), verifier

    def code(self, **params):
        r, verifier = self.authorize(**params)
        assert r.status_code == 303, r.text
        q = parse_qs(urlsplit(r.headers["Location"]).query)
        assert q["state"] == ["st-1"] and q["iss"] == [self.issuer]
        return q["code"][0], verifier

    def token(self, **form):
        return requests.post(self.url + "/oauth2/token", data=form, auth=("grafana", self.secret), timeout=10)

    def exchange(self, code, verifier, redirect=APP_REDIRECT):
        return self.token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=redirect)

    def active(self, token):
        r = requests.post(self.url + "/oauth2/introspect", data={"token": token}, auth=("grafana", self.secret), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["active"]

    def audit_codes(self):
        r = gatehouse("audit", "tail", "-n", "10000", "--data-dir", self.data)
        return [json.loads(line)["code"] for line in r.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def provider(servers, tmp_path, upstream):
    return Provider(servers(tmp_path / "data").start(), upstream)


def test_an_independent_relying_party_runs_the_whole_flow(provider):
    meta = provider.discovery()
    assert meta["issuer"] == provider.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "none" not in meta["id_token_signing_alg_values_supported"] and "HS256" not in meta["id_token_signing_alg_values_supported"]
    assert meta["response_types_supported"] == ["code"]

    client = OAuth2Session("grafana", provider.secret, scope="openid profile groups offline_access", redirect_uri=APP_REDIRECT,
                           code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(provider.url + "/oauth2/authorize", code_verifier=verifier, nonce=nonce)
    r = provider.browser.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].startswith(APP_REDIRECT), r.text
    token = client.fetch_token(provider.url + "/oauth2/token", authorization_response=r.headers["Location"], code_verifier=verifier, state=state)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 600 and token["access_token"].startswith("ghat_")

    # The ID token verifies with the JWKS (ES256, named kid) and carries what OIDC Core asks.
    header = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["kid"] in [k["kid"] for k in requests.get(provider.url + "/oauth2/jwks", timeout=10).json()["keys"]]
    claims = jwt.decode(token["id_token"], provider.keys(), claims_cls=CodeIDToken,
                        claims_options={"iss": {"essential": True, "value": provider.issuer}},
                        claims_params={"nonce": nonce, "client_id": "grafana", "access_token": token["access_token"]})
    claims.validate(leeway=5)
    assert claims["aud"] == "grafana" and claims["nonce"] == nonce and claims["preferred_username"] == "admin"
    assert claims["amr"] == ["hwk", "mfa"] and claims["acr"] == "phrh" and claims["groups"] == ["staff"]
    assert abs(claims["auth_time"] - time.time()) < 120

    info = client.get(provider.issuer + "/oauth2/userinfo").json()
    assert info["sub"] == claims["sub"] and info["groups"] == ["staff"]

    answer = client.introspect_token(provider.issuer + "/oauth2/introspect", token=token["access_token"]).json()
    assert answer["active"] and answer["client_id"] == "grafana" and answer["username"] == "admin" and answer["sub"] == claims["sub"]

    # Refresh rotates the refresh token; the old one, presented again, ends the family.
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(provider.issuer + "/oauth2/token", refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh and provider.active(refreshed["access_token"])
    assert provider.token(grant_type="refresh_token", refresh_token=first_refresh).json()["error"] == "invalid_grant"
    assert not provider.active(refreshed["access_token"]) and not provider.active(refreshed["refresh_token"])
    assert "oidc.replay_detected" in provider.audit_codes()

    # RFC 7009 revocation through authlib.
    fresh = provider.exchange(*provider.code()).json()
    assert provider.active(fresh["access_token"])
    assert client.revoke_token(provider.issuer + "/oauth2/revoke", token=fresh["access_token"]).status_code == 200
    assert not provider.active(fresh["access_token"]) and provider.active(fresh["refresh_token"])
    assert client.revoke_token(provider.issuer + "/oauth2/revoke", token=fresh["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert not provider.active(fresh["refresh_token"])


def error_of(r, status=400):
    assert r.status_code == status, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()["error"]


def test_negative_battery(provider):
    # Code reuse: refused, and what the first exchange issued dies.
    code, verifier = provider.code()
    first = provider.exchange(code, verifier).json()
    assert error_of(provider.exchange(code, verifier)) == "invalid_grant"
    assert not provider.active(first["access_token"]) and not provider.active(first["refresh_token"])

    # PKCE: missing, wrong, plain.
    code, verifier = provider.code()
    assert error_of(provider.token(grant_type="authorization_code", code=code, redirect_uri=APP_REDIRECT)) == "invalid_request"
    assert error_of(provider.exchange(code, generate_token(48))) == "invalid_grant"
    assert error_of(provider.exchange(code, verifier, redirect="http://127.0.0.1:9/other")) == "invalid_grant"
    assert provider.exchange(code, verifier).status_code == 200  # failed attempts did not burn it
    r, _ = provider.authorize(code_challenge_method="plain", code_challenge=generate_token(48))
    assert r.status_code == 303 and "error=invalid_request" in r.headers["Location"] and "state=st-1" in r.headers["Location"]
    r, _ = provider.authorize(code_challenge=None, code_challenge_method=None)
    assert r.status_code == 303 and "error=invalid_request" in r.headers["Location"]

    # Unregistered or altered redirect URIs are never redirected to.
    for uri in ["https://evil.example/cb", APP_REDIRECT + "/", APP_REDIRECT + "?x=1", None]:
        r, _ = provider.authorize(redirect_uri=uri)
        assert r.status_code == 400 and "Location" not in r.headers and "redirect_uri" in r.text, uri
    r, _ = provider.authorize(client_id="nobody")
    assert r.status_code == 400 and "Location" not in r.headers

    # Client authentication.
    code, verifier = provider.code()
    wrong = requests.post(provider.url + "/oauth2/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                                                 "redirect_uri": APP_REDIRECT}, auth=("grafana", "ghcs_" + "A" * 43), timeout=10)
    assert error_of(wrong, 401) == "invalid_client" and wrong.headers["WWW-Authenticate"].startswith("Basic")
    both = requests.post(provider.url + "/oauth2/token", data={"grant_type": "authorization_code", "code": code, "client_id": "grafana",
                                                                "client_secret": provider.secret}, auth=("grafana", provider.secret), timeout=10)
    assert error_of(both) == "invalid_request"
    public = requests.post(provider.url + "/oauth2/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                                                  "redirect_uri": APP_REDIRECT, "client_id": "grafana"}, timeout=10)
    assert error_of(public, 401) == "invalid_client"  # a confidential client cannot drop its secret

    # Tokens are never `none` or HMAC; a forged id_token_hint with either is refused at logout.
    def forged(alg, key=b""):
        head = base64.urlsafe_b64encode(json.dumps({"alg": alg, "kid": provider.keys().keys[0].kid}).encode()).rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps({"iss": provider.issuer, "sub": "x", "aud": "grafana"}).encode()).rstrip(b"=")
        import hmac
        sig = base64.urlsafe_b64encode(hmac.new(key, head + b"." + body, hashlib.sha256).digest()).rstrip(b"=") if key else b""
        return (head + b"." + body + b"." + sig).decode()
    public_pem = provider.keys().keys[0].as_pem()
    for hint in [forged("none"), forged("HS256", public_pem), forged("HS256", json.dumps(provider.keys().keys[0].as_dict()).encode())]:
        r = provider.browser.get(provider.url + "/oauth2/logout?" + urlencode({"id_token_hint": hint}), allow_redirects=False, timeout=10)
        assert r.status_code == 400 and "id_token_hint" in r.text
    assert requests.get(provider.url + "/api/session", cookies=provider.browser.cookies, timeout=10).status_code == 200  # still signed in

    # Nonce echo, and max_age / prompt=login forcing a fresh sign-in.
    code, verifier = provider.code(nonce="echo-me")
    claims = jwt.decode(provider.exchange(code, verifier).json()["id_token"], provider.keys())
    assert claims["nonce"] == "echo-me"
    time.sleep(2)
    r, _ = provider.authorize(max_age="1")
    assert r.status_code == 303 and r.headers["Location"].startswith("/signin?return_to=%2Foauth2%2Fauthorize")
    r, _ = provider.authorize(prompt="login")
    assert r.status_code == 303 and "login_after" in r.headers["Location"]
    r, _ = provider.authorize(prompt="none", max_age="1")
    assert r.status_code == 303 and "error=login_required" in r.headers["Location"]

    # Malformed and hostile input: a clear error, nothing issued.
    for form, expected in [({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
                           ({"grant_type": "authorization_code", "code": "ghac_" + "A" * 43, "code_verifier": "v" * 43, "redirect_uri": APP_REDIRECT}, "invalid_grant"),
                           ({"grant_type": "refresh_token", "refresh_token": "x" * 5000}, "invalid_grant"),
                           ({}, "invalid_request")]:
        assert error_of(provider.token(**form)) == expected, form
    raw = lambda body, ctype="application/x-www-form-urlencoded": requests.post(provider.url + "/oauth2/token", data=body, headers={"Content-Type": ctype},
                                                                               auth=("grafana", provider.secret), timeout=10)
    assert error_of(raw("grant_type=authorization_code&grant_type=refresh_token")) == "invalid_request"
    assert error_of(raw("grant_type=%ZZ")) == "invalid_request"
    assert error_of(raw(b"grant_type=\xff\xfe")) == "invalid_request"
    assert error_of(raw("a=" + "x" * 70000)) == "invalid_request"
    assert error_of(raw('{"grant_type": "authorization_code"}', "application/json")) == "invalid_request"
    r = provider.browser.get(provider.url + "/oauth2/authorize?client_id=grafana&client_id=grafana", allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "repeated" in r.text
    r = provider.browser.get(provider.url + "/oauth2/authorize?client_id=%00", allow_redirects=False, timeout=10)
    assert r.status_code == 400
    r = requests.get(provider.url + "/oauth2/userinfo", headers={"Authorization": "Bearer " + "ghat_" + "A" * 43}, timeout=10)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert requests.post(provider.url + "/oauth2/introspect", data={"token": "x"}, timeout=10).status_code == 401
    assert requests.post(provider.url + "/oauth2/introspect", data={"token": "junk"}, auth=("grafana", provider.secret), timeout=10).json() == {"active": False}


def test_device_grant_for_headless_clients(provider):
    started = requests.post(provider.url + "/oauth2/device_authorization", data={"client_id": "gatehouse-cli", "scope": "openid offline_access"}, timeout=10).json()
    assert started["verification_uri"] == provider.issuer + "/device" and started["interval"] == 5 and started["expires_in"] == 900
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started["device_code"], "client_id": "gatehouse-cli"}
    assert error_of(requests.post(provider.url + "/oauth2/token", data=poll, timeout=10)) == "authorization_pending"
    assert error_of(requests.post(provider.url + "/oauth2/token", data=poll, timeout=10)) == "slow_down"

    # The person types the code (in any case, with or without the dash) and approves.
    page = provider.browser.get(provider.url + "/device?user_code=" + started["user_code"].lower().replace("-", ""), timeout=10)
    assert page.status_code == 200 and "Sign in the Gatehouse command line (gatehouse login) on your device?" in page.text and started["user_code"] in page.text
    forged = provider.browser.post(provider.url + "/device", data={"user_code": started["user_code"], "decision": "allow"},
                                   headers={"Origin": "https://evil.example"}, timeout=10)
    assert forged.status_code == 400  # a cross-site form cannot approve
    done = provider.browser.post(provider.url + "/device", data={"user_code": started["user_code"], "decision": "allow"}, headers={"Origin": provider.issuer}, timeout=10)
    assert done.status_code == 200 and "is signed in" in done.text
    time.sleep(10.5)
    tokens = requests.post(provider.url + "/oauth2/token", data=poll, timeout=10).json()
    assert tokens["access_token"].startswith("ghat_") and tokens["refresh_token"].startswith("ghrt_")
    assert jwt.decode(tokens["id_token"], provider.keys())["aud"] == "gatehouse-cli"
    assert error_of(requests.post(provider.url + "/oauth2/token", data=poll, timeout=10)) == "invalid_grant"
    bad = provider.browser.get(provider.url + "/device?user_code=AAAA-AAAA", timeout=10)
    assert bad.status_code == 404 and "not valid" in bad.text


def test_policy_denial_offboarding_and_logout(provider):
    bob = provider.member("bob", "bob@example.org")
    r, _ = provider.authorize(browser=bob)
    assert r.status_code == 403 and "You cannot use Grafana" in r.text and "Location" not in r.headers
    assert "oidc.denied" in provider.audit_codes()

    carol = provider.member("carol", "carol@example.org")
    r, verifier = provider.authorize(browser=carol)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    tokens = provider.exchange(code, verifier).json()
    assert provider.active(tokens["access_token"])
    out = gatehouse("admin", "offboard", "carol", "--data-dir", provider.data)
    assert out.returncode == 0 and "1 oidc_grants" in out.stdout, out.stdout
    assert not provider.active(tokens["access_token"]) and not provider.active(tokens["refresh_token"])
    assert requests.get(provider.url + "/oauth2/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=10).status_code == 401

    # RP-initiated logout with the ID token as hint: session and its grants end; back to the app.
    code, verifier = provider.code()
    tokens = provider.exchange(code, verifier).json()
    r = provider.browser.get(provider.url + "/oauth2/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:9/bye",
                                                                           "state": "s9"}), allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "http://127.0.0.1:9/bye?state=s9"
    assert not provider.active(tokens["access_token"])
    assert requests.get(provider.url + "/api/session", cookies=provider.browser.cookies, timeout=10).status_code == 401
    r = provider.browser.get(provider.url + "/oauth2/logout?" + urlencode({"post_logout_redirect_uri": "https://evil.example/"}), allow_redirects=False, timeout=10)
    assert r.status_code == 400


def test_the_proxy_admits_allowed_users_with_a_signed_assertion(provider, upstream):
    forged = {"X-Gatehouse-Assertion": "forged", "X-Forwarded-User": "root", "X-Forwarded-Email": "root@example.org", "Remote-User": "root",
              "X-Forwarded-For": "10.6.6.6"}
    r = provider.browser.get(provider.url + "/wiki/page?q=1", headers=forged, cookies={"theme": "dark"}, timeout=10)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/wiki/page?q=1"
    headers = seen["headers"]
    assert "x-forwarded-user" not in headers and "remote-user" not in headers and "x-forwarded-email" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert "gatehouse_session" not in headers.get("cookie", "") and "theme=dark" in headers["cookie"]
    header = json.loads(base64.urlsafe_b64decode(headers["x-gatehouse-assertion"].split(".")[0] + "=="))
    assert header["typ"] == "gatehouse-assertion+jwt"
    claims = jwt.decode(headers["x-gatehouse-assertion"], provider.keys())
    claims.validate(leeway=5)
    assert claims["iss"] == provider.issuer and claims["aud"] == "wiki" and claims["preferred_username"] == "admin"
    assert claims["groups"] == ["staff"] and claims["exp"] - claims["iat"] == 60
    # Header names with underscores (read as dashes by CGI-style stacks) are dropped.
    r = provider.browser.get(provider.url + "/wiki/u", headers={"X_Forwarded_User": "root", "Remote_User": "root"}, timeout=10)
    assert not any("_" in k for k in r.json()["headers"]), r.json()["headers"]
    # The app cannot plant Gatehouse's cookies or a site-wide service worker.
    r = provider.browser.get(provider.url + "/wiki/evil", timeout=10)
    assert r.status_code == 200 and "Service-Worker-Allowed" not in r.headers
    assert r.raw.headers.getlist("Set-Cookie") == ["app_pref=1; Path=/wiki/"]
    # Dot-segments and encoded slashes never reach an app.
    import http.client
    for path in ["/wiki/../oauth2/jwks", "/wiki/%2e%2e/x", "/wiki/a%2fb", "/wiki/./x"]:
        conn = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)  # sends the path as is
        conn.request("GET", path, headers={"Cookie": "gatehouse_session=" + provider.browser.cookies["gatehouse_session"]})
        status = conn.getresponse().status
        conn.close()
        assert status == 400, (path, status)
    posted = provider.browser.post(provider.url + "/wiki/form", data=b"x" * 100000, timeout=10).json()
    assert posted["method"] == "POST" and len(posted["body"]) == 100000
    assert "proxy.allowed" in provider.audit_codes()

    # Signed out, or denied by the policy: the upstream never sees the request.
    before = len(Echo.seen)
    r = requests.get(provider.url + "/wiki/page", headers=forged, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/signin?return_to=%2Fwiki%2Fpage"
    bob = provider.member("bob", "bob@example.org")
    assert bob.get(provider.url + "/wiki/page", headers=forged, timeout=10).status_code == 403
    assert len(Echo.seen) == before

    # An app on its own host name: one round trip through Gatehouse hands it a ticket.
    host = {"Host": f"docs.localhost:{provider.server.port}"}
    r = requests.get(provider.url + "/guide", headers=host, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].startswith(provider.issuer + "/oauth2/proxy/start?app=docs")
    start = provider.browser.get(provider.url + urlsplit(r.headers["Location"]).path + "?" + urlsplit(r.headers["Location"]).query, allow_redirects=False, timeout=10)
    assert start.status_code == 303 and start.headers["Location"].startswith(f"http://docs.localhost:{provider.server.port}/.gatehouse/callback?ticket=")
    callback = urlsplit(start.headers["Location"])
    r = requests.get(provider.url + callback.path + "?" + callback.query, headers=host, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/guide"
    ticket = r.cookies["gatehouse_proxy"]
    again = requests.get(provider.url + callback.path + "?" + callback.query, headers=host, allow_redirects=False, timeout=10)
    assert again.status_code == 400  # the handoff works once
    r = requests.get(provider.url + "/guide", headers={**host, **forged}, cookies={"gatehouse_proxy": ticket}, timeout=10)
    assert r.status_code == 200 and jwt.decode(r.json()["headers"]["x-gatehouse-assertion"], provider.keys())["aud"] == "docs"
    assert "gatehouse_proxy" not in r.json()["headers"].get("cookie", "")
    # `rd` is a path on the app host, never another site.
    for rd in ["//evil.example/", "/\\evil.example", "/\t/evil.example", "https://evil.example/"]:
        start = provider.browser.get(provider.url + "/oauth2/proxy/start?" + urlencode({"app": "docs", "rd": rd}), allow_redirects=False, timeout=10)
        assert start.status_code == 303 and start.headers["Location"].endswith("&rd=%2F"), (rd, start.headers["Location"])
    tampered = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
    assert requests.get(provider.url + "/guide", headers=host, cookies={"gatehouse_proxy": tampered}, allow_redirects=False, timeout=10).status_code == 303


def test_websockets_pass_through_the_proxy_for_allowed_users_only(provider):
    import asyncio
    from websockets.asyncio.server import serve
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    seen = {}
    port = free_port()

    async def echo(ws):
        seen["headers"] = dict(ws.request.headers)
        seen["raw"] = list(ws.request.headers.raw_items())
        async for message in ws:
            await ws.send(message if isinstance(message, bytes) else "echo:" + message)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = loop.create_future()

    async def main():
        async with serve(echo, "127.0.0.1", port):
            ready.set()
            await stop

    runner = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    runner.start()
    assert ready.wait(10)
    provider.apply(provider.policy + f'\napp chat {{ upstream = "http://127.0.0.1:{port}" path = "/chat/" share_origin = true }}\n'
                                      'allow app chat-staff { who = [staff] apps = [chat] }\n')
    cookie = "gatehouse_session=" + provider.browser.cookies["gatehouse_session"] + "; theme=dark"
    with connect(f"ws://127.0.0.1:{provider.server.port}/chat/room?x=1", additional_headers={"Cookie": cookie, "X-Forwarded-User": "root"}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo:hello"
        ws.send(b"\x00\x01" * 40000)
        assert ws.recv(timeout=10) == b"\x00\x01" * 40000
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    claims = jwt.decode(headers["x-gatehouse-assertion"], provider.keys())
    assert claims["aud"] == "chat" and claims["preferred_username"] == "admin"
    assert "x-forwarded-user" not in headers and "gatehouse_session" not in headers.get("cookie", "") and "theme=dark" in headers["cookie"]

    # An open connection lives only as long as the access: offboarding closes it within a second or two.
    carol = provider.member("carol", "carol@example.org")
    with connect(f"ws://127.0.0.1:{provider.server.port}/chat/live", additional_headers={"Cookie": "gatehouse_session=" + carol.cookies["gatehouse_session"]}) as ws:
        ws.send("still here?")
        assert ws.recv(timeout=10) == "echo:still here?"
        assert gatehouse("admin", "offboard", "carol", "--data-dir", provider.data).returncode == 0
        started = time.monotonic()
        from websockets.exceptions import ConnectionClosed
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 10:
                ws.send("ping")
                ws.recv(timeout=1)
        assert time.monotonic() - started < 3

    # The upstream got exactly one Origin in the handshake.
    assert [k.lower() for k in seen["headers"]].count("origin") <= 1 and sum(1 for k, _ in seen["raw"] if k.lower() == "origin") == 1, seen["raw"]

    # A page on another origin cannot open the socket with the user's cookie.
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{provider.server.port}/chat/room", additional_headers={"Cookie": cookie, "Origin": "https://evil.example"})

    # Dot-segments and encoded dots or slashes are not upgraded under chat's rule (the same 400
    # as over plain HTTP), and the upstream never sees the handshake.
    seen.clear()
    for path in ["/chat/../secret/ws", "/chat/%2e%2e/secret/ws", "/chat/%2E%2E/secret/ws", "/chat/.%2e/secret/ws", "/chat/a%2fb", "/chat/./ws", "/chat/..;x/secret/ws"]:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{provider.server.port}{path}", additional_headers={"Cookie": cookie})
        assert refused.value.response.status_code == 400, (path, refused.value.response.status_code)
    assert seen == {}

    # Signed out or denied: no upgrade (the server answers the handshake with an error status),
    # and the upstream never sees a handshake.
    seen.clear()
    bob = provider.member("bob", "bob@example.org")
    for headers in [{}, {"Cookie": "gatehouse_session=" + bob.cookies["gatehouse_session"]}]:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{provider.server.port}/chat/room", additional_headers=headers)
        assert refused.value.response.status_code in (303, 400, 403)
    assert seen == {}
    assert provider.audit_codes().count("oidc.denied") >= 1
    loop.call_soon_threadsafe(stop.set_result, None)
    runner.join(10)
