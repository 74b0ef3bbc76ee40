#!/usr/bin/env bash
# Build + deploy of a small app with a warm layer cache, two ways in one run, rounds
# interleaved so both see the same machine: (A) `odysseus deploy` building the commit
# itself, (B) `docker build` then `odysseus deploy --image VERSION --no-build`. Every
# round commits a changed page, so each deploy ships a new version built from the cache
# except its last layer. Prints the median and min/max wall time of each, in ms.
# Usage: benches/build/compare.sh [ODYSSEUS_BIN] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/odysseus}
ROUNDS=${2:-8}
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
app() { # name
    local dir="$WORK/$1"
    mkdir -p "$dir/site"
    cat > "$dir/deploy.yml" <<YAML
service: $1
image: odysseus-bench-$1
servers:
  web:
    hosts: [local]
proxy:
  app_port: 3000
  hosts: [$1.test]
  ssl: false
  http_port: 18080
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
    interval: 1
YAML
    printf 'FROM odysseus-demo:v1\nCOPY site/ /www/\n' > "$dir/Dockerfile"
    printf '.odysseus/\n' > "$dir/.gitignore"
    echo ok > "$dir/site/health"
    git -C "$dir" init -q
}
commit() { # name round
    local dir="$WORK/$1"
    echo "round $2" > "$dir/site/index.html"
    git -C "$dir" add -A
    git -C "$dir" -c user.name=b -c user.email=b@b commit -q -m "round $2"
    git -C "$dir" rev-parse HEAD | cut -c1-12
}
ms() { date +%s%3N; }
app benchbuilda
app benchbuildb
# Warm-up: the first deploy of each creates its route and fills the cache.
commit benchbuilda 0 >/dev/null
"$BIN" deploy -c "$WORK/benchbuilda/deploy.yml" >/dev/null 2>&1
v=$(commit benchbuildb 0)
docker build -q -t "odysseus-bench-benchbuildb:$v" "$WORK/benchbuildb" >/dev/null
"$BIN" deploy -c "$WORK/benchbuildb/deploy.yml" --image "$v" --no-build >/dev/null 2>&1
a=() b=()
for r in $(seq 1 "$ROUNDS"); do
    commit benchbuilda "$r" >/dev/null
    t0=$(ms)
    "$BIN" deploy -c "$WORK/benchbuilda/deploy.yml" >/dev/null 2>&1
    a+=($(( $(ms) - t0 )))
    v=$(commit benchbuildb "$r")
    t0=$(ms)
    docker build -q -t "odysseus-bench-benchbuildb:$v" "$WORK/benchbuildb" >/dev/null
    "$BIN" deploy -c "$WORK/benchbuildb/deploy.yml" --image "$v" --no-build >/dev/null 2>&1
    b+=($(( $(ms) - t0 )))
done
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "median %d ms (min %d, max %d, n=%d)", m, v[1], v[NR], NR}'; }
echo "A odysseus deploy (builds):           $(stats "${a[@]}")"
echo "B docker build + deploy --no-build:   $(stats "${b[@]}")"
for s in benchbuilda benchbuildb; do
    docker ps -aq --filter "label=odysseus.service=$s" | xargs -r docker rm -f >/dev/null
    docker images -q "odysseus-bench-$s" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
done
