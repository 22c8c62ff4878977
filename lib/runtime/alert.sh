#!/bin/sh
# POSTs one alert as JSON to a route's webhook, with its bearer token when it has one.
#
# Usage: alert.sh <route.env> firing|resolved <severity> <message> <failures> <successes>
# The route file sets UPKEEP_WEBHOOK and, optionally, UPKEEP_TOKEN_FILE. The check's identity
# comes from the environment run-check.sh exported (UPKEEP_CHECK_SUBJECT, _NAME, _KIND).
# The token never appears on a command line: curl reads the header from a private file.
set -eu

route=${1:?} status=${2:?} severity=${3:?} message=${4?} failures=${5:?} successes=${6:?}
# shellcheck source=/dev/null
. "$route"

# JSON string: escape backslash and quote, drop control characters.
json() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
echo 'Content-Type: application/json' >"$headers"
if [ -n "${UPKEEP_TOKEN_FILE:-}" ]; then
  printf 'Authorization: Bearer %s\n' "$(cat "$UPKEEP_TOKEN_FILE")" >>"$headers"
fi

printf '{"status":%s,"severity":%s,"host":%s,"check":%s,"kind":%s,"from":%s,"message":%s,"failures":%s,"successes":%s}\n' \
  "$(json "$status")" "$(json "$severity")" "$(json "${UPKEEP_CHECK_SUBJECT:-}")" "$(json "${UPKEEP_CHECK_NAME:-}")" \
  "$(json "${UPKEEP_CHECK_KIND:-}")" "$(json "$(hostname)")" "$(json "$message")" "$failures" "$successes" |
  curl -fsS --max-time 20 --retry 2 -H "@$headers" --data-binary @- -o /dev/null -- "$UPKEEP_WEBHOOK"
