#!/bin/sh
# A background worker: ticks until TERM, then finishes its tick and exits 0.
trap 'echo "worker: TERM, exiting"; exit 0' TERM INT
echo "worker $(cat /www/index.html) started"
while :; do sleep 1 & wait $!; done
