#!/usr/bin/env bash
# Deploy benchmarks against the real test bed (numbers go to BENCHMARKS.md):
#  1. wall time of `odysseus deploy` for an instantly healthy app on one host, split into
#     Docker/Caddy time (the sum of step durations it reports) and odysseus's own overhead,
#     beside raw.sh doing the same raw steps with the docker CLI and curl, same run;
#  2. requests, failures and latency through Caddy during a series of deploys, counted per
#     kind of client (fresh connections, keep-alive connections, long requests).
# Usage: benches/deploy/run.sh [ROUNDS]   (needs `testbed/testbed.sh up`; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-10}
bash testbed/testbed.sh up >/dev/null
bash testbed/testbed.sh clean
# ODYSSEUS_BIN measures another build (e.g. an older commit's, for a side-by-side run).
if [ -z "${ODYSSEUS_BIN:-}" ]; then
    cargo build --release -q -p odysseus
    BIN="${CARGO_TARGET_DIR:-target}/release/odysseus"
else
    BIN="$ODYSSEUS_BIN"
fi
WORK=$(mktemp -d)
cat > "$WORK/deploy.yml" <<'YAML'
service: bench
image: odysseus-demo
servers:
  web:
    hosts: [local]
proxy:
  app_port: 3000
  hosts: [bench.test]
  ssl: false
  http_port: 18090
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
YAML
ms() { date +%s%3N; }
"$BIN" deploy -c "$WORK/deploy.yml" --image v1 >/dev/null 2>&1

echo "== odysseus deploy x$ROUNDS"
: > "$WORK/odysseus.tsv"
v=v1
for i in $(seq 1 "$ROUNDS"); do
    v=$([ "$v" = v1 ] && echo v2 || echo v1)
    t0=$(ms)
    "$BIN" deploy -c "$WORK/deploy.yml" --image "$v" >/dev/null 2>"$WORK/err"
    t1=$(ms)
    steps=$(grep -o ' ok [0-9.]*s' "$WORK/err" | awk '{s+=substr($2,1,length($2)-1)} END {printf "%d", s*1000}')
    printf '%s\t%s\n' $((t1 - t0)) "$steps" >> "$WORK/odysseus.tsv"
done

echo "== raw docker CLI + curl x$ROUNDS"
: > "$WORK/raw.tsv"
for i in $(seq 1 "$ROUNDS"); do
    t0=$(ms)
    bash benches/deploy/raw.sh bench "$i" >/dev/null
    t1=$(ms)
    printf '%s\n' $((t1 - t0)) >> "$WORK/raw.tsv"
done

python3 - "$WORK" <<'PY'
import sys, statistics as st
w = sys.argv[1]
rows = [tuple(map(int, l.split())) for l in open(f"{w}/odysseus.tsv")]
raw = [int(l) for l in open(f"{w}/raw.tsv")]
wall = [r[0] for r in rows]; steps = [r[1] for r in rows]; over = [a - b for a, b in rows]
print(f"odysseus wall      median {st.median(wall):7.0f} ms  (min {min(wall)}, max {max(wall)})")
print(f"  docker/caddy     median {st.median(steps):7.0f} ms  (sum of step durations)")
print(f"  own overhead     median {st.median(over):7.0f} ms  (process start, config, journal, planning)")
print(f"raw script wall    median {st.median(raw):7.0f} ms  (min {min(raw)}, max {max(raw)})")
print(f"ratio odysseus/raw        {st.median(wall)/st.median(raw):.2f}")
PY

echo "== load through Caddy during $ROUNDS deploys (2 workers each: fresh connections, keep-alive back to back, 2 s requests)"
python3 benches/deploy/load.py bench.test 18090 2 fresh,keepalive,long &
LOAD=$!
sleep 1
for i in $(seq 1 "$ROUNDS"); do
    v=$([ "$v" = v1 ] && echo v2 || echo v1)
    "$BIN" deploy -c "$WORK/deploy.yml" --image "$v" >/dev/null 2>&1
done
sleep 1
kill -INT "$LOAD"; wait "$LOAD" || true
bash testbed/testbed.sh clean
rm -rf "$WORK"
