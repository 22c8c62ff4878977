#!/bin/sh
# Hands one alert to one route, and decides whether a still-failing check is re-sent: every run
# for Alertmanager (which expects alerts to be re-sent while they fire and ends them itself when
# they stop), every UPKEEP_ROUTE_REPEAT_SECONDS for webhook and e-mail routes (reminders), else
# never. Once the route took it, records what the route now knows (<id>.<route>.told, which
# run-check.sh reads): the severity and incident (UPKEEP_FAILING_SINCE) of a firing notice, and
# of an Alertmanager re-send (its label); nothing after the recovery notice. Exits non-zero when
# the route did not take it.
#
# Usage: alert.sh <route.env> firing|repeat|resolved <severity> <message> <failures> <successes>
# The route file sets UPKEEP_ROUTE_KIND (webhook, alertmanager, email) and that kind's settings.
# The check's identity and incident come from the environment run-check.sh exported:
# UPKEEP_CHECK_ID, _SUBJECT, _NAME, _KIND, _INTERVAL, UPKEEP_FAILING_SINCE (epoch of the first
# failure), UPKEEP_ALERTED_SEVERITY (the severity last alerted), UPKEEP_OBSERVED_AT (epoch of the check's answer).
set -eu

route=${1:?} status=${2:?} severity=${3:?} message=${4?} failures=${5:?} successes=${6:?}
runtime_dir=$(dirname "$0")
# Exported: the sender reads the route's settings.
set -a
# shellcheck source=/dev/null
. "$route"
set +a
: "${UPKEEP_ROUTE_KIND:?}" "${UPKEEP_CHECK_ID:?}"
now=${UPKEEP_OBSERVED_AT:-$(date +%s)}
sent_file="${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks/$UPKEEP_CHECK_ID.$(basename "$route" .env).sent"
told_file="${sent_file%.sent}.told"

if [ "$status" = repeat ]; then
  case $UPKEEP_ROUTE_KIND in
    alertmanager) ;;
    *)
      [ -n "${UPKEEP_ROUTE_REPEAT_SECONDS:-}" ] || exit 0
      last=0
      [ -f "$sent_file" ] && last=$(cat "$sent_file")
      # Runs start on a 1 s accurate timer: a reminder one second early is due, not a run late.
      [ $((now - last + 1)) -ge "$UPKEEP_ROUTE_REPEAT_SECONDS" ] || exit 0
      ;;
  esac
  # Between the first success and the recovery threshold the alert still stands as alerted.
  [ "$severity" != ok ] || severity=${UPKEEP_ALERTED_SEVERITY:-unknown}
fi

"$runtime_dir/send-$UPKEEP_ROUTE_KIND.sh" "$status" "$severity" "$message" "$failures" "$successes"
mkdir -p "$(dirname "$sent_file")"
echo "$now" >"$sent_file.new"
mv "$sent_file.new" "$sent_file"
case $status/$UPKEEP_ROUTE_KIND in
  resolved/*) : >"$told_file.new" ;;
  firing/* | repeat/alertmanager) echo "$severity ${UPKEEP_FAILING_SINCE:-0}" >"$told_file.new" ;;
  *) exit 0 ;;
esac
mv "$told_file.new" "$told_file"
