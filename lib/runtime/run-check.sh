#!/bin/sh
# Runs one monitoring check, counts consecutive failures and successes, and alerts every route
# after UPKEEP_FAILURE_THRESHOLD failures in a row, with a recovery notice after
# UPKEEP_RECOVERY_THRESHOLD successes in a row.
#
# Usage: run-check.sh /etc/upkeep/checks/<id>.env
# The check programs follow the Nagios convention: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
# and print one line saying why. This program itself exits 0 unless it cannot run, so a failing
# check never shows up as a failed unit (which the failed-units check would report again).
set -eu

config=${1:?usage: run-check.sh <check.env>}
runtime_dir=$(dirname "$0")
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks
set -a
# shellcheck source=/dev/null
. "$config"
set +a
: "${UPKEEP_CHECK_ID:?}" "${UPKEEP_CHECK_KIND:?}" "${UPKEEP_FAILURE_THRESHOLD:?}" "${UPKEEP_RECOVERY_THRESHOLD:?}"

case $UPKEEP_CHECK_KIND in *[!a-z-]*) echo "run-check: bad check kind: $UPKEEP_CHECK_KIND" >&2; exit 2 ;; esac

mkdir -p "$state_dir"
state="$state_dir/$UPKEEP_CHECK_ID"
# Loaded before the check runs: the file also records the previous severity and since when it holds.
failures=0 successes=0 alerted=0 severity='' since=''
if [ -f "$state" ]; then
  # shellcheck source=/dev/null
  . "$state"
fi

previous=$severity
rc=0
output=$("$runtime_dir/check-$UPKEEP_CHECK_KIND.sh" 2>&1) || rc=$?
message=$(printf '%s\n' "$output" | head -n 1)
case $rc in
  0) severity=ok ;;
  1) severity=warning ;;
  2) severity=critical ;;
  *) severity=unknown ;;
esac
echo "$UPKEEP_CHECK_ID: $severity: $message"
now=$(date +%s)
# Since when the check has been passing or failing: what `upkeep status` reports and measures the
# time to alert from.
case $previous/$severity in
  ok/ok) ;;
  ok/* | /* | */ok) since=$now ;;
esac
[ -n "$since" ] || since=$now

if [ "$severity" = ok ]; then
  failures=0 successes=$((successes + 1))
else
  failures=$((failures + 1)) successes=0
fi

send() {
  sent=0
  for route in ${UPKEEP_ROUTES:-}; do
    if "$runtime_dir/alert.sh" "${UPKEEP_ALERT_DIR:-/etc/upkeep/alert}/$route.env" "$1" "$severity" "$message" "$failures" "$successes"; then
      sent=1
    fi
  done
  # Alerts a route took, for `upkeep status` (alerts sent, time to alert).
  [ "$sent" = 0 ] || echo "$now $UPKEEP_CHECK_ID $1" >>"$state_dir/alerts.log"
  [ "$sent" = 1 ]
}

if [ "$alerted" = 0 ] && [ "$failures" -ge "$UPKEEP_FAILURE_THRESHOLD" ]; then
  # Marked alerted only once some route took the alert; otherwise the next run tries again.
  if send firing; then alerted=1; else echo "run-check: no route accepted the alert" >&2; fi
elif [ "$alerted" = 1 ] && [ "$successes" -ge "$UPKEEP_RECOVERY_THRESHOLD" ]; then
  if send resolved; then alerted=0; else echo "run-check: no route accepted the recovery notice" >&2; fi
fi

printf '%s\n' "$message" >"$state.message"
printf 'failures=%s\nsuccesses=%s\nalerted=%s\nseverity=%s\nsince=%s\n' "$failures" "$successes" "$alerted" "$severity" "$since" >"$state.new"
mv "$state.new" "$state"
