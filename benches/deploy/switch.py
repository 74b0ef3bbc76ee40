"""The switch, measured from the outside, for two odysseus builds side by side.

Each build deploys its own service to its own test-bed server (A to one, B to another:
identical fake servers, each with its own Caddy, reached over SSH). Rounds are
interleaved (A, B, A, B, ...) so both see the same machine. In each round one deploy runs
while, for that service, a keep-alive client sends back to back, a fresh-connection
client sends one request per connection, and a long client holds 2 s requests: every
request is counted per kind. After the deploy, the journal (`replay --json`) gives the
instant `add-upstream` started; the switch latency is from then to the first response
that came from the new version.

Usage: switch.py BIN_A BIN_B ROUNDS WORKDIR ADDR_A ADDR_B   (ADDR: ip:port of the server's Caddy)"""
import json, socket, statistics as st, subprocess, sys, threading, time

from http1 import read_response
from datetime import datetime

bin_a, bin_b, rounds, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
addrs = {"a": sys.argv[5], "b": sys.argv[6]}


class Client(threading.Thread):
    def __init__(self, kind, addr, host, stop, first_seen, new_version):
        super().__init__(daemon=True)
        self.kind, self.host, self.stop, self.first_seen, self.new = kind, host, stop, first_seen, new_version
        ip, port = addr.rsplit(":", 1)
        self.addr = (ip, int(port))
        self.ok = self.failed = 0
        self.why = {}

    def run(self):
        s = f = None
        path = "/cgi-bin/slow?s=2" if self.kind == "long" else "/"
        close = self.kind != "keepalive"
        while not self.stop.is_set():
            try:
                if s is None:
                    s = socket.create_connection(self.addr, timeout=20)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    f = s.makefile("rb")
                hdr = "Connection: close\r\n" if close else ""
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{hdr}\r\n".encode())
                status, body, server_closes = read_response(f)
                now = time.time()
                if 200 <= status < 300:
                    self.ok += 1
                    if self.new in body and self.first_seen[0] is None:
                        self.first_seen[0] = now
                else:
                    self.failed += 1
                    self.why[str(status)] = self.why.get(str(status), 0) + 1
                if close or server_closes:
                    s.close(); s = None
            except Exception as e:  # every failure is counted, by reason
                self.failed += 1
                k = str(e)[:60]
                self.why[k] = self.why.get(k, 0) + 1
                if s is not None:
                    s.close()
                s = None
            if self.kind == "fresh":
                time.sleep(0.005)


def add_upstream_started(binary, config):
    doc = json.loads(subprocess.run([binary, "replay", "-c", config, "--json"], capture_output=True, check=True).stdout)
    for e in doc["events"]:
        if e.get("kind") == "step-started" and e.get("step") == "add-upstream":
            return datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    return None


results = {"a": [], "b": []}
counts = {w: {k: [0, 0, {}] for k in ("fresh", "keepalive", "long")} for w in "ab"}
version = "v1"
for r in range(rounds):
    version = "v2" if version == "v1" else "v1"
    for who, binary in (("a", bin_a), ("b", bin_b)):
        config = f"{work}/{who}.yml"
        host = f"switch{who}.test"
        stop, first = threading.Event(), [None]
        clients = [Client(k, addrs[who], host, stop, first, version) for k in ("fresh", "keepalive", "keepalive", "long")]
        for c in clients:
            c.start()
        time.sleep(0.3)
        t0 = time.time()
        subprocess.run([binary, "deploy", "-c", config, "--image", version], capture_output=True, check=True)
        wall = time.time() - t0
        time.sleep(0.3)
        stop.set()
        for c in clients:
            c.join()
            agg = counts[who][c.kind]
            agg[0] += c.ok; agg[1] += c.failed
            for k, n in c.why.items():
                agg[2][k] = agg[2].get(k, 0) + n
        started = add_upstream_started(binary, config)
        switch = (first[0] - started) * 1000 if first[0] and started else float("nan")
        results[who].append((wall * 1000, switch))

for who, binary in (("a", bin_a), ("b", bin_b)):
    walls = [w for w, _ in results[who]]
    switches = [s for _, s in results[who] if s == s]
    print(f"{who} = {binary}")
    print(f"  deploy wall time  median {st.median(walls):6.0f} ms  (min {min(walls):.0f}, max {max(walls):.0f})")
    if switches:
        print(f"  switch latency    median {st.median(switches):6.1f} ms  (min {min(switches):.1f}, max {max(switches):.1f})")
    for kind, (ok, failed, why) in counts[who].items():
        print(f"  {kind:9} {ok:7d} ok {failed:4d} failed {why if why else ''}")
