#!/bin/sh
# Nagios-style check: an SMTP server greets and answers EHLO and NOOP (curl's SMTP client without a
# message; its default command then is HELP, which postfix does not implement).
set -u
out=$(curl -sS --max-time 30 -X NOOP -- "smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT/" 2>&1) || {
  echo "CRITICAL: smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT: $(echo "$out" | tail -n 1)"
  exit 2
}
echo "OK: smtp://$UPKEEP_SMTP_TARGET:$UPKEEP_SMTP_PORT answers"
