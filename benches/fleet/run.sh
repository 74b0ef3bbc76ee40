#!/usr/bin/env bash
# Fleet benchmarks on the test bed's fake servers (numbers go to BENCHMARKS.md):
# wall time of 1-host and 3-host deploys (batch 1 and batch 3), SSH connections opened per
# host per deploy (counted in each server's sshd log), and odysseus's peak RSS during a
# 3-host deploy (GNU time). Usage: benches/fleet/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
B=/var/lib/odysseus-testbed
bash testbed/testbed.sh up >/dev/null 2>&1
# ODYSSEUS_BIN measures another build (e.g. an older commit's, for a side-by-side run).
if [ -z "${ODYSSEUS_BIN:-}" ]; then
    cargo build --release -q -p odysseus
    BIN="${CARGO_TARGET_DIR:-target}/release/odysseus"
else
    BIN="$ODYSSEUS_BIN"
fi
for n in 1 2 3; do
    docker save odysseus-demo:v1 odysseus-demo:v2 odysseus-testbed/caddy:2.11.7 | docker -H "unix://$B/s$n/run/docker.sock" load -q >/dev/null
done
WORK=$(mktemp -d)
config() { # name hosts batch
    cat > "$WORK/$1.yml" <<YAML
service: $1
image: odysseus-demo
batch_size: $3
servers:
  web:
    hosts: [$2]
proxy:
  app_port: 3000
  hosts: [$1.test]
  ssl: false
  http_port: 80
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
ssh:
  keys: [$B/id_ed25519]
  known_hosts: $B/known_hosts
YAML
}
config one "198.51.100.11" 1
config three "198.51.100.11, 198.51.100.12, 198.51.100.13" 1
config threeb "198.51.100.11, 198.51.100.12, 198.51.100.13" 3
ms() { date +%s%3N; }
for name in one three threeb; do
    "$BIN" deploy -c "$WORK/$name.yml" --image v1 >/dev/null 2>&1
    : > "$WORK/$name.times"
    v=v1
    for i in $(seq 1 "$ROUNDS"); do
        v=$([ "$v" = v1 ] && echo v2 || echo v1)
        t0=$(ms); "$BIN" deploy -c "$WORK/$name.yml" --image "$v" >/dev/null 2>&1; t1=$(ms)
        echo $((t1 - t0)) >> "$WORK/$name.times"
    done
done
accepted() { cat "$B"/s{1,2,3}/sshd.log 2>/dev/null | grep -c "Accepted publickey" || true; }
before=$(accepted)
/usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" deploy -c "$WORK/three.yml" --image v1 >/dev/null 2>&1
after=$(accepted)
python3 - "$WORK" "$before" "$after" <<'PY'
import sys, statistics as st
w, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for name, label in [("one", "1 host, batch 1"), ("three", "3 hosts, batch 1"), ("threeb", "3 hosts, batch 3")]:
    t = [int(l) for l in open(f"{w}/{name}.times")]
    print(f"{label:<18} median {st.median(t):6.0f} ms  (min {min(t)}, max {max(t)}, n={len(t)})")
print(f"SSH connections per host per 3-host deploy: {(after - before) / 3:.1f}")
print(f"peak RSS of odysseus during a 3-host deploy: {int(open(f'{w}/rss').read().split()[-1]) / 1024:.1f} MiB")
PY
rm -rf "$WORK"
for n in 1 2 3; do
    ids=$(docker -H "unix://$B/s$n/run/docker.sock" ps -aq --filter label=odysseus.service)
    [ -n "$ids" ] && docker -H "unix://$B/s$n/run/docker.sock" rm -f $ids >/dev/null || true
done
