"""The private network end to end, in network namespaces joined by a bridge: a laptop, a gateway
and three servers in two organizations, each host running `gatehouse agent run` with real
wireguard-go, wg, nft, tc and bpftool. What crosses the WireGuard mesh is checked with real TCP
(curl to python's http.server) and ICMPv6 (ping), and who dropped a packet is read from the
ruleset's and the BPF program's own counters."""
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_port, gatehouse
from test_oidc import Provider
from test_pki import join_agent, run
from test_ssh import access_token

TOOLS = ["ip", "wireguard-go", "wg", "wg-quick", "nft", "tc", "bpftool"]
if os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS):
    pytest.skip("needs root, iproute2, wireguard-go, wireguard-tools, nftables and bpftool", allow_module_level=True)

TD = "net.example"
BRIDGE = "ghbr0"
UNDERLAY = "10.77.0"
HOSTS = {"gw": ("acme", 2), "a1": ("acme", 3), "a2": ("acme", 4), "b1": ("beta", 5)}
LAPTOP = ("lap", 10)
POLICY = """
    host gw { org = "acme" gateway = true }
    host a1 { org = "acme" }
    host a2 { org = "acme" }
    host b1 { org = "beta" }
    allow reach staff-a1 { who = [staff] to = [host:a1] ports = [8080, icmp] }
    allow reach a2-a1 { who = [host:a2] to = [host:a1] ports = [8080, icmp] }
    allow reach a1-b1 { who = [host:a1] to = [host:b1] ports = [8080] }
    """


def iface(name):
    # Hosts are separate machines in life; here they share /run/wireguard, where wireguard-go
    # keeps its control sockets by interface name, so each needs its own name.
    return f"wg-{name}"


def ula(name):
    """The documented address plan (docs/network.md), computed independently."""
    g = hashlib.sha256(f"gatehouse ula {TD}".encode()).digest()[:5]
    base = int.from_bytes(b"\xfd" + g, "big") << 80
    org, _ = HOSTS[name]
    d = hashlib.sha256(f"gatehouse organization {org}".encode()).digest()
    subnet = (d[0] << 8 | d[1]) % 0xFFFE + 1
    iid = int.from_bytes(hashlib.sha256(f"gatehouse host {name}".encode()).digest()[:8], "big") or 1
    return str(ipaddress.IPv6Address(base | subnet << 64 | iid))


def ns(name, *args, **kw):
    return run("ip", "netns", "exec", f"gh-{name}", *args, **kw)


def teardown_namespaces():
    for n in list(HOSTS) + [LAPTOP[0]]:
        # wireguard-go outlives its namespace's name unless stopped: it would keep the
        # namespace, its interfaces and the bridge port alive.
        pids = subprocess.run(["ip", "netns", "pids", f"gh-{n}"], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"gh-{n}"], capture_output=True)
        # A namespace whose name is gone but whose processes live on, from a run cut short.
        subprocess.run(["pkill", "-9", "-f", f"wireguard-go {iface(n)}$"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"gh-{n}-br"], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    subprocess.run(["ip", "link", "del", "ghtest0"], capture_output=True)


@pytest.fixture
def mesh(servers, tmp_path):
    teardown_namespaces()
    assert run("ip", "link", "add", BRIDGE, "type", "bridge").returncode == 0
    run("ip", "addr", "add", f"{UNDERLAY}.1/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    for name, number in [(n, h[1]) for n, h in HOSTS.items()] + [LAPTOP]:
        for step in [("ip", "netns", "add", f"gh-{name}"),
                     ("ip", "link", "add", f"gh-{name}-br", "type", "veth", "peer", "name", "eth0", "netns", f"gh-{name}"),
                     ("ip", "link", "set", f"gh-{name}-br", "master", BRIDGE, "up"),
                     ("ip", "netns", "exec", f"gh-{name}", "ip", "addr", "add", f"{UNDERLAY}.{number}/24", "dev", "eth0"),
                     ("ip", "netns", "exec", f"gh-{name}", "ip", "link", "set", "eth0", "up"),
                     ("ip", "netns", "exec", f"gh-{name}", "ip", "link", "set", "lo", "up")]:
            r = run(*step)
            assert r.returncode == 0, (step, r.stderr)
    mport = free_port()
    # Agents in the namespaces reach the server over the bridge, not at "localhost": the server
    # tells them so at join (mtls_public_url), and its certificate names that address.
    server = servers(tmp_path / "data", "--mtls-listen", f"{UNDERLAY}.1:{mport}", "--mtls-public-url", f"https://{UNDERLAY}.1:{mport}", "--trust-domain", TD).start()
    p = Provider(server, 9)
    p.apply(p.policy + POLICY)
    p.tmp = tmp_path
    p.agents = {}
    p.services = []
    p.states = {}
    for name, (_, number) in HOSTS.items():
        state, agent = join_agent(p, tmp_path, name)
        # Nothing rewritten: join wrote the URL the server advertises.
        assert json.load(open(os.path.join(state, "agent.json")))["mtlsURL"] == f"https://{UNDERLAY}.1:{mport}"
        p.states[name] = state
    yield p
    for proc in list(p.agents.values()) + p.services:
        proc.kill()
        proc.wait()
    teardown_namespaces()


def start_agent(p, name):
    state = p.states[name]
    number = HOSTS[name][1]
    log = open(os.path.join(state, "agent.log"), "a")
    proc = subprocess.Popen(["ip", "netns", "exec", f"gh-{name}", BIN, "agent", "run", "--state-dir", state, "--interval", "3600",
                             "--wg-endpoint", f"{UNDERLAY}.{number}:51820", "--wg-interface", iface(name), "--metrics-file", os.path.join(state, "metrics.prom")],
                            stdout=log, stderr=subprocess.STDOUT)
    p.agents[name] = proc
    return proc


def wait_for(check, timeout=15, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(step)
    return None


def agent_log(p, name):
    return open(os.path.join(p.states[name], "agent.log")).read()


def serve_http(p, name):
    proc = subprocess.Popen(["ip", "netns", "exec", f"gh-{name}", "python3", "-m", "http.server", "8080", "--bind", "::"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.services.append(proc)


def tcp(src, dst, timeout=1.0):
    r = ns(src, "curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout), f"http://[{dst}]:8080/")
    return r.stdout.strip() == "200"


def ping(src, dst):
    return ns(src, "ping", "-6", "-c", "1", "-W", "1", dst).returncode == 0


def nft_counter(name, counter):
    r = ns(name, "nft", "-j", "list", "counter", "inet", "gatehouse", counter)
    return next(i["counter"]["packets"] for i in json.loads(r.stdout)["nftables"] if "counter" in i)


def bpf_counters(name):
    show = ns(name, "tc", "filter", "show", "dev", iface(name), "ingress").stdout
    prog = int(show.split(" id ")[1].split()[0])
    maps = json.loads(run("bpftool", "-j", "prog", "show", "id", str(prog)).stdout)["map_ids"]
    for m in maps:
        info = json.loads(run("bpftool", "-j", "map", "show", "id", str(m)).stdout)
        if info["name"] == "gh_stats":
            dump = json.loads(run("bpftool", "-j", "map", "dump", "id", str(m)).stdout)
            # A per-CPU array: one value per CPU.
            return {e["formatted"]["key"]: sum(v["value"] for v in e["formatted"]["values"]) for e in dump}
    raise AssertionError("no gh_stats map")


def device_up(p, user_browser, name="laptop", scope="openid network"):
    """`gatehouse wg up --config-only` as the person (the server's API is on this namespace's
    loopback), then wg-quick in the laptop's namespace."""
    token = access_token(p, scope=scope, browser=user_browser)
    cli = p.tmp / f"cli-{name}"
    cli.mkdir(exist_ok=True)
    (cli / "credentials.json").write_text(json.dumps({"server": p.issuer, "accessToken": token, "expiresAt": "2100-01-01T00:00:00Z"}))
    os.chmod(cli, 0o700)
    env = {**os.environ, "GATEHOUSE_CONFIG_DIR": str(cli)}
    conf = cli / "gh-lap.conf"
    r = subprocess.run([BIN, "wg", "up", "--name", name, "--interface", "gh-lap", "--config-only", str(conf)], capture_output=True, text=True, env=env, timeout=30)
    return r, conf, env, token


def test_private_network_end_to_end(mesh, tmp_path):
    p = mesh
    addresses = {n: ula(n) for n in HOSTS}
    for name in HOSTS:
        start_agent(p, name)
    # Every host comes up with its documented address and a peer for each other host.
    for name in HOSTS:
        assert wait_for(lambda: addresses[name] in ns(name, "ip", "-6", "addr", "show", "dev", iface(name)).stdout, timeout=30), agent_log(p, name)
        assert wait_for(lambda: len(ns(name, "wg", "show", iface(name), "peers").stdout.split()) == 3, timeout=15), agent_log(p, name)
    assert oct(os.stat(os.path.join(p.states["a1"], "wireguard.key")).st_mode & 0o777) == "0o600"
    for name in HOSTS:
        serve_http(p, name)
    time.sleep(0.5)

    # Mesh: a2 → a1 is allowed (TCP and ICMP); a1 → a2 is not; a1 → b1:8080 is allowed by the
    # policy (a deliberate cross-organization rule) and b1's ruleset admits it, but the BPF
    # program drops it in the kernel before nftables ever sees it.
    assert wait_for(lambda: tcp("a2", addresses["a1"]), timeout=10)
    assert ping("a2", addresses["a1"])
    before = nft_counter("a2", "dropped_input")
    assert not tcp("a1", addresses["a2"])
    assert nft_counter("a2", "dropped_input") > before
    rules_b1 = ns("b1", "nft", "list", "set", "inet", "gatehouse", "allow").stdout
    assert addresses["b1"] in rules_b1 and "8080" in rules_b1, rules_b1
    bpf_before, nft_before = bpf_counters("b1"), nft_counter("b1", "dropped_input")
    assert not tcp("a1", addresses["b1"])
    bpf_after = bpf_counters("b1")
    assert bpf_after[1] > bpf_before[1], (bpf_before, bpf_after)  # 1: dropped across organizations
    assert nft_counter("b1", "dropped_input") == nft_before
    metrics = open(os.path.join(p.states["b1"], "metrics.prom")).read()
    assert 'gatehouse_network_packets_total{counter="dropped_input"}' in metrics and "gatehouse_mesh_isolation_packets_total" in metrics, metrics

    # Around the tunnel: a neighbour on a1's LAN (the laptop's namespace, on the bridge) that
    # sends straight to a1's mesh address over the underlay is dropped by a1's ruleset.
    mac = ns("a1", "cat", "/sys/class/net/eth0/address").stdout.strip()
    assert ns("lap", "ip", "-6", "route", "add", f"{addresses['a1']}/128", "dev", "eth0").returncode == 0
    assert ns("lap", "ip", "-6", "neigh", "replace", addresses["a1"], "lladdr", mac, "dev", "eth0", "nud", "permanent").returncode == 0
    before = nft_counter("a1", "dropped_input")
    assert not tcp("lap", addresses["a1"])
    assert nft_counter("a1", "dropped_input") > before
    ns("lap", "ip", "-6", "route", "del", f"{addresses['a1']}/128", "dev", "eth0")

    # A person's device: the key is made on the device, the configuration comes back with the
    # gateway as the only peer; a1:8080 and ping pass, a2 (not granted) does not.
    carol = p.member("carol", "carol@example.org")
    r, conf, env, token = device_up(p, carol)
    assert r.returncode == 0, r.stderr
    text = conf.read_text()
    assert "PrivateKey = " in text and f"Endpoint = {UNDERLAY}.2:51820" in text and oct(os.stat(conf).st_mode & 0o777) == "0o600", text
    device = requests.get(p.url + "/api/network/devices", headers={"Authorization": "Bearer " + token}, timeout=10).json()[0]
    private = next(l.split(" = ")[1] for l in text.splitlines() if l.startswith("PrivateKey"))
    assert private not in json.dumps(device) and run("wg", "pubkey", input=private + "\n").stdout.strip() == device["public_key"]
    up = ns("lap", "wg-quick", "up", str(conf))
    assert up.returncode == 0, up.stderr
    assert wait_for(lambda: tcp("lap", addresses["a1"]), timeout=10), agent_log(p, "gw")
    assert ping("lap", addresses["a1"])
    assert not tcp("lap", addresses["a2"])
    assert not tcp("lap", addresses["b1"])

    # `gatehouse wg up` without --config-only, here in the test's own namespace (which reaches
    # the server): wg-quick brings the interface up, and `wg down` takes it away again.
    r = subprocess.run([BIN, "wg", "up", "--name", "desk", "--interface", "ghtest0"], capture_output=True, text=True, env=env, timeout=60)
    try:
        assert r.returncode == 0 and "ghtest0 is up" in r.stdout, r.stdout + r.stderr
        assert wait_for(lambda: run("curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", f"http://[{addresses['a1']}]:8080/").stdout == "200", timeout=10)
        r = run(BIN, "wg", "devices", env=env)
        assert r.returncode == 0 and "desk" in r.stdout and "laptop" in r.stdout, r.stdout + r.stderr
    finally:
        down = subprocess.run([BIN, "wg", "down", "--interface", "ghtest0"], capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "ghtest0" not in run("ip", "link").stdout
    desk = next(line.split()[0] for line in run(BIN, "wg", "devices", env=env).stdout.splitlines() if "  desk  " in line)
    removed = run(BIN, "wg", "remove", desk, env=env)
    assert removed.returncode == 0 and f"Device {desk} removed" in removed.stdout, removed.stdout + removed.stderr
    assert "removed" in next(line for line in run(BIN, "wg", "devices", env=env).stdout.splitlines() if line.startswith(desk))

    # A policy change opens a flow within a second, and closes it again.
    p.apply(p.policy + POLICY + "allow reach staff-a2 { who = [staff] to = [host:a2] ports = [8080] }\n")
    opened = time.monotonic()
    assert (wait_for(lambda: tcp("lap", addresses["a2"], timeout=0.5), timeout=5, step=0.02) or 99) - opened < 1.0, agent_log(p, "gw")
    # A connection established while allowed keeps sending; withdrawing the rule stops it too
    # (a new generation makes the gateway judge its next packet again), not only new ones.
    client = subprocess.Popen(["ip", "netns", "exec", "gh-lap", "python3", "-u", "-c",
                               "import socket, sys, time\ns = socket.create_connection((sys.argv[1], 8080))\n"
                               "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\nprint('up')\n"
                               "while True:\n    s.send(b'a')\n    time.sleep(0.02)", addresses["a2"]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    p.services.append(client)
    assert client.stdout.readline().strip() == "up"
    time.sleep(0.3)
    established = nft_counter("gw", "dropped_forward")
    p.apply(p.policy + POLICY)
    closed = time.monotonic()
    assert (wait_for(lambda: nft_counter("gw", "dropped_forward") > established + 2, timeout=5, step=0.02) or 99) - closed < 1.0, agent_log(p, "gw")
    client.kill()
    assert not tcp("lap", addresses["a2"], timeout=0.5)

    # Offboarding removes the device's peer from the gateway and breaks its flows within a second.
    assert tcp("lap", addresses["a1"])
    assert gatehouse("admin", "offboard", "carol", "--data-dir", p.data).returncode == 0
    gone = time.monotonic()
    assert wait_for(lambda: device["public_key"] not in ns("gw", "wg", "show", iface("gw"), "peers").stdout, timeout=5, step=0.02) - gone < 1.0
    assert not tcp("lap", addresses["a1"])
    exported = tmp_path / "audit.json"
    assert gatehouse("audit", "export", "--out", str(exported), "--data-dir", p.data).returncode == 0
    events = exported.read_text()
    assert "network.device_registered" in events and "network.host_registered" in events and "wireguard_devices" in events

    # Every configuration so far applied cleanly (a refused update would leave a host behind).
    for name in HOSTS:
        assert "failed" not in agent_log(p, name), agent_log(p, name)

    # An agent restart restores the same state; `agent leave` leaves nothing behind.
    # (The permissions' generation is new at every start, on purpose: flows are judged afresh.)
    stable = lambda text: re.sub(r"0x[89a-f][0-9a-f]{7}", "GENERATION", text)
    ruleset = stable(ns("a1", "nft", "-s", "list", "table", "inet", "gatehouse").stdout)
    peers = ns("a1", "wg", "show", iface("a1"), "peers").stdout
    p.agents["a1"].terminate()
    p.agents["a1"].wait(timeout=10)
    start_agent(p, "a1")
    assert wait_for(lambda: agent_log(p, "a1").count("(full ruleset)") >= 2, timeout=20), agent_log(p, "a1")
    assert stable(ns("a1", "nft", "-s", "list", "table", "inet", "gatehouse").stdout) == ruleset
    assert sorted(ns("a1", "wg", "show", iface("a1"), "peers").stdout.split()) == sorted(peers.split())
    assert wait_for(lambda: tcp("a2", addresses["a1"]), timeout=5)
    p.agents["b1"].terminate()
    p.agents["b1"].wait(timeout=10)
    left = ns("b1", BIN, "agent", "leave", "--state-dir", p.states["b1"], "--wg-interface", iface("b1"))
    assert left.returncode == 0, left.stderr
    assert iface("b1") not in ns("b1", "ip", "link").stdout
    assert ns("b1", "nft", "list", "ruleset").stdout.strip() == ""
    assert ns("b1", "tc", "qdisc", "show").stdout.count("clsact") == 0
    assert not os.path.exists(os.path.join(p.states["b1"], "wireguard.key"))
    assert run("pgrep", "-f", f"wireguard-go {iface('b1')}").returncode == 1  # its wireguard-go ended with the interface
    assert run("pgrep", "-f", f"wireguard-go {iface('a1')}").returncode == 0
    # The others drop b1 as a peer.
    assert wait_for(lambda: len(ns("a1", "wg", "show", iface("a1"), "peers").stdout.split()) == 2, timeout=5)


def test_network_inputs_are_checked(mesh, tmp_path):
    p = mesh
    carol = p.member("carol", "carol@example.org")
    token = access_token(p, scope="openid network", browser=carol)
    bearer = {"Authorization": "Bearer " + token}
    post = lambda body, **kw: requests.post(p.url + "/api/network/devices", headers={**bearer, **kw.pop("headers", {})}, timeout=10, **({"json": body} if body is not None else {}), **kw)
    # The gateway has not registered yet: nothing to connect to.
    good = run("wg", "pubkey", input=run("wg", "genkey").stdout).stdout.strip()
    r = post({"public_key": good, "name": "early"})
    assert r.status_code == 404 and "has not joined" in r.text, r.text
    start_agent(p, "gw")
    assert wait_for(lambda: "applied" in agent_log(p, "gw"), timeout=30), agent_log(p, "gw")
    without = access_token(p, scope="openid ssh", browser=carol)
    r = requests.post(p.url + "/api/network/devices", json={"public_key": good, "name": "x"}, headers={"Authorization": "Bearer " + without}, timeout=10)
    assert r.status_code == 403 and "network scope" in r.text
    assert requests.post(p.url + "/api/network/devices", json={"public_key": good, "name": "x"}, timeout=10).status_code == 401
    cases = [
        ({"public_key": "AAAA", "name": "x"}, 400, "not a WireGuard key"),
        ({"public_key": "A" * 43 + "=", "name": "x"}, 400, "all-zero"),
        ({"public_key": good[:-2] + "B=", "name": "x"}, 400, "canonical"),
        ({"public_key": good, "name": "bad name; rm -rf /"}, 400, "device name"),
        ({"public_key": good, "name": "x" * 65}, 400, "device name"),
        ({"public_key": good}, 400, "name and public_key"),
        ({"public_key": good, "name": "x", "address": "fd00::1"}, 400, "address"),
        ({"public_key": 5, "name": "x"}, 400, "as strings"),
        ([], 400, "JSON object"),
    ]
    for body, status, message in cases:
        r = post(body)
        assert r.status_code == status and message in r.text, (body, r.status_code, r.text)
    r = post(None, data=b"{" * 5000, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413), r.text
    r = post(None, data="public_key=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "application/json" in r.text
    assert requests.get(p.url + "/api/network/devices", headers=bearer, timeout=10).json() == []
    # A real registration, then the same key again.
    assert post({"public_key": good, "name": "ok"}).status_code == 201
    r = post({"public_key": good, "name": "again"})
    assert r.status_code == 409 and "already registered" in r.text, r.text
    # Removing another person's device is a 404, and so is a made-up id.
    assert requests.delete(p.url + "/api/network/devices/nope", headers=bearer, timeout=10).status_code == 404
    # The administrator sees every device, can remove any, and can read what a host is told.
    listed = gatehouse("admin", "network", "devices", "--data-dir", p.data)
    assert listed.returncode == 0 and "carol  ok  fd" in listed.stdout, listed.stdout + listed.stderr
    device_id = listed.stdout.split()[0]
    assert gatehouse("admin", "network", "remove", device_id, "--data-dir", p.data).returncode == 0
    assert "REMOVED" in gatehouse("admin", "network", "devices", "--all", "--data-dir", p.data).stdout
    assert gatehouse("admin", "network", "devices", "--data-dir", p.data).stdout.strip() == ""
    # The same through the admin GraphQL schema.
    def admin(query):
        out = subprocess.run(["curl", "-sS", "--unix-socket", f"{p.data}/admin.sock", "-H", "Content-Type: application/json",
                              "-d", json.dumps({"query": query}), "http://gatehouse/v1/graphql"], capture_output=True, text=True, timeout=30).stdout
        return json.loads(out)
    assert admin("{ networkDevices { id } }")["data"]["networkDevices"] == []
    every = admin("{ networkDevices(all: true) { id username name publicKey address expiresAt revokedAt } }")["data"]["networkDevices"]
    assert len(every) == 1 and every[0]["id"] == device_id and every[0]["username"] == "carol" and every[0]["publicKey"] == good, every
    assert every[0]["address"].startswith("fd") and every[0]["revokedAt"], every
    for hostile in ["nope", "../" * 2000, "x'; DROP TABLE net_devices;--", ""]:
        gone = admin("mutation { removeNetworkDevice(id: %s) }" % json.dumps(hostile))
        assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND", (hostile[:40], gone)
    assert admin("{ networkDevices(all: true) { id } }")["data"]["networkDevices"] == [{"id": device_id}]
    assert requests.delete(p.url + f"/api/network/devices/{device_id}", headers=bearer, timeout=10).status_code == 409
    shown = json.loads(gatehouse("admin", "network", "show", "gw", "--data-dir", p.data).stdout)
    assert shown["forwarding"] and shown["address"] == ula("gw") and shown["mesh_prefix"].endswith("::/48"), shown
    missing = gatehouse("admin", "network", "show", "nope", "--data-dir", p.data)
    assert missing.returncode != 0 and "not on the private network" in missing.stderr

    # The agent refuses a bad endpoint or interface name at start, rather than retry forever.
    for flag, value, message in [("--wg-endpoint", "10.0.0.1", "not HOST:PORT"), ("--wg-interface", "a;b", "not an interface name")]:
        args = {"--wg-endpoint": "10.77.0.3:51820", "--wg-interface": "wg-a1"}
        args[flag] = value
        r = ns("a1", BIN, "agent", "run", "--state-dir", p.states["a1"], "--interval", "3600", "--once", *[x for kv in args.items() for x in kv])
        assert r.returncode != 0 and message in r.stderr, (flag, r.stdout, r.stderr)

    # The agent side: hostile registrations over mutual TLS are refused and change nothing.
    state = p.states["a1"]
    mtls = json.load(open(os.path.join(state, "agent.json")))["mtlsURL"]
    session = requests.Session()
    session.trust_env = False
    session.cert = (os.path.join(state, "agent.pem"), os.path.join(state, "agent.key"))
    session.verify = os.path.join(state, "ca.pem")
    for body, message in [
        ({"public_key": good, "endpoint": "10.0.0.1"}, "not an endpoint"),
        ({"public_key": good, "endpoint": "host:0"}, "not an endpoint"),
        ({"public_key": good, "endpoint": "a b:51820"}, "not an endpoint"),
        ({"public_key": good, "endpoint": "[10.0.0.1]:51820"}, "not an endpoint"),
        ({"public_key": "x" * 44, "endpoint": "10.0.0.1:51820"}, "not a WireGuard key"),
        ({"public_key": good, "endpoint": "10.0.0.1:51820", "org": "beta"}, "org"),
    ]:
        r = session.post(mtls + "/api/agent/network", json=body, timeout=10)
        assert r.status_code == 400 and message in r.text, (body, r.text)
    # gw already holds its own key; a1 may not claim it.
    gw_key = ns("gw", "wg", "show", iface("gw"), "public-key").stdout.strip()
    r = session.post(mtls + "/api/agent/network", json={"public_key": gw_key, "endpoint": "10.0.0.1:51820"}, timeout=10)
    assert r.status_code == 409, r.text
    r = session.get(mtls + "/api/agent/network?wait=abc", timeout=10)
    assert r.status_code == 400
    r = session.get(mtls + "/api/agent/network?wait=nan", timeout=10)
    assert r.status_code == 400
