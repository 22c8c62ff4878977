#!/bin/sh
# Nagios-style check: an SMTP server greets and answers EHLO (curl's SMTP client without a message).
set -u
out=$(curl -sS --max-time 30 -- "smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT/" 2>&1) || {
  echo "CRITICAL: smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT: $(echo "$out" | tail -n 1)"
  exit 2
}
echo "OK: smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT answers"
