#!/bin/sh
# POSTs one alert as JSON to a route's webhook, with its bearer token when it has one.
#
# Usage: send-webhook.sh firing|repeat|resolved <severity> <message> <failures> <successes>
# Called by alert.sh with the route's settings (UPKEEP_WEBHOOK, optionally UPKEEP_TOKEN_FILE) and
# the check's identity in the environment. A reminder is status "firing" with "reminder": true.
# The token never appears on a command line: curl reads the header from a private file.
set -eu

status=${1:?} severity=${2:?} message=${3?} failures=${4:?} successes=${5:?}
# shellcheck source=/dev/null
. "$(dirname "$0")/alert-text.sh"

reminder=false
if [ "$status" = repeat ]; then status=firing reminder=true; fi
since=null
if [ "${UPKEEP_FAILING_SINCE:-0}" -gt 0 ]; then since=$(json_string "$(rfc3339 "$UPKEEP_FAILING_SINCE")"); fi

headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
echo 'Content-Type: application/json' >"$headers"
if [ -n "${UPKEEP_TOKEN_FILE:-}" ]; then
  printf 'Authorization: Bearer %s\n' "$(cat "$UPKEEP_TOKEN_FILE")" >>"$headers"
fi

printf '{"status":%s,"reminder":%s,"severity":%s,"host":%s,"check":%s,"kind":%s,"from":%s,"message":%s,"failures":%s,"successes":%s,"since":%s}\n' \
  "$(json_string "$status")" "$reminder" "$(json_string "$severity")" "$(json_string "${UPKEEP_CHECK_SUBJECT:-}")" "$(json_string "${UPKEEP_CHECK_NAME:-}")" \
  "$(json_string "${UPKEEP_CHECK_KIND:-}")" "$(json_string "$(hostname)")" "$(json_string "$message")" "$failures" "$successes" "$since" |
  curl -fsS --max-time 20 --retry 2 -H "@$headers" --data-binary @- -o /dev/null -- "$UPKEEP_WEBHOOK"
