#!/bin/sh
# Runs one monitoring check, counts consecutive failures and successes, and alerts every route
# after UPKEEP_FAILURE_THRESHOLD failures in a row, with a recovery notice after
# UPKEEP_RECOVERY_THRESHOLD successes in a row.
#
# Delivery is tracked per route (<state>/checks/<id>.<route>.told: the severity and incident the
# route was last told of; empty once told of the recovery), so that every route hears of every
# incident, whatever the others did:
# - a route that has not taken the firing notice of the current incident, or was told of a lower
#   severity than the check now has (a warning that became critical), is sent a firing notice;
# - a route that was told of an incident that has recovered is sent the recovery notice;
# - otherwise, while firing, each route is offered the alert again (alert.sh decides: Alertmanager
#   gets it each time, others when a reminder is due).
# A notice a route did not take is offered again at the start of the next run, before its check,
# and after the check. Severities rank OK < WARNING < UNKNOWN < CRITICAL for escalation: a
# reading that says something is broken is worse than one that could not be taken.
#
# Usage: run-check.sh /etc/upkeep/checks/<id>.env
# The check programs follow the Nagios convention: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
# and print one line saying why. This program exits with the same status (any other status of a
# check program is UNKNOWN), so the health gate reads the severity from the unit's exit status;
# the unit counts 1-3 as success, so a failing check never shows up as a failed unit (which the
# failed-units check would report again). It exits 5 when some route did not take a notice it
# was due (a firing or recovery notice, a reminder, an Alertmanager re-send): a failed unit, which
# the failed-units check, the health gate and `upkeep status` report, since an alert that reaches
# nobody must not pass in silence. When this program itself cannot run, it exits 4: a failed
# unit too. The rule for UNKNOWN is in the README ("What a check's severity means").
set -eu
trap '[ "${finished:-0}" = 1 ] || exit 4' EXIT

config=${1:?usage: run-check.sh <check.env>}
runtime_dir=$(dirname "$0")
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks
alert_dir=${UPKEEP_ALERT_DIR:-/etc/upkeep/alert}
set -a
# shellcheck source=/dev/null
. "$config"
set +a
: "${UPKEEP_CHECK_ID:?}" "${UPKEEP_CHECK_KIND:?}" "${UPKEEP_FAILURE_THRESHOLD:?}" "${UPKEEP_RECOVERY_THRESHOLD:?}"

case $UPKEEP_CHECK_KIND in *[!a-z-]*) echo "run-check: bad check kind: $UPKEEP_CHECK_KIND" >&2; exit 2 ;; esac

mkdir -p "$state_dir"
state="$state_dir/$UPKEEP_CHECK_ID"
# Loaded before the check runs: the file also records the previous severity and since when it
# holds (since), when the current incident started (failing_since), the highest severity it has
# reached while alerted (alerted_severity), and the highest one some route was told of (notified).
failures=0 successes=0 alerted=0 severity='' since='' failing_since=0 alerted_severity='' notified='' routes_told=''
known=0
if [ -f "$state" ]; then
  # shellcheck source=/dev/null
  . "$state"
  known=1
fi
message=$(head -n 1 "$state.message" 2>/dev/null || true)
now=$(date +%s)

told_file() { echo "$state_dir/$UPKEEP_CHECK_ID.$1.told"; }

# State written before delivery was tracked per route: an alerted check had reached its routes.
if [ -z "$routes_told" ] && [ "$alerted" = 1 ]; then
  for route in ${UPKEEP_ROUTES:-}; do
    [ -f "$(told_file "$route")" ] || echo "${alerted_severity:-unknown} $failing_since" >"$(told_file "$route")"
  done
  notified=${alerted_severity:-unknown}
fi
routes_told=1

rank() {
  case $1 in
    warning) echo 1 ;;
    unknown) echo 2 ;;
    critical) echo 3 ;;
    *) echo 0 ;;
  esac
}

# One line per firing or resolved notice some route took. Bounded: status reads only the newest 200
# lines, so once the log passes 2,000 lines it keeps the newest 1,000.
log_alert() {
  log="$state_dir/alerts.log"
  echo "$now $UPKEEP_CHECK_ID $1" >>"$log"
  if [ "$(wc -l <"$log")" -gt 2000 ]; then
    tail -n 1000 "$log" >"$log.new" && mv "$log.new" "$log"
  fi
}

save_state() {
  printf '%s\n' "$message" >"$state.message"
  printf 'failures=%s\nsuccesses=%s\nalerted=%s\nseverity=%s\nsince=%s\nfailing_since=%s\nalerted_severity=%s\nnotified=%s\nroutes_told=%s\n' \
    "$failures" "$successes" "$alerted" "$severity" "$since" "$failing_since" "$alerted_severity" "$notified" "$routes_told" >"$state.new"
  mv "$state.new" "$state"
}

# deliver owed|all: offers each route what it is due. "owed": only the notices it has not taken
# (before the check runs, from the last run's state); "all": reminders and re-sends as well.
# Sets `undelivered` to the routes that did not take what they were offered.
deliver() {
  undelivered=
  export UPKEEP_FAILING_SINCE="$failing_since" UPKEEP_OBSERVED_AT="$now"
  for route in ${UPKEEP_ROUTES:-}; do
    told='' told_since=''
    if [ -f "$(told_file "$route")" ]; then read -r told told_since <"$(told_file "$route")" || true; fi
    if [ "$alerted" = 1 ]; then
      # Between the first success and the recovery threshold the alert still stands as alerted.
      level=$severity
      [ "$level" != ok ] || level=${alerted_severity:-unknown}
      if [ -z "$told" ] || [ "$told_since" != "$failing_since" ] || [ "$(rank "$level")" -gt "$(rank "$told")" ]; then
        status=firing
      elif [ "$1" = all ]; then
        status=repeat
        [ "$severity" != ok ] || level=$told
      else
        continue
      fi
    elif [ -n "$told" ]; then
      status=resolved level=$severity
    else
      continue
    fi
    if UPKEEP_ALERTED_SEVERITY=$told "$runtime_dir/alert.sh" "$alert_dir/$route.env" "$status" "$level" "$message" "$failures" "$successes"; then
      # Alerts some route took, for `upkeep status` (alerts sent, time to alert): each notice
      # once, however many routes take it and however late.
      if [ "$status" = firing ] && [ "$(rank "$level")" -gt "$(rank "$notified")" ]; then
        notified=$level
        log_alert firing
      elif [ "$status" = resolved ] && [ -n "$notified" ]; then
        notified=
        log_alert resolved
      fi
    else
      undelivered="$undelivered $route"
    fi
  done
}

# What the last run left undelivered (a mail relay that was down, an expired token) goes out
# first: waiting for this run's check would add its whole duration to the delay.
if [ "$known" = 1 ]; then deliver owed; fi

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

if [ "$alerted" = 0 ] && [ "$failures" -ge "$UPKEEP_FAILURE_THRESHOLD" ]; then
  alerted=1 alerted_severity=$severity notified=
elif [ "$alerted" = 1 ] && [ "$successes" -ge "$UPKEEP_RECOVERY_THRESHOLD" ]; then
  alerted=0 alerted_severity=
fi
if [ "$alerted" = 1 ] && [ "$(rank "$severity")" -gt "$(rank "$alerted_severity")" ]; then alerted_severity=$severity; fi

# The check's answer is recorded before any route is tried: a delivery that hangs until systemd
# stops the run must not lose it.
save_state
deliver all
save_state
"$runtime_dir/write-metrics.sh" || echo "run-check: could not write the metrics file for node_exporter" >&2
if [ -n "$undelivered" ]; then
  echo "run-check: not delivered to route(s)$undelivered; offered again on the next run" >&2
  rc=5
fi
finished=1
exit "$rc"
