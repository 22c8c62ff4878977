#!/bin/sh
# Nagios-style check: UPKEEP_DNS_SERVER answers UPKEEP_DNS_NAME of UPKEEP_DNS_TYPE.
# UPKEEP_DNS_PORT (default 53) reaches a server on another port, e.g. in tests.
set -u
answer=$(dig +short +time=5 +tries=2 -p "${UPKEEP_DNS_PORT:-53}" "@$UPKEEP_DNS_SERVER" -q "$UPKEEP_DNS_NAME" -t "$UPKEEP_DNS_TYPE" 2>&1) || {
  echo "CRITICAL: $UPKEEP_DNS_SERVER does not answer: $(echo "$answer" | head -n 1)"
  exit 2
}
if [ -z "$answer" ]; then
  echo "CRITICAL: $UPKEEP_DNS_SERVER has no $UPKEEP_DNS_TYPE record for $UPKEEP_DNS_NAME"
  exit 2
fi
echo "OK: $UPKEEP_DNS_NAME $UPKEEP_DNS_TYPE $(echo "$answer" | tr '\n' ' ')"
