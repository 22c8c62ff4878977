#!/bin/sh
# Runs one monitoring check, counts consecutive failures and successes, and alerts every route
# after UPKEEP_FAILURE_THRESHOLD failures in a row, with a recovery notice after
# UPKEEP_RECOVERY_THRESHOLD successes in a row. While alerted, every run offers the alert to each
# route again (alert.sh decides: Alertmanager gets it each time, others when a reminder is due).
#
# Usage: run-check.sh /etc/upkeep/checks/<id>.env
# The check programs follow the Nagios convention: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
# and print one line saying why. This program exits with the same status (any other status of a
# check program is UNKNOWN), so the health gate reads the severity from the unit's exit status;
# the unit counts 1-3 as success, so a failing check never shows up as a failed unit (which the
# failed-units check would report again). When this program itself cannot run, it exits 4: a
# failed unit. The rule for UNKNOWN is in the README ("What a check's severity means").
set -eu
trap '[ "${finished:-0}" = 1 ] || exit 4' EXIT

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
# Loaded before the check runs: the file also records the previous severity and since when it
# holds (since), and when the current incident started (failing_since).
failures=0 successes=0 alerted=0 severity='' since='' failing_since=0 alerted_severity=
if [ -f "$state" ]; then
  # shellcheck source=/dev/null
  . "$state"
fi

previous=$severity
rc=0
output=$("$runtime_dir/check-$UPKEEP_CHECK_KIND.sh" 2>&1) || rc=$?
# The time the check gave its answer: a failure is dated when it was observed, never before the
# fault (a run that began just before the fault and saw it is not dated earlier than the fault).
now=$(date +%s)
message=$(printf '%s\n' "$output" | head -n 1)
case $rc in
  0) severity=ok ;;
  1) severity=warning ;;
  2) severity=critical ;;
  *) severity=unknown rc=3 ;;
esac
echo "$UPKEEP_CHECK_ID: $severity: $message"
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
  # An incident starts at its first failure; a success short of recovery does not restart it.
  if [ "$failures" = 0 ] && [ "$alerted" = 0 ]; then failing_since=$now; fi
  failures=$((failures + 1)) successes=0
fi

# One line per firing or resolved notice. Bounded: status reads only the newest 200 lines, so once
# the log passes 2,000 lines it keeps the newest 1,000.
log_alert() {
  log="$state_dir/alerts.log"
  echo "$now $UPKEEP_CHECK_ID $1" >>"$log"
  if [ "$(wc -l <"$log")" -gt 2000 ]; then
    tail -n 1000 "$log" >"$log.new" && mv "$log.new" "$log"
  fi
}

send() {
  sent=0
  export UPKEEP_FAILING_SINCE="$failing_since" UPKEEP_ALERTED_SEVERITY="$alerted_severity" UPKEEP_OBSERVED_AT="$now"
  for route in ${UPKEEP_ROUTES:-}; do
    if "$runtime_dir/alert.sh" "${UPKEEP_ALERT_DIR:-/etc/upkeep/alert}/$route.env" "$1" "$severity" "$message" "$failures" "$successes"; then
      sent=1
    fi
  done
  # Alerts a route took, for `upkeep status` (alerts sent, time to alert).
  # Reminders are not logged: while firing, Alertmanager is offered the alert on every run.
  if [ "$sent" = 1 ] && [ "$1" != repeat ]; then log_alert "$1"; fi
  [ "$sent" = 1 ]
}

if [ "$alerted" = 0 ] && [ "$failures" -ge "$UPKEEP_FAILURE_THRESHOLD" ]; then
  # Marked alerted only once some route took the alert; otherwise the next run tries again.
  if send firing; then alerted=1 alerted_severity=$severity; else echo "run-check: no route accepted the alert" >&2; fi
elif [ "$alerted" = 1 ] && [ "$successes" -ge "$UPKEEP_RECOVERY_THRESHOLD" ]; then
  if send resolved; then alerted=0 alerted_severity=; else echo "run-check: no route accepted the recovery notice" >&2; fi
elif [ "$alerted" = 1 ]; then
  if send repeat && [ "$severity" != ok ]; then alerted_severity=$severity; fi
fi

printf '%s\n' "$message" >"$state.message"
printf 'failures=%s\nsuccesses=%s\nalerted=%s\nseverity=%s\nsince=%s\nfailing_since=%s\nalerted_severity=%s\n' "$failures" "$successes" "$alerted" "$severity" "$since" "$failing_since" "$alerted_severity" >"$state.new"
mv "$state.new" "$state"
"$runtime_dir/write-metrics.sh" || echo "run-check: could not write the metrics file for node_exporter" >&2
finished=1
exit "$rc"
