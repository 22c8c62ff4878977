#!/bin/sh
# Answers one HTTP request on the monitor's liveness socket (systemd, Accept=yes) with the time
# its checks last all ran (epoch seconds), as heartbeat.sh recorded it; 503 before the first time,
# saying since when the heartbeat is set up.
# It runs as an unprivileged dynamic user: it reads only the world-readable time in
# UPKEEP_LIVENESS_DIR (/var/lib/upkeep-liveness) and the modification time of the heartbeat's
# settings, never /var/lib/upkeep (0700 root, and hidden from the service).
# The answer is the same for every path; the request is read to its end all the same, since
# closing a socket with unread data resets the connection instead of delivering the answer.
set -eu

cr=$(printf '\r')
while read -r line; do
  case $line in '' | "$cr") break ;; esac
done
last=$(cat "${UPKEEP_LIVENESS_DIR:-/var/lib/upkeep-liveness}/last" 2>/dev/null || true)
# Before the first time: since when the heartbeat is set up as it is (its settings file, which a
# rollout writes only when they change), from which its watchers give it their maximum age.
since=$(stat -c %Y "${UPKEEP_CONFIG_DIR:-/etc/upkeep}/heartbeat.env" 2>/dev/null || true)
case $last in
  '' | *[!0-9]*) printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nno heartbeat yet; set up at %s\n' "$since" ;;
  *) printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$last" ;;
esac
