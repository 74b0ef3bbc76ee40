#!/usr/bin/env bash
# Quick start: on a fresh Debian machine (as root, with Rust), set up Docker and Caddy,
# build odysseus and deploy a demo app v1 and then v2 on this machine, with zero downtime.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "demo.sh: cargo is not installed; install Rust (rustup) first" >&2
    exit 2
fi

bash testbed/testbed.sh up
cargo build --locked -q -p odysseus
odysseus="${CARGO_TARGET_DIR:-target}/debug/odysseus"

mkdir -p demo
cat > demo/deploy.yml <<'YAML'
# The demo app (built by testbed/testbed.sh): busybox httpd answering its version.
service: demo
image: odysseus-demo
servers:
  web:
    hosts: [local]
proxy:
  app_port: 3000
  ssl: false
  http_port: 8080
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
YAML

echo; echo "== deploy v1"
"$odysseus" deploy -c demo/deploy.yml --image v1
echo "curl http://127.0.0.1:8080/ -> $(curl -s http://127.0.0.1:8080/)"

echo; echo "== deploy v2"
"$odysseus" deploy -c demo/deploy.yml --image v2
echo "curl http://127.0.0.1:8080/ -> $(curl -s http://127.0.0.1:8080/)"

echo; echo "The journal of both deployments is in demo/.odysseus/."
echo "Remove the demo with: bash testbed/testbed.sh clean"
