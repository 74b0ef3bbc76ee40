#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root) or a developer's checkout.
# This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo is not installed; install Rust (rustup) first" >&2
    exit 2
fi

# The test bed (dockerd, Caddy, sshd, fake servers) is set up here once the tests that
# need it exist; today's suite needs only Rust.

echo "== cargo test --workspace"
cargo test --workspace --locked
