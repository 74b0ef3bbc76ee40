#!/bin/sh
# PID 1 of the demo app. busybox httpd ignores SIGTERM as PID 1, so this wrapper runs it
# in the background and, on TERM, stops accepting and waits for requests in flight
# (each is a forked httpd or CGI child) before exiting.
httpd -f -p 3000 -h /www &
server=$!
drain() {
    kill "$server" 2>/dev/null
    # Each request in flight is served by a forked httpd: wait until none is left.
    while cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^httpd$' >/dev/null; do sleep 0.1; done
    exit 0
}
trap drain TERM INT
wait "$server"
