#!/usr/bin/env bash
# Two odysseus builds side by side on this machine's Caddy: deploy wall time, switch
# latency (add-upstream started → first response from the new version) and requests per
# kind of client, rounds interleaved. See switch.py.
# Usage: benches/deploy/switch.sh BIN_A BIN_B [ROUNDS]   (needs `testbed/testbed.sh up`)
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-20}
PORT=18091
bash testbed/testbed.sh up >/dev/null 2>&1
WORK=$(mktemp -d)
for who in a b; do
    cat > "$WORK/$who.yml" <<YAML
service: switch$who
image: odysseus-demo
servers:
  web:
    hosts: [local]
proxy:
  app_port: 3000
  hosts: [switch$who.test]
  ssl: false
  http_port: $PORT
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
YAML
done
docker rm -f odysseus-caddy >/dev/null 2>&1 || true
docker volume rm -f odysseus-caddy-config odysseus-caddy-data >/dev/null 2>&1 || true
"$A" deploy -c "$WORK/a.yml" --image v1 >/dev/null 2>&1
"$B" deploy -c "$WORK/b.yml" --image v1 >/dev/null 2>&1
python3 benches/deploy/switch.py "$A" "$B" "$ROUNDS" "$WORK" "$PORT"
bash testbed/testbed.sh clean >/dev/null 2>&1
rm -rf "$WORK"
