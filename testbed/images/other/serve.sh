#!/bin/sh
# PID 1 of the "other" app: busybox httpd on $PORT; on TERM, stop accepting and wait for
# the requests in flight before exiting.
httpd -f -p "${PORT:-8080}" -h /www &
server=$!
drain() {
    kill "$server" 2>/dev/null
    while cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^httpd$' >/dev/null; do sleep 0.1; done
    exit 0
}
trap drain TERM INT
wait "$server"
