#!/usr/bin/env bash
# The same raw steps as one odysseus web deploy, with the docker CLI and curl and no
# journal, no checks beyond health: the baseline for odysseus's overhead.
set -euo pipefail
svc=$1; n=$2
# Caddy's admin API listens on its container's loopback: reach it from inside.
admin() { # METHOD PATH [BODY]
    printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:2019\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "${#3}" "${3:-}" | docker exec -i odysseus-caddy nc 127.0.0.1 2019
}
new="$svc-raw-$n"
old=$(docker ps --filter "label=odysseus.service=$svc" --format '{{.Names}}' | head -n1)
v=$([ $((n % 2)) = 0 ] && echo v1 || echo v2)
docker run -d --name "$new" --network odysseus --label "odysseus.service=$svc" --label "odysseus.role=web" \
    --label "odysseus.version=$v" --restart unless-stopped "odysseus-demo:$v" >/dev/null
ip=$(docker inspect -f '{{(index .NetworkSettings.Networks "odysseus").IPAddress}}' "$new")
until curl -sf "http://$ip:3000/health" >/dev/null; do sleep 0.05; done
ups=$(admin GET "/id/odysseus-proxy-$svc/upstreams" "")
admin PATCH "/id/odysseus-proxy-$svc/upstreams" "[{\"dial\":\"$new:3000\"},{\"dial\":\"$old:3000\"}]" >/dev/null
admin PATCH "/id/odysseus-proxy-$svc/upstreams" "[{\"dial\":\"$new:3000\"}]" >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' "$old")
grep -c ' 01 ' "/proc/$pid/net/tcp" >/dev/null || true
docker stop -t 10 "$old" >/dev/null
docker rm "$old" >/dev/null
: "$ups"
