#!/bin/sh
# Watches the watcher: reads the time the monitor's checks last all ran from its liveness socket
# and is CRITICAL when that is older than UPKEEP_HEARTBEAT_MAX_AGE seconds or the monitor does
# not answer, so a dead or stopped monitor is noticed by the hosts it watches.
#
# A provisioned monitor has no address in the policy: instead of UPKEEP_HEARTBEAT_URL the check
# gets UPKEEP_HEARTBEAT_PORT, and asks at the address bin/apply pinned on this host
# (/var/lib/upkeep/peers/addresses, "HOST ADDRESS"). Without it the check cannot look: UNKNOWN.
set -eu

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
if ! last=$(curl -fsS --max-time 10 -- "$UPKEEP_HEARTBEAT_URL" 2>&1); then
  echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR does not answer at $UPKEEP_HEARTBEAT_URL: $last"
  exit 2
fi
case $last in
  '' | *[!0-9]*) echo "UNKNOWN: monitor $UPKEEP_HEARTBEAT_MONITOR answered something that is not a time"; exit 3 ;;
esac
age=$(($(date +%s) - last))
if [ "$age" -gt "$UPKEEP_HEARTBEAT_MAX_AGE" ]; then
  echo "CRITICAL: monitor $UPKEEP_HEARTBEAT_MONITOR silent: its checks last all ran ${age}s ago (more than ${UPKEEP_HEARTBEAT_MAX_AGE}s)"
  exit 2
fi
echo "OK: monitor $UPKEEP_HEARTBEAT_MONITOR's checks all ran ${age}s ago"
