#!/usr/bin/env bash
# Two odysseus builds side by side on the test bed's fake servers, rounds interleaved
# (A, B, A, B, …) so both see the same machine state: median wall time of 1-host and
# 3-host (batch 1) deploys. Each build deploys a service of its own.
# Usage: benches/fleet/compare.sh BIN_A BIN_B [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-8}
S=/var/lib/odysseus-testbed
bash testbed/testbed.sh up >/dev/null 2>&1
for n in 1 2 3; do
    docker save odysseus-demo:v1 odysseus-demo:v2 odysseus-testbed/caddy:2.11.7 | docker -H "unix://$S/s$n/run/docker.sock" load -q >/dev/null
done
WORK=$(mktemp -d)
config() { # name hosts
    cat > "$WORK/$1.yml" <<YAML
service: $1
image: odysseus-demo
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
  keys: [$S/id_ed25519]
  known_hosts: $S/known_hosts
YAML
}
for who in a b; do
    config "one$who" "198.51.100.11"
    config "three$who" "198.51.100.11, 198.51.100.12, 198.51.100.13"
done
ms() { date +%s%3N; }
run() { # bin name version
    local t0 t1
    t0=$(ms); "$1" deploy -c "$WORK/$2.yml" --image "$3" >/dev/null 2>&1; t1=$(ms)
    echo $((t1 - t0)) >> "$WORK/$2.times"
}
for name in one three; do
    "$A" deploy -c "$WORK/${name}a.yml" --image v1 >/dev/null 2>&1
    "$B" deploy -c "$WORK/${name}b.yml" --image v1 >/dev/null 2>&1
    v=v1
    for i in $(seq 1 "$ROUNDS"); do
        v=$([ "$v" = v1 ] && echo v2 || echo v1)
        run "$A" "${name}a" "$v"
        run "$B" "${name}b" "$v"
    done
done
python3 - "$WORK" "$A" "$B" <<'PY'
import sys, statistics as st
w, a, b = sys.argv[1:4]
for name, label in [("one", "1 host, batch 1"), ("three", "3 hosts, batch 1")]:
    for who, binary in [("a", a), ("b", b)]:
        t = [int(l) for l in open(f"{w}/{name}{who}.times")]
        print(f"{label:<18} {binary:<24} median {st.median(t):6.0f} ms  (min {min(t)}, max {max(t)}, n={len(t)})")
PY
rm -rf "$WORK"
for n in 1 2 3; do
    ids=$(docker -H "unix://$S/s$n/run/docker.sock" ps -aq --filter label=odysseus.service)
    [ -n "$ids" ] && docker -H "unix://$S/s$n/run/docker.sock" rm -f $ids >/dev/null || true
    vols=$(docker -H "unix://$S/s$n/run/docker.sock" volume ls -q --filter name='^odysseus-deployment-')
    [ -n "$vols" ] && docker -H "unix://$S/s$n/run/docker.sock" volume rm $vols >/dev/null || true
done
