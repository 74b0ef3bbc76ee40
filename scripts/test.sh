#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root) or a developer's checkout.
# This is the command README.md names and .ci/run calls. It installs and starts what the
# tests need (docker.io, caddy, … and a local dockerd) through the project's test bed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo is not installed; install Rust (rustup) first" >&2
    exit 2
fi

echo "== test bed: packages, dockerd, images"
bash testbed/testbed.sh up
bash testbed/testbed.sh clean

echo "== build"
cargo build --workspace --locked --bins

echo "== cargo test --workspace"
status=0
cargo test --workspace --locked || status=$?

# Stop what the tests started: deployed containers, the registries, the fake servers.
bash testbed/testbed.sh clean
bash testbed/testbed.sh registry-down
bash testbed/servers.sh down
exit $status
