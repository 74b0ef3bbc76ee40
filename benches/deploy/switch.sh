#!/usr/bin/env bash
# Two odysseus builds side by side on the test bed's fake servers (A on s1, B on s2, over
# SSH, each with its own Caddy): deploy wall time, switch latency (add-upstream started →
# first response from the new version) and requests per kind of client, rounds
# interleaved. See switch.py.
# Usage: benches/deploy/switch.sh BIN_A BIN_B [ROUNDS]   (release builds; test bed up)
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-20}
S=/var/lib/odysseus-testbed
bash testbed/testbed.sh up >/dev/null 2>&1
WORK=$(mktemp -d)
for n in 1 2; do
    docker save odysseus-demo:v1 odysseus-demo:v2 odysseus-testbed/caddy:2.11.7 | docker -H "unix://$S/s$n/run/docker.sock" load -q >/dev/null
    # Each build sets up its own Caddy, as it would on a fresh server.
    docker -H "unix://$S/s$n/run/docker.sock" rm -f odysseus-caddy >/dev/null 2>&1 || true
    docker -H "unix://$S/s$n/run/docker.sock" volume rm -f odysseus-caddy-config odysseus-caddy-data >/dev/null 2>&1 || true
done
i=0
for who in a b; do
    i=$((i + 1))
    cat > "$WORK/$who.yml" <<YAML
service: switch$who
image: odysseus-demo
servers:
  web:
    hosts: [198.51.100.1$i]
proxy:
  app_port: 3000
  hosts: [switch$who.test]
  ssl: false
  http_port: 80
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
ssh:
  keys: [$S/id_ed25519]
  known_hosts: $S/known_hosts
YAML
done
"$A" deploy -c "$WORK/a.yml" --image v1 >/dev/null 2>&1
"$B" deploy -c "$WORK/b.yml" --image v1 >/dev/null 2>&1
python3 benches/deploy/switch.py "$A" "$B" "$ROUNDS" "$WORK" 198.51.100.11:80 198.51.100.12:80
for n in 1 2; do
    ids=$(docker -H "unix://$S/s$n/run/docker.sock" ps -aq --filter label=odysseus.service)
    [ -z "$ids" ] || docker -H "unix://$S/s$n/run/docker.sock" rm -f $ids >/dev/null
    docker -H "unix://$S/s$n/run/docker.sock" rm -f odysseus-caddy >/dev/null 2>&1 || true
done
rm -rf "$WORK"
