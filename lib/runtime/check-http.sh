#!/bin/sh
# Nagios-style check: fetches UPKEEP_HTTP_URL and expects status UPKEEP_HTTP_STATUS and, when
# UPKEEP_HTTP_BODY_MATCHES is set, a body matching that extended regular expression.
set -u
body=$(mktemp) || exit 3
trap 'rm -f "$body"' EXIT
code=$(curl -sS --max-time 30 -o "$body" -w '%{http_code}' -- "$UPKEEP_HTTP_URL" 2>&1) || {
  echo "CRITICAL: $UPKEEP_HTTP_URL: $code"
  exit 2
}
if [ "$code" != "$UPKEEP_HTTP_STATUS" ]; then
  echo "CRITICAL: $UPKEEP_HTTP_URL answered $code, expected $UPKEEP_HTTP_STATUS"
  exit 2
fi
if [ -n "${UPKEEP_HTTP_BODY_MATCHES:-}" ] && ! grep -Eq -- "$UPKEEP_HTTP_BODY_MATCHES" "$body"; then
  echo "CRITICAL: $UPKEEP_HTTP_URL: body does not match $UPKEEP_HTTP_BODY_MATCHES"
  exit 2
fi
echo "OK: $UPKEEP_HTTP_URL answered $code"
