#!/bin/sh
# Nagios-style check: the certificate served on UPKEEP_TLS_TARGET:UPKEEP_TLS_PORT stays valid for at
# least UPKEEP_TLS_MIN_VALIDITY seconds.
set -u
cert=$(openssl s_client -connect "$UPKEEP_TLS_TARGET:$UPKEEP_TLS_PORT" -servername "$UPKEEP_TLS_TARGET" </dev/null 2>/dev/null |
  openssl x509 2>/dev/null) || true
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
