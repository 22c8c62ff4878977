#!/bin/sh
# POSTs one alert to Alertmanager's API (POST /api/v2/alerts), as Prometheus does: labels name
# the alert (alertname, host, check, kind, severity), startsAt is the check's first failure, and
# a firing alert carries an endsAt four re-send periods ahead (UPKEEP_CHECK_RESEND_SECONDS: the
# interval and the check's longest run, since a slow check's runs come further apart than its
# interval), so it stays active while the check keeps re-sending it each run and ends by itself if
# the sender dies. Recovery sends endsAt = now.
# When the severity changes while firing, the alert under the old severity label is ended.
#
# Usage: send-alertmanager.sh firing|repeat|resolved <severity> <message> <failures> <successes>
# Called by alert.sh with UPKEEP_ALERTMANAGER_URL (…/api/v2/alerts), optionally UPKEEP_TOKEN_FILE.
set -eu

status=${1:?} severity=${2:?} message=${3?} failures=${4:?}
# shellcheck source=/dev/null
. "$(dirname "$0")/alert-text.sh"

now=$(date +%s)
since=${UPKEEP_FAILING_SINCE:-0}
[ "$since" -gt 0 ] || since=$now

# alert SEVERITY ENDS_AT: one element of the alerts array.
alert() {
  printf '{"labels":{"alertname":"UpkeepCheckFailing","host":%s,"check":%s,"kind":%s,"severity":%s},' \
    "$(json_string "${UPKEEP_CHECK_SUBJECT:-}")" "$(json_string "${UPKEEP_CHECK_NAME:-}")" "$(json_string "${UPKEEP_CHECK_KIND:-}")" "$(json_string "$1")"
  printf '"annotations":{"summary":%s,"failures":%s,"checked_from":%s},"startsAt":%s,"endsAt":%s}' \
    "$(json_string "$message")" "$(json_string "$failures")" "$(json_string "$(hostname)")" "$(json_string "$(rfc3339 "$since")")" "$(json_string "$(rfc3339 "$2")")"
}

previous=${UPKEEP_ALERTED_SEVERITY:-}
if [ "$status" = resolved ]; then
  # The alert is known by its labels: end the one sent, under the severity it was sent with.
  body="[$(alert "${previous:-$severity}" "$now")]"
else
  body="[$(alert "$severity" $((now + 4 * ${UPKEEP_CHECK_RESEND_SECONDS:-${UPKEEP_CHECK_INTERVAL:-60}})))"
  if [ -n "$previous" ] && [ "$previous" != "$severity" ]; then body="$body,$(alert "$previous" "$now")"; fi
  body="$body]"
fi

headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
echo 'Content-Type: application/json' >"$headers"
if [ -n "${UPKEEP_TOKEN_FILE:-}" ]; then
  printf 'Authorization: Bearer %s\n' "$(cat "$UPKEEP_TOKEN_FILE")" >>"$headers"
fi
printf '%s\n' "$body" | curl -fsS --max-time 20 --retry 2 -H "@$headers" --data-binary @- -o /dev/null -- "$UPKEEP_ALERTMANAGER_URL"
