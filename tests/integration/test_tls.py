"""HTTPS with a certificate from files; TLS is what makes a non-loopback listener acceptable."""
import datetime
import ipaddress

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Server, free_port


def make_cert(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_https_on_loopback(servers, tmp_path):
    cert, key = make_cert(tmp_path)
    s = servers(tmp_path / "d", "--tls-cert", str(cert), "--tls-key", str(key), scheme="https")
    s.start(verify=str(cert))
    r = requests.post(s.url + "/graphql", json={"query": "{ serverInfo { publicUrl } }"}, verify=str(cert))
    assert r.json()["data"]["serverInfo"]["publicUrl"] == f"https://localhost:{s.port}"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{s.port}/healthz", timeout=2)
    assert s.stop() == 0


def test_tls_allows_a_wildcard_listener_with_an_explicit_public_url(servers, tmp_path):
    cert, key = make_cert(tmp_path)
    port = free_port()
    s = servers(tmp_path / "d", "--tls-cert", str(cert), "--tls-key", str(key), "--public-url", "https://gatehouse.example.org", port=port, scheme="https")
    s.args[s.args.index("--listen") + 1] = f"0.0.0.0:{port}"
    s.start(verify=False)
    assert s.stop() == 0


def test_unreadable_certificate_is_refused(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    s = Server(tmp_path / "d", "--tls-cert", str(bad), "--tls-key", str(bad))
    assert s.run_to_exit() == 1
    assert "tls.cert: cannot read a PEM certificate chain" in s.stderr


def test_over_https_the_session_cookie_is_host_prefixed_and_nothing_else_signs_in(servers, tmp_path):
    """`__Host-` cookies cannot be set by a sibling host, with a Domain, or for a narrower path:
    over HTTPS the session is one, and a plain-named cookie (which a host-mode app on a
    subdomain could plant) signs nobody in. A request carrying the session cookie twice is
    treated as signed out."""
    from test_passkeys import Authenticator, bootstrap_token
    cert, key = make_cert(tmp_path)
    s = servers(tmp_path / "d", "--tls-cert", str(cert), "--tls-key", str(key), scheme="https")
    s.start(verify=str(cert))
    token = bootstrap_token(s)
    admin = Authenticator()
    r = requests.post(s.url + "/api/webauthn/registration/options", json={"token": token}, verify=str(cert), timeout=10)
    started = r.json()
    credential = admin.create(started["publicKey"], f"https://localhost:{s.port}")
    r = requests.post(s.url + "/api/webauthn/registration/verify", json={"ceremony": started["ceremony"], "credential": credential}, verify=str(cert), timeout=10)
    assert r.status_code == 201, r.text
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-gatehouse_session=") and "; Secure" in set_cookie and "; Path=/" in set_cookie and "Domain" not in set_cookie, set_cookie
    session = set_cookie.split(";")[0].split("=", 1)[1]
    get = lambda cookie: requests.get(s.url + "/api/session", headers={"Cookie": cookie}, verify=str(cert), timeout=10).status_code
    assert get(f"__Host-gatehouse_session={session}") == 200
    assert get(f"gatehouse_session={session}") == 401
    assert get(f"__Host-gatehouse_session={session}; __Host-gatehouse_session=planted") == 401
    assert get(f"__Host-gatehouse_session=planted; __Host-gatehouse_session={session}") == 401
    assert s.stop() == 0


def test_a_duplicated_session_cookie_signs_nobody_in(servers, tmp_path):
    from test_passkeys import Authenticator, bootstrap_token, enroll
    s = servers(tmp_path / "d").start()
    r, _, _ = enroll(s, bootstrap_token(s), Authenticator())
    session = r.cookies["gatehouse_session"]
    get = lambda cookie: requests.get(s.url + "/api/session", headers={"Cookie": cookie}, timeout=10).status_code
    assert get(f"gatehouse_session={session}") == 200
    assert get(f"gatehouse_session={session}; gatehouse_session=planted") == 401
    assert get(f"gatehouse_session=planted; theme=dark; gatehouse_session={session}") == 401
    assert get(f"theme=dark; gatehouse_session={session}") == 200
