#!/bin/sh
# The monitor's heartbeat: when every check that runs on this host has run recently (its state
# file is younger than the given age), records the time for the other hosts' monitor-heartbeat
# checks and pings the dead-man's switch URL; otherwise pings <url>/fail, naming the checks that
# stopped (the healthchecks.io convention). A stopped or dead monitor stops pinging altogether,
# which the dead-man's switch reports by itself.
#
# Usage: heartbeat.sh /etc/upkeep/heartbeat.env
# The file sets UPKEEP_HEARTBEAT_URL_FILE (0600; the URL embeds its key, so curl reads it from a
# private config file, never its command line) and UPKEEP_HEARTBEAT_CHECKS ("<check id>:<max
# age in seconds>" words).
#
# The time goes to UPKEEP_LIVENESS_DIR (/var/lib/upkeep-liveness, 0755, the file 0644), not under
# /var/lib/upkeep (0700: it holds keys and secrets): serve-liveness.sh answers the other hosts
# without privileges (a dynamic user), and this time is all it may read.
set -eu

config=${1:?usage: heartbeat.sh <heartbeat.env>}
# shellcheck source=/dev/null
. "$config"
state=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
liveness=${UPKEEP_LIVENESS_DIR:-/var/lib/upkeep-liveness}
now=$(date +%s)

stale=
for entry in $UPKEEP_HEARTBEAT_CHECKS; do
  id=${entry%:*} max=${entry##*:}
  file="$state/checks/$id"
  if [ ! -f "$file" ] || [ $((now - $(stat -c %Y "$file"))) -gt "$max" ]; then stale="$stale $id"; fi
done

# systemd creates the directory (StateDirectory=, 0755); the modes are set here all the same, so
# that a umask of 077 cannot hide the time from the server.
mkdir -p "$liveness"
chmod 0755 "$liveness"
request=$(mktemp)
trap 'rm -f "$request"' EXIT
# curl config syntax: a quoted string with backslash and quote escaped.
quoted() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
url=$(cat "$UPKEEP_HEARTBEAT_URL_FILE")
url=${url%/}
if [ -z "$stale" ]; then
  echo "$now" >"$liveness/last.new"
  chmod 0644 "$liveness/last.new"
  mv "$liveness/last.new" "$liveness/last"
  printf 'url = "%s"\n' "$(quoted "$url")" >"$request"
  echo "heartbeat: all checks ran"
else
  printf 'url = "%s/fail"\n' "$(quoted "$url")" >"$request"
  echo "heartbeat: checks stopped:$stale" >&2
fi
printf 'checks stopped:%s\n' "${stale:- none}" | curl -fsS --max-time 20 --retry 2 --config "$request" --data-binary @- -o /dev/null
