#!/bin/sh
# Watches the watcher: reads the time the monitor's checks last all ran from its liveness socket
# and is CRITICAL when that is older than UPKEEP_HEARTBEAT_MAX_AGE seconds or the monitor does
# not answer, so a dead or stopped monitor is noticed by the hosts it watches. A monitor that has
# recorded no time yet (serve-liveness.sh: 503, "set up at T") has UPKEEP_HEARTBEAT_MAX_AGE from T.
#
# A provisioned monitor has no address in the policy: instead of UPKEEP_HEARTBEAT_URL the check
# gets UPKEEP_HEARTBEAT_PORT, and asks at the address bin/apply pinned on this host
# (/var/lib/upkeep/peers/addresses, "HOST ADDRESS"). Without it the check cannot look: UNKNOWN.
set -eu
nl='
'

: "${UPKEEP_HEARTBEAT_MONITOR:?}" "${UPKEEP_HEARTBEAT_MAX_AGE:?}"
if [ -z "${UPKEEP_HEARTBEAT_URL:-}" ]; then
  : "${UPKEEP_HEARTBEAT_PORT:?}"
  pins=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/peers/addresses
  address=$(sed -n "s/^$UPKEEP_HEARTBEAT_MONITOR \([0-9A-Fa-f.:]*\)\$/\1/p" "$pins" 2>/dev/null | head -n 1)
  if [ -z "$address" ]; then
    echo "UNKNOWN: monitor $UPKEEP_HEARTBEAT_MONITOR is provisioned, and bin/apply has not pinned its address on this host ($pins)"
    exit 3
  fi
  case $address in
    *:*) UPKEEP_HEARTBEAT_URL="http://[$address]:$UPKEEP_HEARTBEAT_PORT/" ;;
    *) UPKEEP_HEARTBEAT_URL="http://$address:$UPKEEP_HEARTBEAT_PORT/" ;;
  esac
fi
# The answer's status code on a line of its own after the body: 503 is an answer too.
if ! answer=$(curl -sS --max-time 10 -w '\n%{http_code}' -- "$UPKEEP_HEARTBEAT_URL" 2>&1); then
  echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR does not answer at $UPKEEP_HEARTBEAT_URL: $answer"
  exit 2
fi
code=${answer##*"$nl"}
# The body without its trailing newlines, as a command substitution leaves it.
body=$(printf '%s' "${answer%"$nl"*}")
now=$(date +%s)
if [ "$code" = 503 ]; then
  # A monitor whose checks have not all run since its heartbeat was set up (its first rollout):
  # it has maxAge from then, as a monitor that stops has maxAge from its last heartbeat.
  since=$(printf '%s\n' "$body" | sed -n 's/^no heartbeat yet; set up at \([0-9][0-9]*\)$/\1/p')
  if [ -z "$since" ]; then
    echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR has recorded no heartbeat, and does not say since when"
    exit 2
  fi
  age=$((now - since))
  if [ "$age" -gt "$UPKEEP_HEARTBEAT_MAX_AGE" ]; then
    echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR silent: its checks have not all run since its heartbeat was set up ${age}s ago (more than ${UPKEEP_HEARTBEAT_MAX_AGE}s)"
    exit 2
  fi
  echo "OK: monitor $UPKEEP_HEARTBEAT_MONITOR has recorded no heartbeat yet: set up ${age}s ago, its checks have ${UPKEEP_HEARTBEAT_MAX_AGE}s to all run"
  exit 0
fi
if [ "$code" != 200 ]; then
  echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR answered HTTP $code at $UPKEEP_HEARTBEAT_URL"
  exit 2
fi
case $body in
  '' | *[!0-9]*) echo "UNKNOWN: monitor $UPKEEP_HEARTBEAT_MONITOR answered something that is not a time"; exit 3 ;;
esac
age=$((now - body))
if [ "$age" -gt "$UPKEEP_HEARTBEAT_MAX_AGE" ]; then
  echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR silent: its checks last all ran ${age}s ago (more than ${UPKEEP_HEARTBEAT_MAX_AGE}s)"
  exit 2
fi
echo "OK: monitor $UPKEEP_HEARTBEAT_MONITOR's checks all ran ${age}s ago"
