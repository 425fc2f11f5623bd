"""Passkey enrollment and sign-in over HTTP, with independent peers: python-fido2 (Yubico)
parses Gatehouse's options and encodes the authenticator's side (CBOR, COSE keys, authenticator
data, client data), cryptography signs; soft-webauthn, a third-party software authenticator
that does not verify its user, is refused. Then the negative battery over the wire."""
import base64
import hashlib
import json
import os
import re
import select

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
import fido2.features
from fido2.cose import ES256
from fido2.webauthn import (AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData,
                            PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions, UserVerificationRequirement)

from conftest import gatehouse

# python-fido2's WebAuthn Level 3 JSON mapping: from_dict() reads base64url strings, the form
# Gatehouse sends.
fido2.features.webauthn_json_mapping.enabled = True

UP, UV, AT = 0x01, 0x04, 0x40


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Authenticator:
    """A passkey on a software authenticator, encoded with python-fido2's own classes."""

    def __init__(self, rp_id="localhost"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = hashlib.sha256(self.key.public_key().public_numbers().x.to_bytes(32, "big")).digest()[:20]
        self.rp_id = rp_id
        self.counter = 0
        self.user_handle = None

    def create(self, options, origin, flags=UP | UV):
        opts = PublicKeyCredentialCreationOptions.from_dict(options)
        self.user_handle = opts.user.id
        client = CollectedClientData.create("webauthn.create", opts.challenge, origin)
        auth = AuthenticatorData.create(hashlib.sha256(self.rp_id.encode()).digest(), flags | AT, self.counter,
                                        AttestedCredentialData.create(b"\0" * 16, self.credential_id, ES256.from_cryptography_key(self.key.public_key())))
        att = AttestationObject.create("none", auth, {})
        cid = b64u(self.credential_id)
        return {"id": cid, "rawId": cid, "type": "public-key",
                "response": {"clientDataJSON": b64u(bytes(client)), "attestationObject": b64u(bytes(att)), "transports": ["internal"]},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}

    def get(self, options, origin, flags=UP | UV, counter=None, user_handle=True):
        opts = PublicKeyCredentialRequestOptions.from_dict(options)
        self.counter = self.counter + 1 if counter is None else counter
        client = CollectedClientData.create("webauthn.get", opts.challenge, origin)
        auth = AuthenticatorData.create(hashlib.sha256(self.rp_id.encode()).digest(), flags, self.counter)
        sig = self.key.sign(bytes(auth) + hashlib.sha256(bytes(client)).digest(), ec.ECDSA(hashes.SHA256()))
        cid = b64u(self.credential_id)
        response = {"clientDataJSON": b64u(bytes(client)), "authenticatorData": b64u(bytes(auth)), "signature": b64u(sig)}
        if user_handle:
            response["userHandle"] = b64u(self.user_handle)
        return {"id": cid, "rawId": cid, "type": "public-key", "response": response, "clientExtensionResults": {}}


def bootstrap_token(server):
    """The one-time link `gatehouse serve` prints on first start."""
    # Raw reads: a text-mode readline would buffer ahead and hide the rest from select().
    fd = server.proc.stdout.fileno()
    buffered = b""
    while not re.search(rb"token=[A-Za-z0-9_-]{43}", buffered):
        ready, _, _ = select.select([fd], [], [], 10)
        assert ready, "no enrollment link printed"
        buffered += os.read(fd, 4096)
    return re.search(rb"token=([A-Za-z0-9_-]{43})", buffered).group(1).decode()


def post(server, path, body, cookies=None):
    return requests.post(server.url + path, json=body, cookies=cookies, timeout=10)


def origin(server):
    return f"http://localhost:{server.port}"


@pytest.fixture
def server(servers, tmp_path):
    return servers(tmp_path / "data").start()


def enroll(server, token, authenticator, flags=UP | UV):
    r = post(server, "/api/webauthn/registration/options", {"token": token})
    assert r.status_code == 200, r.text
    started = r.json()
    credential = authenticator.create(started["publicKey"], origin(server), flags=flags)
    return post(server, "/api/webauthn/registration/verify", {"ceremony": started["ceremony"], "credential": credential}), started, credential


def sign_in(server, authenticator, username=None, **kwargs):
    r = post(server, "/api/webauthn/authentication/options", {"username": username} if username else {})
    assert r.status_code == 200, r.text
    started = r.json()
    assertion = authenticator.get(started["publicKey"], origin(server), **kwargs)
    return post(server, "/api/webauthn/authentication/verify", {"ceremony": started["ceremony"], "credential": assertion}), started


def test_enroll_from_the_bootstrap_link_and_sign_in_with_independent_peers(server):
    token = bootstrap_token(server)
    passkey = Authenticator()
    r, started, credential = enroll(server, token, passkey)
    assert r.status_code == 201, r.text
    # python-fido2 accepted Gatehouse's options; check what they asked for.
    opts = PublicKeyCredentialCreationOptions.from_dict(started["publicKey"])
    assert opts.rp.id == "localhost" and opts.user.name == "admin" and len(opts.challenge) == 32
    assert opts.authenticator_selection.user_verification == UserVerificationRequirement.REQUIRED
    assert [p.alg for p in opts.pub_key_cred_params] == [-7, -8, -257]
    cookie = r.cookies.get("gatehouse_session")
    assert cookie and len(unb64u(cookie)) == 32
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie  # plain-HTTP loopback
    me = requests.get(server.url + "/api/session", cookies={"gatehouse_session": cookie}, timeout=10).json()
    assert me["username"] == "admin" and me["role"] == "admin"

    # The link and the ceremony each work once.
    again = post(server, "/api/webauthn/registration/verify", {"ceremony": started["ceremony"], "credential": credential})
    assert again.status_code == 400 and again.json()["error"]["code"] == "webauthn.challenge_mismatch"
    reused = post(server, "/api/webauthn/registration/options", {"token": token})
    assert reused.status_code == 404 and "not valid" in reused.json()["error"]["message"]

    # Sign in by name, then with a discoverable credential (no name at all).
    r, started = sign_in(server, passkey, username="admin")
    assert r.status_code == 200, r.text
    assert [c["id"] for c in started["publicKey"]["allowCredentials"]] == [b64u(passkey.credential_id)]
    r, started = sign_in(server, passkey)
    assert r.status_code == 200, r.text
    assert started["publicKey"]["allowCredentials"] == []
    assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": "x" * 43}, timeout=10).status_code == 401


def test_negative_battery_over_the_wire(server, tmp_path):
    token = bootstrap_token(server)
    passkey = Authenticator()
    assert enroll(server, token, passkey)[0].status_code == 201

    def refused(response, code, status=400):
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code

    refused(sign_in(server, passkey, flags=UP)[0], "webauthn.user_not_verified")
    refused(sign_in(server, passkey, flags=UV)[0], "webauthn.user_not_present")
    wrong = Authenticator(rp_id="evil.example")
    wrong.credential_id, wrong.key, wrong.user_handle = passkey.credential_id, passkey.key, passkey.user_handle
    refused(sign_in(server, wrong)[0], "webauthn.rp_id_mismatch")
    # Counter regression: a clone replays an older count.
    assert sign_in(server, passkey, counter=10)[0].status_code == 200
    refused(sign_in(server, passkey, counter=10)[0], "webauthn.counter_regression")
    refused(sign_in(server, passkey, counter=3)[0], "webauthn.counter_regression")
    # Someone else's key claiming this credential ID.
    thief = Authenticator()
    thief.credential_id, thief.user_handle, thief.counter = passkey.credential_id, passkey.user_handle, 100
    refused(sign_in(server, thief)[0], "webauthn.bad_signature")
    # An unknown passkey, and a wrong origin.
    refused(sign_in(server, _unknown(passkey))[0], "webauthn.credential_not_allowed")
    r = post(server, "/api/webauthn/authentication/options", {})
    started = r.json()
    assertion = passkey.get(started["publicKey"], "https://phish.example")
    refused(post(server, "/api/webauthn/authentication/verify", {"ceremony": started["ceremony"], "credential": assertion}), "webauthn.origin_mismatch")

    # No enumeration: an unknown name gets the same shape, stable per name.
    known = post(server, "/api/webauthn/authentication/options", {"username": "admin"}).json()["publicKey"]
    ghost1 = post(server, "/api/webauthn/authentication/options", {"username": "ghost"}).json()["publicKey"]
    ghost2 = post(server, "/api/webauthn/authentication/options", {"username": "ghost"}).json()["publicKey"]
    assert set(known) == set(ghost1) and len(ghost1["allowCredentials"]) == 1
    assert ghost1["allowCredentials"] == ghost2["allowCredentials"] and ghost1["challenge"] != ghost2["challenge"]

    # A third-party software authenticator that does not verify its user is refused.
    from soft_webauthn import SoftWebauthnDevice
    invite = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", "--data-dir", server.data_dir)
    carol_token = invite.stdout.split("token=")[1].split()[0]
    started = post(server, "/api/webauthn/registration/options", {"token": carol_token}).json()
    pk = started["publicKey"]
    device = SoftWebauthnDevice()
    created = device.create({"publicKey": {**pk, "challenge": unb64u(pk["challenge"]), "user": {**pk["user"], "id": unb64u(pk["user"]["id"])}}}, origin(server))
    credential = {"id": created["id"].decode().rstrip("="), "rawId": b64u(created["rawId"]), "type": "public-key",
                  "response": {"clientDataJSON": b64u(created["response"]["clientDataJSON"]), "attestationObject": b64u(created["response"]["attestationObject"])}}
    refused(post(server, "/api/webauthn/registration/verify", {"ceremony": started["ceremony"], "credential": credential}), "webauthn.user_not_verified")

    # Malformed, hostile and oversized bodies: a clear error, nothing written.
    for path in ["/api/webauthn/registration/verify", "/api/webauthn/authentication/verify"]:
        for body, code in [(b"", "input.invalid"), (b"[]", "input.invalid"), (b'{"ceremony":"x"}', "input.invalid"),
                           (b'{"ceremony":"x","credential":{},"extra":1}', "input.invalid"),
                           (b'{"ceremony":"x","credential":{"type":"public-key"}}', "webauthn.challenge_mismatch")]:
            r = requests.post(server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=10)
            assert r.status_code == 400 and r.json()["error"]["code"] == code, (path, body, r.text)
        r = requests.post(server.url + path, data=b'{"ceremony":"' + b"a" * 200_000 + b'"}', headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 413
    r = post(server, "/api/webauthn/registration/options", {"token": "x" * 5000})
    assert r.status_code == 404
    r = post(server, "/api/webauthn/authentication/options", {"username": "Robert'); DROP TABLE users;--"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "input.invalid"

    # Everything above is in the audit log, which still verifies.
    tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "200", "--data-dir", server.data_dir).stdout.splitlines()]
    codes = [e["code"] for e in tail]
    for code in ["user.enrolled", "passkey.registered", "signin.succeeded", "signin.failed", "passkey.clone_suspected", "enrollment.failed"]:
        assert code in codes, code
    failed = [e for e in tail if e["code"] == "signin.failed"]
    assert all(e["outcome"] == "denied" for e in failed)
    # The peer address is recorded with every sign-in outcome.
    assert all(e.get("source") == "127.0.0.1" for e in failed + [e for e in tail if e["code"] == "signin.succeeded"])
    assert {e["reason"] for e in failed} >= {"webauthn.user_not_verified", "webauthn.rp_id_mismatch", "webauthn.bad_signature", "webauthn.credential_not_allowed"}
    status = json.loads(gatehouse("admin", "status", "--json", "--data-dir", server.data_dir).stdout)
    assert status["users"] == 1  # carol's refused enrollment created nothing
    assert gatehouse("audit", "verify", "--data-dir", server.data_dir).returncode == 0


def _unknown(passkey):
    other = Authenticator()
    other.user_handle = passkey.user_handle
    return other


def test_sessions_sign_out_and_offboarding_cut_access_at_once(server):
    admin = Authenticator()
    r, _, _ = enroll(server, bootstrap_token(server), admin)
    assert r.status_code == 201
    first = r.cookies["gatehouse_session"]
    r, _ = sign_in(server, admin)
    second = r.cookies["gatehouse_session"]

    # Two live sessions; the owner sees both and can end the other one.
    listing = requests.get(server.url + "/api/sessions", cookies={"gatehouse_session": second}, timeout=10).json()
    assert len(listing) == 2 and [s["current"] for s in listing].count(True) == 1
    other = next(s["id"] for s in listing if not s["current"])
    r = requests.post(server.url + "/api/sessions/revoke", json={"id": other}, cookies={"gatehouse_session": second}, timeout=10)
    assert r.status_code == 204
    assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": first}, timeout=10).status_code == 401

    # Hostile input on the account endpoints: a clear error, nothing ended or removed.
    jar = {"gatehouse_session": second}
    for path, body, code in [("/api/sessions/revoke", {"id": 5}, "input.invalid"), ("/api/sessions/revoke", {"id": "x" * 100}, "input.invalid"),
                             ("/api/sessions/revoke", {"id": "deadbeefdeadbeef"}, "not_found"), ("/api/sessions/revoke", {"id": other, "all": True}, "input.invalid"),
                             ("/api/passkeys/remove", {"id": "!!"}, "input.invalid"), ("/api/passkeys/remove", {"id": b64u(b"nope")}, "not_found"),
                             ("/api/passkeys/remove", {}, "input.invalid")]:
        r = requests.post(server.url + path, json=body, cookies=jar, timeout=10)
        assert r.json()["error"]["code"] == code, (path, body, r.text)
    r = requests.post(server.url + "/api/passkeys/remove", json={"id": b64u(admin.credential_id)}, cookies=jar, timeout=10)
    assert r.status_code == 409 and "only passkey" in r.json()["error"]["message"]
    assert requests.post(server.url + "/api/sessions/revoke", json={"id": other}, timeout=10).status_code == 401
    assert requests.get(server.url + "/api/session", cookies=jar, timeout=10).status_code == 200

    # Sign-out needs a JSON request (no cross-site form can send one) and clears the cookie.
    r = requests.post(server.url + "/api/session/signout", data="x", headers={"Content-Type": "text/plain"}, cookies={"gatehouse_session": second}, timeout=10)
    assert r.status_code == 400
    r = requests.post(server.url + "/api/session/signout", json={}, cookies={"gatehouse_session": second}, timeout=10)
    assert r.status_code == 204 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": second}, timeout=10).status_code == 401

    # Bob enrolls and signs in twice; offboarding ends both sessions and any further sign-in.
    invite = gatehouse("admin", "invite", "bob", "--email", "bob@example.org", "--data-dir", server.data_dir)
    bob = Authenticator()
    r, _, _ = enroll(server, invite.stdout.split("token=")[1].split()[0], bob)
    assert r.status_code == 201
    bob_sessions = [r.cookies["gatehouse_session"], sign_in(server, bob, username="bob")[0].cookies["gatehouse_session"]]
    r = gatehouse("admin", "offboard", "bob", "--reason", "left the company", "--data-dir", server.data_dir)
    assert r.returncode == 0 and "ended 2 sessions" in r.stdout, r.stdout + r.stderr
    for cookie in bob_sessions:
        assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": cookie}, timeout=10).status_code == 401
    r, _ = sign_in(server, bob)
    assert r.status_code == 400 and r.json()["error"]["code"] == "webauthn.credential_not_allowed"
    r = gatehouse("admin", "offboard", "bob", "--data-dir", server.data_dir)
    assert r.returncode == 1 and "already offboarded" in r.stderr
    r = gatehouse("admin", "offboard", "admin", "--data-dir", server.data_dir)
    assert r.returncode == 1 and "last active administrator" in r.stderr
    r = gatehouse("admin", "offboard", "nobody", "--data-dir", server.data_dir)
    assert r.returncode == 1 and "there is no user nobody" in r.stderr

    tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "100", "--data-dir", server.data_dir).stdout.splitlines()]
    offboarded = [e for e in tail if e["code"] == "user.offboarded"]
    assert len(offboarded) == 1 and offboarded[0]["details"]["sessions"] == "2" and offboarded[0]["reason"] == "left the company"
    assert {"session.revoked", "signin.signed_out"} <= {e["code"] for e in tail}


def test_sign_in_is_rate_limited_per_account_and_per_source(server):
    for _ in range(10):
        assert post(server, "/api/webauthn/authentication/options", {"username": "alice"}).status_code == 200
    r = post(server, "/api/webauthn/authentication/options", {"username": "alice"})
    assert r.status_code == 429 and "for this account" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    # Unknown and known names are limited alike (no enumeration through the limiter).
    assert post(server, "/api/webauthn/authentication/options", {"username": "bob"}).status_code == 200
    # The source as a whole: 120 a minute.
    codes = [post(server, "/api/webauthn/authentication/options", {}).status_code for _ in range(120)]
    assert codes.count(429) >= 1 and codes[:100].count(429) == 0
    # The bucket refills at 2 a second, so a slow machine may earn a token back between two
    # requests; the limit shows within a short burst, and verification shares it.
    for _ in range(20):
        r = post(server, "/api/webauthn/authentication/verify", {"ceremony": "x", "credential": {}})
        if r.status_code == 429:
            break
        assert r.status_code == 400
    assert r.status_code == 429 and "from your network" in r.json()["error"]["message"] and int(r.headers["Retry-After"]) >= 1
    # Health and pages are not sign-in attempts.
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_recovery_replaces_lost_passkeys_and_ends_their_sessions(server):
    admin = Authenticator()
    assert enroll(server, bootstrap_token(server), admin)[0].status_code == 201
    invite = gatehouse("admin", "invite", "erin", "--email", "erin@example.org", "--data-dir", server.data_dir)
    lost = Authenticator()
    r, _, _ = enroll(server, invite.stdout.split("token=")[1].split()[0], lost)
    assert r.status_code == 201
    old_session = r.cookies["gatehouse_session"]

    r = gatehouse("admin", "recover", "erin", "--data-dir", server.data_dir)
    assert r.returncode == 0 and "replaces every passkey" in r.stdout, r.stderr
    token = r.stdout.split("token=")[1].split()[0]
    # The lost device keeps nothing from the moment the link exists: its session is dead and
    # its passkey signs in no more, before anyone re-enrolls.
    assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": old_session}, timeout=10).status_code == 401
    r, _ = sign_in(server, lost)
    assert r.status_code == 400 and r.json()["error"]["code"] == "webauthn.credential_not_allowed"
    # One pending link at a time; no recovery for people who do not exist.
    assert "already has a pending invitation" in gatehouse("admin", "recover", "erin", "--data-dir", server.data_dir).stderr
    assert "there is no user ghost" in gatehouse("admin", "recover", "ghost", "--data-dir", server.data_dir).stderr

    replacement = Authenticator()
    r, started, _ = enroll(server, token, replacement)
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "erin"
    # Same account (same user handle), new passkey; the lost one and its session are dead.
    assert started["publicKey"]["user"]["name"] == "erin"
    assert requests.get(server.url + "/api/session", cookies={"gatehouse_session": old_session}, timeout=10).status_code == 401
    r, _ = sign_in(server, lost)
    assert r.status_code == 400 and r.json()["error"]["code"] == "webauthn.credential_not_allowed"
    assert sign_in(server, replacement, username="erin")[0].status_code == 200

    tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "50", "--data-dir", server.data_dir).stdout.splitlines()]
    recovered = [e for e in tail if e["code"] == "user.recovered"]
    assert len(recovered) == 1 and recovered[0]["details"]["passkeys_removed"] == "0" and recovered[0]["details"]["sessions_ended"] == "0"
    started_events = [e for e in tail if e["code"] == "user.recovery_started"]
    assert len(started_events) == 1 and started_events[0]["details"]["passkeys_removed"] == "1" and started_events[0]["details"]["sessions"] == "1", started_events
    assert started_events[0]["actor"].startswith("admin-socket")
    kinds = [e["details"].get("kind") for e in tail if e["code"] == "invitation.created"]
    assert "recovery" in kinds
    status = json.loads(gatehouse("admin", "status", "--json", "--data-dir", server.data_dir).stdout)
    assert status["users"] == 2


def _vendor(tmp_path, aaguid):
    """A test authenticator vendor: a root CA and an attestation certificate, made with
    cryptography's X.509 builder (an implementation independent of Gatehouse's)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID, ObjectIdentifier
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Vendor Root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    att_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Vendor"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Test Key")])
    att = (x509.CertificateBuilder().subject_name(subject).issuer_name(root_name).public_key(att_key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
           .not_valid_after(now + datetime.timedelta(days=30)).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"), b"\x04\x10" + aaguid), critical=False)
           .sign(root_key, hashes.SHA256()))
    pem = tmp_path / "roots.pem"
    pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return pem, att_key, att.public_bytes(serialization.Encoding.DER)


def test_hardware_only_mode_requires_an_attestation_chain_to_a_trusted_vendor(servers, tmp_path):
    aaguid = bytes(range(16))
    pem, att_key, att_der = _vendor(tmp_path, aaguid)
    server = servers(tmp_path / "data", "--webauthn-attestation", "attested", "--webauthn-trust-anchors", str(pem),
                     "--webauthn-aaguids", aaguid.hex()).start()
    token = bootstrap_token(server)

    # A passkey without attestation is refused.
    r, started, _ = enroll(server, token, Authenticator())
    assert started["publicKey"]["attestation"] == "direct"
    assert r.status_code == 400 and r.json()["error"]["code"] == "webauthn.attestation_invalid"

    # A packed attestation signed by the vendor's attestation key is accepted.
    class Attested(Authenticator):
        def create(self, options, origin, flags=UP | UV):
            opts = PublicKeyCredentialCreationOptions.from_dict(options)
            self.user_handle = opts.user.id
            client = CollectedClientData.create("webauthn.create", opts.challenge, origin)
            auth = AuthenticatorData.create(hashlib.sha256(b"localhost").digest(), flags | AT, 0,
                                            AttestedCredentialData.create(aaguid, self.credential_id, ES256.from_cryptography_key(self.key.public_key())))
            sig = att_key.sign(bytes(auth) + hashlib.sha256(bytes(client)).digest(), ec.ECDSA(hashes.SHA256()))
            att = AttestationObject.create("packed", auth, {"alg": -7, "sig": sig, "x5c": [att_der]})
            cid = b64u(self.credential_id)
            return {"id": cid, "rawId": cid, "type": "public-key",
                    "response": {"clientDataJSON": b64u(bytes(client)), "attestationObject": b64u(bytes(att))}}

    r, _, _ = enroll(server, token, Attested())
    assert r.status_code == 201, r.text
    tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "20", "--data-dir", server.data_dir).stdout.splitlines()]
    registered = [e for e in tail if e["code"] == "passkey.registered"]
    assert registered[0]["details"]["attestation"] == "packed" and registered[0]["details"]["aaguid"] == aaguid.hex()


def test_hardware_only_mode_refuses_to_start_without_usable_trust_anchors(servers, tmp_path):
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for args, message in [(["--webauthn-attestation", "attested"], "needs webauthn.trust_anchors"),
                          (["--webauthn-attestation", "attested", "--webauthn-trust-anchors", str(tmp_path / "nope.pem")], "cannot read"),
                          (["--webauthn-attestation", "attested", "--webauthn-trust-anchors", str(tmp_path / "junk.pem")], "holds no certificate"),
                          (["--webauthn-attestation", "sometimes"], "must be 'any' or 'attested'")]:
        s = servers(tmp_path / "d", *args)
        assert s.run_to_exit() == 1
        assert message in s.stderr, s.stderr


def test_client_address_comes_from_trusted_proxies_only(servers, tmp_path):
    proxied = servers(tmp_path / "a", "--trusted-proxies", "127.0.0.0/8").start()
    direct = servers(tmp_path / "b").start()
    for server, expected in [(proxied, "203.0.113.9"), (direct, "127.0.0.1")]:
        r = requests.post(server.url + "/api/webauthn/authentication/verify", json={"ceremony": "x", "credential": {"type": "public-key"}},
                          headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}, timeout=10)
        assert r.status_code == 400
        # The refused sign-in never reached a credential, so look at a sign-in attempt that did.
        token = bootstrap_token(server)
        passkey = Authenticator()
        started = requests.post(server.url + "/api/webauthn/registration/options", json={"token": token}, timeout=10).json()
        credential = passkey.create(started["publicKey"], origin(server), flags=UP)
        r = requests.post(server.url + "/api/webauthn/registration/verify", json={"ceremony": started["ceremony"], "credential": credential},
                          headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}, timeout=10)
        assert r.json()["error"]["code"] == "webauthn.user_not_verified"
        tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "5", "--code", "enrollment.failed", "--data-dir", server.data_dir).stdout.splitlines()]
        assert tail and tail[-1]["source"] == expected, tail


def test_invitations_are_listed_revoked_and_resent(server):
    """A lost invitation used to block a person for 72 hours: nothing could list, revoke or
    reissue it, and `admin invite revoke` invited someone called "revoke"."""
    data = ["--data-dir", server.data_dir]
    first = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", "--role", "member", *data)
    assert first.returncode == 0, first.stderr
    old_token = first.stdout.split("token=")[1].split()[0]
    again = gatehouse("admin", "invite", "carol", "--email", "carol@example.org", *data)
    assert again.returncode != 0 and "gatehouse admin invitations resend carol" in again.stderr, again.stderr
    listed = gatehouse("admin", "invitations", "list", "--json", *data)
    rows = json.loads(listed.stdout)
    # The server's own bootstrap link is pending too (no administrator enrolled here yet).
    assert sorted((r["username"], r["kind"], r["state"], r["email"]) for r in rows) == [("admin", "bootstrap", "pending", ""), ("carol", "invite", "pending", "carol@example.org")], rows
    assert "carol\tinvite\tpending" in gatehouse("admin", "invitations", *data).stdout

    # Resend: a new link, the old one dead, same e-mail and role.
    resent = gatehouse("admin", "invitations", "resend", "carol", *data)
    assert resent.returncode == 0 and "previous one no longer works" in resent.stdout, resent.stderr
    new_token = resent.stdout.split("token=")[1].split()[0]
    assert post(server, "/api/webauthn/registration/options", {"token": old_token}).status_code == 404
    assert post(server, "/api/webauthn/registration/options", {"token": new_token}).status_code == 200

    # Revoke: gone from the list, the link dead, audited with the reason.
    revoked = gatehouse("admin", "invitations", "revoke", "carol", "--reason", "sent to the wrong address", *data)
    assert revoked.returncode == 0 and "no longer works" in revoked.stdout, revoked.stderr
    assert post(server, "/api/webauthn/registration/options", {"token": new_token}).status_code == 404
    assert [r["username"] for r in json.loads(gatehouse("admin", "invitations", "list", "--json", *data).stdout)] == ["admin"]
    tail = [json.loads(l) for l in gatehouse("audit", "tail", "-n", "50", *data).stdout.splitlines()]
    reasons = [e.get("reason") for e in tail if e["code"] == "invitation.revoked"]
    assert reasons == ["replaced by a new link (resend)", "sent to the wrong address"], reasons

    # Subcommand words are not user names; hostile or unknown names get a clear error, nothing changes.
    wrong = gatehouse("admin", "invite", "revoke", "--email", "x@example.org", *data)
    assert wrong.returncode != 0 and "did you mean gatehouse admin invitations revoke" in wrong.stderr, wrong.stderr
    for args, message in [(["revoke", "ghost"], "ghost has no pending invitation"), (["resend", "ghost"], "ghost has no pending invitation"),
                          (["revoke", "../etc"], "username must start"), (["revoke", "carol", "--reason", "x" * 501], "longer than 500 bytes")]:
        r = gatehouse("admin", "invitations", *args, *data)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
    assert [r["username"] for r in json.loads(gatehouse("admin", "invitations", "list", "--json", *data).stdout)] == ["admin"]


def test_an_invitation_role_is_the_account_role_and_nothing_else(server):
    """`admin invite zed --role totally-made-up` used to succeed and show the made-up role,
    while access comes from the policy's groups and roles."""
    data = ["--data-dir", server.data_dir]
    r = gatehouse("admin", "invite", "zed", "--email", "zed@example.org", "--role", "totally-made-up", *data)
    assert r.returncode != 0 and "admin or member" in r.stderr and "policy" in r.stderr, r.stderr
    assert "zed" not in gatehouse("admin", "invitations", "list", *data).stdout
    assert gatehouse("admin", "invite", "zed", "--email", "zed@example.org", "--role", "admin", *data).returncode == 0
