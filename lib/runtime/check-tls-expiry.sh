#!/bin/sh
# Nagios-style check: the certificate served on UPKEEP_TLS_TARGET:UPKEEP_TLS_PORT stays valid for at
# least UPKEEP_TLS_MIN_VALIDITY seconds.
# The handshake gets UPKEEP_TLS_TIMEOUT seconds (default 20; the SLA arithmetic counts them, in
# lib/policy/check-timing.ts): a server that accepts and never answers would otherwise hold the
# run until systemd kills it, which records nothing and alerts nobody.
set -u
limit=${UPKEEP_TLS_TIMEOUT:-20}
case $limit in '' | *[!0-9]*) limit=20 ;; esac
rc=0
# shellcheck disable=SC2086 # a number, unquoted so that test/program-usage.ts sees timeout's operand
served=$(timeout $limit openssl s_client -connect "$UPKEEP_TLS_TARGET:$UPKEEP_TLS_PORT" -servername "$UPKEEP_TLS_TARGET" </dev/null 2>/dev/null) || rc=$?
if [ "$rc" = 124 ]; then
  # Like a server that sends no certificate: the service's clients cannot connect either.
  echo "CRITICAL: $UPKEEP_TLS_TARGET:$UPKEEP_TLS_PORT completed no TLS handshake within ${limit}s"
  exit 2
fi
cert=$(printf '%s\n' "$served" | openssl x509 2>/dev/null) || true
if [ -z "$cert" ]; then
  echo "CRITICAL: no certificate from $UPKEEP_TLS_TARGET:$UPKEEP_TLS_PORT"
  exit 2
fi
until=$(printf '%s\n' "$cert" | openssl x509 -noout -enddate | sed 's/^notAfter=//')
if ! printf '%s\n' "$cert" | openssl x509 -noout -checkend "$UPKEEP_TLS_MIN_VALIDITY" >/dev/null; then
  echo "CRITICAL: the certificate of $UPKEEP_TLS_TARGET expires $until"
  exit 2
fi
echo "OK: the certificate of $UPKEEP_TLS_TARGET is valid until $until"
