"""The audit log end to end: signed checkpoints, proofs, offline bundles checked by an
independent verifier written here from the specs (RFC 9162, C2SP signed-note and
tlog-checkpoint), the tamper battery against a real store, and fail-closed appends."""
import base64
import hashlib
import json
import os
import sqlite3
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import Server, gatehouse


# ---------------------------------------------------------------- independent verifier

def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def open_note(note, vkey):
    name, key_id, key = vkey.split("+", 2)
    raw = base64.b64decode(key)
    assert raw[0] == 1 and len(raw) == 33
    pub = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4].hex() == key_id
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    ok = False
    for line in sigs.strip("\n").split("\n"):
        dash, signer, blob = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(blob)
        if signer == name and blob[:4].hex() == key_id:
            Ed25519PublicKey.from_public_bytes(pub).verify(blob[4:], text.encode())
            ok = True
    assert ok, "no signature from the key"
    origin, size, root = text.split("\n")[:3]
    assert origin == name
    return int(size), base64.b64decode(root)


def path_root(leaf, index, size, path):
    """RFC 9162 2.1.3.2: the root an audit path leads to, or None if the path is malformed."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def independent_verify(bundle, vkey):
    leaves = []
    for i, e in enumerate(bundle["entries"], start=1):
        assert e["seq"] == i and json.loads(e["entry"])["seq"] == i
        leaf = hashlib.sha256(b"\x00" + e["entry"].encode()).digest()
        assert leaf.hex() == e["hash"]
        leaves.append(leaf)
    sizes = []
    for note in bundle["checkpoints"]:
        size, root = open_note(note, vkey)
        assert mth(leaves[:size]) == root, f"checkpoint {size} root mismatch"
        sizes.append(size)
    return len(leaves), sizes


# ---------------------------------------------------------------- helpers

def run(data, *args):
    return gatehouse(*args, "--data-dir", str(data))


def export(data, tmp_path):
    out = tmp_path / "bundle.json"
    r = run(data, "audit", "export", "--out", str(out))
    assert r.returncode == 0, r.stderr
    bundle = json.loads(out.read_text())
    return out, bundle


def verifier_key(data):
    r = run(data, "audit", "checkpoint")
    assert r.returncode == 0, r.stderr
    return r.stderr.strip().split("verifier key: ")[1]


@pytest.fixture
def server(servers, tmp_path):
    s = servers(tmp_path / "data").start()
    for name in ["alice", "bob", "carol", "dave"]:
        r = run(s.data_dir, "admin", "invite", name, "--email", f"{name}@example.org")
        assert r.returncode == 0, r.stderr
    return s


# ---------------------------------------------------------------- tests

def test_checkpoints_proofs_and_an_independent_verifier_agree(server, tmp_path):
    data = server.data_dir
    key = verifier_key(data)
    assert run(data, "audit", "verify").stdout.startswith("audit log verified: 14 entries")
    path, bundle = export(data, tmp_path)
    assert independent_verify(bundle, key)[0] == 14
    r = gatehouse("audit", "verify", "--bundle", str(path), "--key", key)
    assert r.returncode == 0 and "14 entries" in r.stdout, r.stderr

    proof = json.loads(run(data, "audit", "prove", "--entry", "9").stdout)
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert path_root(leaf, 8, proof["size"], [bytes.fromhex(p) for p in proof["proof"]]) == open_note(proof["checkpoint"], key)[1]

    older = min(open_note(n, key)[0] for n in bundle["checkpoints"])
    r = run(data, "audit", "prove", "--consistency", str(older))
    assert "proof verified" in r.stderr and json.loads(r.stdout)["old_size"] == older


def test_bad_cli_input_is_refused(server):
    data = server.data_dir
    for args, message in [
        (["audit", "prove"], "give exactly one of --entry N or --consistency"),
        (["audit", "prove", "--entry", "0"], "entry 0 is not covered"),
        (["audit", "prove", "--entry", "9999"], "is not covered"),
        (["audit", "prove", "--consistency", "3"], "no checkpoint of size 3"),
        (["audit", "verify", "--bundle", "/nonexistent"], "--bundle needs --key"),
        (["audit", "tail", "-n", "0"], "limit must be 1 to 10000"),
    ]:
        r = run(data, *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)


def test_offline_bundle_tamper_battery(server, tmp_path):
    data = server.data_dir
    key = verifier_key(data)
    path, bundle = export(data, tmp_path)

    def verdict(mutate, key=key):
        b = json.loads(json.dumps(bundle))
        mutate(b)
        f = tmp_path / "t.json"
        f.write_text(json.dumps(b))
        r = gatehouse("audit", "verify", "--bundle", str(f), "--key", key)
        assert r.returncode == 1, r.stdout
        return r.stderr

    def edit(b):
        b["entries"][4]["entry"] = b["entries"][4]["entry"].replace('"actor":"admin-socket"', '"actor":"mallory"').replace('"actor":"system"', '"actor":"mallory"')
    assert "entry 5 was altered" in verdict(edit)

    def edit_and_rehash(b):
        edit(b)
        b["entries"][4]["hash"] = hashlib.sha256(b"\x00" + b["entries"][4]["entry"].encode()).hexdigest()
    assert "do not match the signed checkpoint" in verdict(edit_and_rehash)

    assert "entry 3 is missing or out of order" in verdict(lambda b: b["entries"].pop(2))

    def swap(b):
        b["entries"][2], b["entries"][3] = b["entries"][3], b["entries"][2]
    assert "entry 3 is missing or out of order" in verdict(swap)

    def truncate(b):
        del b["entries"][-2:]
    assert "log truncated" in verdict(truncate)

    def forge(b):
        note = b["checkpoints"][-1]
        size = note.split("\n")[1]
        b["checkpoints"][-1] = note.replace(f"\n{size}\n", f"\n{int(size) - 1}\n", 1)
    assert "checkpoint signature does not verify" in verdict(forge)

    other = gatehouse("audit", "verify", "--bundle", str(path), "--key", key.split("+", 2)[0] + "+00000000+" + key.split("+", 2)[2])
    assert other.returncode == 1 and "verifier key ID does not match" in other.stderr

    assert "not a gatehouse audit bundle" in verdict(lambda b: b.clear())


def test_live_tamper_and_rollback_are_detected(server, tmp_path):
    data = server.data_dir
    assert run(data, "audit", "checkpoint").returncode == 0
    db = sqlite3.connect(os.path.join(data, "gatehouse.sqlite"))
    original = db.execute("SELECT actor FROM audit_events WHERE seq = 9").fetchone()[0]
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 9")
    db.commit()
    r = run(data, "audit", "verify")
    assert r.returncode == 1 and "entry 9 was altered" in r.stderr
    # The server also refuses to sign over it.
    r = run(data, "audit", "checkpoint")
    db.execute("UPDATE audit_events SET actor = ? WHERE seq = 9", (original,))
    db.commit()
    assert run(data, "audit", "verify").returncode == 0

    # Roll the database back to an older, internally consistent state: drop the newest entry
    # and every checkpoint that covers it. audit-head, outside the database, still knows.
    last = db.execute("SELECT MAX(seq) FROM audit_events").fetchone()[0]
    db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
    db.execute("DELETE FROM audit_checkpoints WHERE tree_size >= ?", (last,))
    db.commit()
    r = run(data, "audit", "verify")
    assert r.returncode == 1 and "log rolled back" in r.stderr, r.stdout + r.stderr
    # New activity after the rollback: the server refuses to sign a checkpoint that would
    # hide it, and keeps the head it trusts.
    assert run(data, "admin", "invite", "zed", "--email", "z@example.org").returncode == 0
    r = run(data, "audit", "checkpoint")
    assert r.returncode == 1 and "refusing to sign a checkpoint" in r.stderr, r.stdout + r.stderr
    assert run(data, "audit", "verify").returncode == 1


# A read-only remount under a running server is not testable here: Linux refuses to remount a
# file system read-only while SQLite holds its files open for writing (EBUSY). The read-only
# case is covered at start (test_refusals.test_unwritable_data_dir).
@pytest.mark.parametrize("fault", ["full"])
def test_appends_fail_closed_on_a_broken_disk(servers, tmp_path, fault):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=700", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        s = servers(mnt / "data").start()
        assert run(s.data_dir, "admin", "invite", "alice", "--email", "a@example.org").returncode == 0
        if fault == "full":
            subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/filler", "bs=64k"], capture_output=True)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        r = run(s.data_dir, "admin", "invite", "mallory", "--email", "m@example.org")
        assert r.returncode == 1 and r.stderr.startswith("gatehouse: error: "), r.stdout + r.stderr
        if fault == "full":
            os.remove(mnt / "filler")
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        # Nothing of the refused change was kept, and the log still verifies.
        r = run(s.data_dir, "admin", "status", "--json")
        assert json.loads(r.stdout)["pendingInvitations"] == 2
        assert run(s.data_dir, "audit", "verify").returncode == 0
        # And the server works again once the disk does.
        assert run(s.data_dir, "admin", "invite", "mallory", "--email", "m@example.org").returncode == 0
        s.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


class UnixHTTPConnection(__import__("http.client").client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def test_kill_9_under_load_loses_nothing_acknowledged(servers, tmp_path):
    """Writers hammer the admin socket; the server is killed with SIGKILL mid-stream. After a
    restart every acknowledged invitation and its audit event are there, and the log verifies."""
    import signal
    import threading
    import time

    data = tmp_path / "data"
    s = servers(data).start()
    sock = str(data / "admin.sock")
    acknowledged, lock, stop = [], threading.Lock(), threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            name = f"w{w}n{i}"
            i += 1
            try:
                conn = UnixHTTPConnection(sock)
                conn.request("POST", "/v1/invitations", body=json.dumps({"username": name}), headers={"Content-Type": "application/json"})
                if conn.getresponse().status == 201:
                    with lock:
                        acknowledged.append(name)
                conn.close()
            except OSError:
                return  # the server is gone

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > 20, "the load did not get going"

    s2 = servers(data).start()
    db = sqlite3.connect(os.path.join(data, "gatehouse.sqlite"))
    stored = {row[0] for row in db.execute("SELECT username FROM invitations WHERE kind = 'invite'")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged invitations were lost"
    audited = {json.loads(row[0])["username"] for row in db.execute("SELECT details FROM audit_events WHERE code = 'invitation.created'")}
    assert set(acknowledged) <= audited, "an acknowledged invitation has no audit event"
    # And nothing was written without its event, acknowledged or not.
    assert stored <= audited
    r = run(data, "audit", "verify")
    assert r.returncode == 0, r.stderr
    s2.stop()


def test_tail_follow_streams_new_entries_and_never_blocks_shutdown(servers, tmp_path):
    import time
    from conftest import BIN

    data = tmp_path / "data"
    s = servers(data).start()
    follower = subprocess.Popen([BIN, "audit", "tail", "--follow", "-n", "1", "--code", "invitation.created", "--data-dir", str(data)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(follower.stdout.readline())
        assert first["code"] == "invitation.created" and first["details"]["kind"] == "bootstrap"
        for name in ["erin", "frank"]:
            assert run(data, "admin", "invite", name, "--email", f"{name}@example.org").returncode == 0
        import queue
        import threading
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in follower.stdout], daemon=True).start()
        got = [json.loads(lines.get(timeout=10)) for _ in range(2)]
        assert [g["details"]["username"] for g in got] == ["erin", "frank"]
        assert [g["seq"] for g in got] == sorted(g["seq"] for g in got)
        # Stopping the server ends the stream instead of waiting for the follower.
        started = time.time()
        assert s.stop() == 0
        assert time.time() - started < 10
        follower.wait(timeout=10)
    finally:
        follower.kill()

    # Resuming after a sequence number, and filters, also work on a new server.
    s2 = servers(data).start()
    lines = run(data, "audit", "tail", "-n", "100", "--actor", "admin-socket").stdout.splitlines()
    assert [json.loads(l)["details"]["username"] for l in lines] == ["erin", "frank"]
    r = run(data, "audit", "tail", "--code", "no.such.code")
    assert r.returncode == 1 and "unknown event code" in r.stderr
    s2.stop()


def test_partial_export_since_a_time_is_proven_entry_by_entry(server, tmp_path):
    import time
    data = server.data_dir
    time.sleep(1.1)  # the cut below is whole seconds: keep it clear of the fixture's entries
    cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time())) + "Z"
    for name in ["gina", "hank"]:
        assert run(data, "admin", "invite", name, "--email", f"{name}@example.org").returncode == 0
    out = tmp_path / "since.json"
    r = run(data, "audit", "export", "--since", cut, "--out", str(out))
    assert r.returncode == 0, r.stderr
    bundle = json.loads(out.read_text())
    # The window, plus the last entry before it, which shows where the window starts.
    assert [json.loads(e["entry"])["details"]["username"] for e in bundle["entries"]] == ["dave", "gina", "hank"]
    key = verifier_key(data)
    r = gatehouse("audit", "verify", "--bundle", str(out), "--key", key)
    assert r.returncode == 0 and "3 entries proven" in r.stdout, r.stderr

    # Dropping an entry from the window, or its start, is a fault even though every proof holds.
    for drop in (1, 0):
        gap = json.loads(out.read_text())
        del gap["entries"][drop]
        del gap["proofs"][drop]
        f = tmp_path / "gap.json"
        f.write_text(json.dumps(gap))
        r = gatehouse("audit", "verify", "--bundle", str(f), "--key", key)
        assert r.returncode == 1 and "missing or out of order" in r.stderr, r.stdout + r.stderr

    # Independently: each path leads from the entry to the signed root (RFC 9162 2.1.3.2).
    size, root = open_note(bundle["checkpoints"][0], key)
    for e, path in zip(bundle["entries"], bundle["proofs"]):
        leaf = hashlib.sha256(b"\x00" + e["entry"].encode()).digest()
        assert path_root(leaf, e["seq"] - 1, size, [bytes.fromhex(p) for p in path]) == root

    tampered = json.loads(out.read_text())
    assert "hank" in tampered["entries"][2]["entry"]
    tampered["entries"][2]["entry"] = tampered["entries"][2]["entry"].replace("hank", "hanx")
    tampered["entries"][2]["hash"] = hashlib.sha256(b"\x00" + tampered["entries"][2]["entry"].encode()).hexdigest()
    out.write_text(json.dumps(tampered))
    r = gatehouse("audit", "verify", "--bundle", str(out), "--key", key)
    assert r.returncode == 1 and "is not in the tree signed by the checkpoint" in r.stderr
    assert "--since must be an RFC 3339 time" in run(data, "audit", "export", "--since", "yesterday", "--out", str(out)).stderr

    # The start of the window is not taken on trust: without it, or with nothing in it, no pass.
    for mutate, message in [
        (lambda b: b.pop("since"), "must state the time its window starts"),
        (lambda b: (b["entries"].clear(), b["proofs"].clear()), "log truncated"),
    ]:
        bad = json.loads(json.dumps(bundle))
        mutate(bad)
        f = tmp_path / "bad.json"
        f.write_text(json.dumps(bad))
        r = gatehouse("audit", "verify", "--bundle", str(f), "--key", key)
        assert r.returncode == 1 and message in r.stderr, r.stdout + r.stderr


def test_appends_fail_closed_when_the_file_system_dies_under_the_server(servers, tmp_path):
    """The file system under a running server stops accepting writes, as when the kernel
    turns it read-only after errors (errors=remount-ro). A plain read-only remount cannot be
    done here: Linux refuses it (EBUSY) while SQLite holds files open for writing. ext4's
    shutdown ioctl makes every later write fail instead, which is the same fault as seen by
    the server. The change must be refused, and nothing of it found after recovery."""
    import fcntl
    import signal
    import struct

    img, mnt = tmp_path / "fs.img", tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "64M", str(img)], check=True)
    if subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], capture_output=True).returncode != 0:
        pytest.skip("mkfs.ext4 is not available")
    if subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot loop-mount here")
    try:
        os.chmod(mnt, 0o700)
        s = servers(mnt / "data").start()
        assert run(s.data_dir, "admin", "invite", "alice", "--email", "a@example.org").returncode == 0
        fd = os.open(str(mnt), os.O_RDONLY)
        fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 2))  # EXT4_IOC_SHUTDOWN, no log flush
        os.close(fd)
        r = run(s.data_dir, "admin", "invite", "mallory", "--email", "m@example.org")
        assert r.returncode == 1 and r.stderr.startswith("gatehouse: error: "), r.stdout + r.stderr
        s.stop(signal.SIGKILL)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    # The file system comes back (journal replay); the refused change is not there.
    assert subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True).returncode == 0
    try:
        s2 = servers(mnt / "data").start()
        db = sqlite3.connect(os.path.join(s2.data_dir, "gatehouse.sqlite"))
        names = {row[0] for row in db.execute("SELECT username FROM invitations WHERE kind = 'invite'")}
        assert names == {"alice"}
        assert run(s2.data_dir, "audit", "verify").returncode == 0
        s2.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_an_export_signs_a_checkpoint_first_so_no_entry_in_it_is_unsigned(server, tmp_path):
    """docs/audit.md says an export asks for a checkpoint; the bundle held the newest entries
    unsigned ("6 newer entries not yet under a checkpoint") until it did."""
    data = server.data_dir
    key = verifier_key(data)
    for name in ["erin", "frank", "grace"]:
        assert run(data, "admin", "invite", name, "--email", f"{name}@example.org").returncode == 0
    path, bundle = export(data, tmp_path)
    r = gatehouse("audit", "verify", "--bundle", str(path), "--key", key)
    assert r.returncode == 0 and "not yet under a checkpoint" not in r.stdout, r.stdout
    newest = max(open_note(n, key)[0] for n in bundle["checkpoints"])
    assert newest == len(bundle["entries"]) == max(e["seq"] for e in bundle["entries"]), (newest, len(bundle["entries"]))
