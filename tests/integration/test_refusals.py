"""Every refusal of `gatehouse serve`: one clear line naming the cause, exit 1, nothing listening,
and existing key material untouched."""
import base64
import hashlib
import os
import socket
import sqlite3
import subprocess

import pytest

from conftest import Server


def refuse(data_dir, *args, env=None, port=None):
    s = Server(data_dir, *args, env=env, port=port)
    code = s.run_to_exit()
    errors = [line for line in s.stderr.splitlines() if line.startswith("gatehouse: error: ")]
    assert code == 1, (code, s.stderr)
    assert len(errors) == 1, s.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", s.port)) != 0, "nothing may listen after a refusal"
    return errors[0][len("gatehouse: error: "):]


def fingerprint(data):
    state = [(data / "root.key").read_bytes()] if (data / "root.key").exists() else []
    db = sqlite3.connect(data / "gatehouse.sqlite")
    state += db.execute("SELECT purpose, public_key, sealed_private_key FROM sealed_keys ORDER BY purpose").fetchall()
    return hashlib.sha256(repr(state).encode()).hexdigest()


@pytest.fixture
def initialized(tmp_path):
    data = tmp_path / "data"
    s = Server(data).start()
    s.stop()
    return data


def test_wrong_root_key(initialized, tmp_path):
    before = fingerprint(initialized)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    os.chmod(other, 0o600)
    msg = refuse(initialized, env={"GATEHOUSE_ROOT_KEY_FILE": str(other)})
    assert "root key does not match" in msg
    assert fingerprint(initialized) == before


def test_missing_root_key_is_not_replaced(initialized):
    key = (initialized / "root.key").read_bytes()
    os.remove(initialized / "root.key")
    msg = refuse(initialized)
    assert "root key file" in msg and "is missing but the store holds sealed keys" in msg
    assert not (initialized / "root.key").exists()
    (initialized / "root.key").write_bytes(key)
    os.chmod(initialized / "root.key", 0o600)
    Server(initialized).start().stop()


@pytest.mark.parametrize("content", [b"", b"short", os.urandom(31), os.urandom(33), os.urandom(64)])
def test_malformed_root_key_file(initialized, content):
    (initialized / "root.key").write_bytes(content)
    msg = refuse(initialized)
    assert f"must hold exactly 32 bytes, found {len(content)}" in msg


def test_root_key_readable_by_others(initialized):
    os.chmod(initialized / "root.key", 0o644)
    assert "is accessible to group or others (mode 644); chmod 600 it" in refuse(initialized)


def test_world_writable_data_dir(tmp_path):
    data = tmp_path / "open"
    data.mkdir()
    os.chmod(data, 0o777)
    assert "is writable by group or others (mode 777); chmod 700 it" in refuse(data)


def test_two_servers_started_at_once_on_one_data_dir(tmp_path):
    a, b = Server(tmp_path / "data"), Server(tmp_path / "data")
    a.start(wait=False)
    b.start(wait=False)
    import time
    time.sleep(3)
    running = [s for s in (a, b) if s.proc.poll() is None]
    try:
        assert len(running) == 1
        loser = a if running[0] is b else b
        loser.collect()
        assert "another gatehouse server is already running with this data dir" in loser.stderr
    finally:
        for s in (a, b):
            s.stop()


def test_corrupted_key_blob(initialized):
    db = sqlite3.connect(initialized / "gatehouse.sqlite")
    (blob,) = db.execute("SELECT sealed_private_key FROM sealed_keys WHERE purpose = 'ssh-user-ca'").fetchone()
    raw = bytearray(base64.b64decode(blob))
    raw[20] ^= 1
    db.execute("UPDATE sealed_keys SET sealed_private_key = ? WHERE purpose = 'ssh-user-ca'", (base64.b64encode(raw).decode(),))
    db.commit()
    before = fingerprint(initialized)
    msg = refuse(initialized)
    assert msg == "sealed ssh-user-ca key does not open under this root key (corrupted or tampered)"
    assert fingerprint(initialized) == before


def test_tampered_public_key(initialized):
    db = sqlite3.connect(initialized / "gatehouse.sqlite")
    db.execute("UPDATE sealed_keys SET public_key = ? WHERE purpose = 'audit-signing'", (base64.b64encode(b"\x00" * 32).decode(),))
    db.commit()
    assert "audit-signing key does not match its public key" in refuse(initialized)


def test_unwritable_data_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=700", "tmpfs", str(ro)]).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        assert "is not writable: Read-only file system" in refuse(ro)
        assert "cannot create data dir" in refuse(ro / "sub")
    finally:
        subprocess.run(["umount", str(ro)])


def test_data_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert "exists and is not a directory" in refuse(f)


@pytest.mark.parametrize("text,expected", [
    ('listen = "127.0.0.1:8080"\nlisten2 = 1\n', "gatehouse.toml:2: unknown key 'listen2'"),
    ('# ok\nlisten = 127.0.0.1\n', "gatehouse.toml:2:10: only whole numbers are supported"),
    ('[tls]\ncert = "/x"\n', "gatehouse.toml:2: tls.cert: is set but tls.key is not"),
    ('log_format = "xml"\n', "gatehouse.toml:1: log_format: must be 'text' or 'json'"),
    ('listen = "0.0.0.0:8080"\n', "gatehouse.toml:1: listen: refusing to serve plain HTTP on 0.0.0.0:8080"),
    ('data_dir = "x"\ndata_dir = "y"\n', "gatehouse.toml:2:1: key 'data_dir' is defined twice"),
    ('a = "\xff"\n', "gatehouse.toml:1: file is not valid UTF-8"),
    ('ssh_listen = "nowhere"\n', "gatehouse.toml:1: ssh_listen:"),
    ('listen = "127.0.0.1:8080"\nssh_listen = "127.0.0.1:8080"\n', "gatehouse.toml:2: ssh_listen: must differ from listen and mtls_listen"),
])
def test_malformed_config(tmp_path, text, expected):
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_bytes(text.encode("latin-1"))
    s = Server(tmp_path / "data", "--config", str(cfg))
    s.args = [a for a in s.args if a not in ("--listen", "--ssh-listen") and not a.startswith("127.0.0.1:")]
    code = s.run_to_exit()
    assert code == 1
    assert s.stderr.strip().startswith("gatehouse: error: ") and expected in s.stderr, s.stderr
    # Nothing was created for a configuration that was refused.
    assert not (tmp_path / "data").exists()


def test_config_file_missing(tmp_path):
    assert "cannot read config file" in refuse(tmp_path / "d", "--config", str(tmp_path / "nope.toml"))


def test_plain_http_on_a_public_address(tmp_path):
    s = Server(tmp_path / "d")
    s.args[s.args.index("--listen") + 1] = "0.0.0.0:18080"
    assert s.run_to_exit() == 1
    assert "refusing to serve plain HTTP on 0.0.0.0:18080" in s.stderr


def test_unreachable_database(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    msg = refuse(tmp_path / "d", "--database", f"postgres://gh:secret@127.0.0.1:{port}/gatehouse?sslmode=disable")
    assert msg.startswith(f"cannot reach PostgreSQL at postgres://gh:***@127.0.0.1:{port}/gatehouse")
    assert "secret" not in msg


def test_bad_database_url(tmp_path):
    assert "database must be postgres://" in refuse(tmp_path / "d", "--database", "mysql://x")
    assert "sslmode 'sometimes'" in refuse(tmp_path / "d", "--database", "postgres://u@127.0.0.1/x?sslmode=sometimes")


def test_second_server_on_the_same_data_dir(servers, tmp_path):
    first = servers(tmp_path / "data").start()
    msg = refuse(tmp_path / "data")
    assert "another gatehouse server is already running with this data dir" in msg
    assert first.proc.poll() is None


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = Server(tmp_path / "d", port=port)
        assert s.run_to_exit() == 1
        assert "address already in use" in s.stderr, s.stderr
