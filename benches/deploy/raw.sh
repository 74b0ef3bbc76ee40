#!/usr/bin/env bash
# The same raw steps as one odysseus web deploy, with the docker CLI and curl and no
# journal, no checks beyond health: the baseline for odysseus's overhead.
set -euo pipefail
svc=$1; n=$2
admin=http://127.0.0.1:2019
new="$svc-raw-$n"
old=$(docker ps --filter "label=odysseus.service=$svc" --format '{{.Names}}' | head -n1)
v=$([ $((n % 2)) = 0 ] && echo v1 || echo v2)
docker run -d --name "$new" --network odysseus --label "odysseus.service=$svc" --label "odysseus.role=web" \
    --label "odysseus.version=$v" --restart unless-stopped "odysseus-demo:$v" >/dev/null
ip=$(docker inspect -f '{{(index .NetworkSettings.Networks "odysseus").IPAddress}}' "$new")
until curl -sf "http://$ip:3000/health" >/dev/null; do sleep 0.05; done
ups=$(curl -s -H 'Host: 127.0.0.1:2019' "$admin/id/odysseus-proxy-$svc/upstreams")
curl -s -X PATCH -H 'Host: 127.0.0.1:2019' -H 'Content-Type: application/json' \
    -d "[{\"dial\":\"$new:3000\"},{\"dial\":\"$old:3000\"}]" "$admin/id/odysseus-proxy-$svc/upstreams" >/dev/null
curl -s -X PATCH -H 'Host: 127.0.0.1:2019' -H 'Content-Type: application/json' \
    -d "[{\"dial\":\"$new:3000\"}]" "$admin/id/odysseus-proxy-$svc/upstreams" >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' "$old")
grep -c ' 01 ' "/proc/$pid/net/tcp" >/dev/null || true
docker stop -t 10 "$old" >/dev/null
docker rm "$old" >/dev/null
: "$ups"
