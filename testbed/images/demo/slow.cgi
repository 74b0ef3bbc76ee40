#!/bin/sh
# /cgi-bin/slow?s=N answers after N seconds (default 3).
secs=$(echo "$QUERY_STRING" | sed -n 's/.*s=\([0-9]*\).*/\1/p')
sleep "${secs:-3}"
printf 'Content-Type: text/plain\r\n\r\n'
cat /www/index.html
