"""Driver of scripts/bench-bastion (see there). Reuses the live tests' harness to stand up a
Gatehouse with an enrolled admin, a joined host with a real sshd, and a certificate."""
import os
import pathlib
import select
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from conftest import Server  # noqa: E402
from test_bastion import Bastion  # noqa: E402
from test_oidc import Provider  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
GIB = 1 << 30


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="gh-bench-bastion-"))
    server = Server(work / "data").start()
    try:
        b = Bastion(Provider(server, 9), work)
        run(b, work, server)
    finally:
        server.stop()


def run(b, work, server):
    cipher = ["-c", "aes128-gcm@openssh.com"]
    # To the sshd itself (its host key is checked by the bastion's runs; here it is taken as is).
    plain = ["-F", "/dev/null", "-i", b.key, "-o", "IdentitiesOnly=yes", "-o", f"CertificateFile={b.key}-cert.pub", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", *cipher]
    via_bastion = ["ssh", *b.ssh_args(), *cipher, "-p", str(b.ssh_port), "root@web-1@127.0.0.1"]
    # OpenSSH's own bastion pattern: ProxyJump through the same sshd, with the same certificate.
    # (ProxyJump spelled as the ProxyCommand it stands for, so the jump hop gets the same options.)
    hop = " ".join(["ssh", *plain, "-W", "%h:%p", "-p", str(b.sshd_port), "root@127.0.0.1"])
    jump = ["ssh", *plain, "-o", f"ProxyCommand={hop}", "-p", str(b.sshd_port), "root@127.0.0.1"]
    direct = ["ssh", *plain, "-p", str(b.sshd_port), "root@127.0.0.1"]
    payload = work / "payload"
    # Idle sessions first: the server's heap has not yet grown for bulk transfers, so the memory
    # figure is what sessions cost, not what a grown heap absorbs.
    sessions(b, server, via_bastion)
    if os.environ.get("BENCH_ONLY") == "sessions":
        return
    with open(payload, "wb") as f:
        for _ in range(GIB >> 24):
            f.write(os.urandom(1 << 24))
    ways = {"bastion (recorded)": via_bastion, "ProxyJump": jump, "direct": direct}

    def timed(cmd, upload):
        t0 = time.perf_counter()
        if upload:
            with open(payload, "rb") as f:
                r = subprocess.run([*cmd, "cat > /dev/null"], stdin=f, capture_output=True)
        else:
            r = subprocess.run([*cmd, f"cat {payload}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert r.returncode == 0, r.stderr[-500:]
        return GIB / (1 << 20) / (time.perf_counter() - t0)

    print(f"== bulk: 1 GiB, {ROUNDS} alternating rounds, MiB/s")
    for upload in (True, False):
        results = {name: [] for name in ways}
        for _ in range(ROUNDS):
            for name, cmd in ways.items():
                results[name].append(timed(cmd, upload))
        label = "upload (stdin → cat > /dev/null)" if upload else "download (cat FILE → stdout)"
        medians = {name: statistics.median(v) for name, v in results.items()}
        print(f"  {label}")
        for name, v in results.items():
            print(f"    {name:20s} median {medians[name]:7.1f}   rounds {' '.join(f'{x:.1f}' for x in v)}")
        print(f"    bastion / ProxyJump = {medians['bastion (recorded)'] / medians['ProxyJump']:.2f}x   bastion / direct = {medians['bastion (recorded)'] / medians['direct']:.2f}x")
    payload.unlink()
    recordings = work / "data" / "recordings"
    print(f"  recordings on disk after the bulk runs: {sum(p.stat().st_size for p in recordings.iterdir()) / (1 << 20):.1f} MiB")

    print("== keystroke echo: one byte into `cat` on the target and back, 2,000 round trips, ms")
    echo = {}
    for name, cmd in (("bastion", via_bastion), ("direct", direct)):
        p = subprocess.Popen([*cmd, "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        samples = []
        for i in range(2200):
            t0 = time.perf_counter()
            p.stdin.write(b"x")
            got = p.stdout.read(1)
            assert got == b"x"
            if i >= 200:  # warm-up
                samples.append((time.perf_counter() - t0) * 1000)
        p.stdin.close()
        p.wait(timeout=10)
        samples.sort()
        echo[name] = (statistics.median(samples), samples[int(len(samples) * 0.99)])
        print(f"    {name:8s} p50 {echo[name][0]:.3f}  p99 {echo[name][1]:.3f}")
    print(f"    added by the bastion: p50 {echo['bastion'][0] - echo['direct'][0]:.3f} ms, p99 {echo['bastion'][1] - echo['direct'][1]:.3f} ms")
    b.stop()


def sessions(b, server, via_bastion):
    print("== 200 concurrent idle sessions through the bastion")
    before = rss_kib(server.proc.pid)
    procs = []
    for i in range(200):
        p = subprocess.Popen([*via_bastion, "echo up; exec sleep 600"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        if i % 10 == 9:  # sshd's MaxStartups admits 10 unauthenticated connections at a time
            for q in procs[-10:]:
                line = q.stdout.readline()
                if line != b"up\n":
                    q.wait(timeout=10)
                    raise AssertionError(f"session {i} failed: {line!r} exit {q.returncode}: {q.stderr.read()[-300:]!r}")
    time.sleep(2)
    alive = sum(1 for p in procs if p.poll() is None)
    after = rss_kib(server.proc.pid)
    live = len(__import__("json").loads(b.sessions("list", "--live", "--limit", "1000", "--json").stdout))
    print(f"    sessions alive {alive}/200, live in the server {live}; server RSS {before} KiB -> {after} KiB: {(after - before) / 200:.0f} KiB per session")
    for p in procs:
        p.kill()
    for p in procs:
        p.wait(timeout=30)
    time.sleep(2)  # the sessions end and seal


if __name__ == "__main__":
    main()
