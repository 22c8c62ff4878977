#!/bin/sh
# Answers one HTTP request on the monitor's liveness socket (systemd, Accept=yes) with the time
# its checks last all ran (epoch seconds), as heartbeat.sh recorded it; 503 before the first time.
# The answer is the same for every path; the request is read to its end all the same, since
# closing a socket with unread data resets the connection instead of delivering the answer.
set -eu

cr=$(printf '\r')
while read -r line; do
  case $line in '' | "$cr") break ;; esac
done
last=$(cat "${UPKEEP_STATE_DIR:-/var/lib/upkeep}/heartbeat/last" 2>/dev/null || true)
case $last in
  '' | *[!0-9]*) printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nno heartbeat yet\n' ;;
  *) printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$last" ;;
esac
