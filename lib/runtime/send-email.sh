#!/bin/sh
# Mails one alert over SMTP with curl, so hosts need no mail program of their own: to the host's
# own mail server by default, or to a relay. With a login, TLS is required (smtps://, or STARTTLS
# on smtp://): curl refuses to go on without it, so the password never travels in the clear. The
# login reaches curl through a private config file, never its command line.
#
# Usage: send-email.sh firing|repeat|resolved <severity> <message> <failures> <successes>
# Called by alert.sh with UPKEEP_ROUTE_SMTP_SERVER, UPKEEP_ROUTE_MAIL_FROM, UPKEEP_ROUTE_MAIL_TO
# (space-separated) and optionally UPKEEP_ROUTE_SMTP_USER and UPKEEP_ROUTE_SMTP_PASSWORD_FILE.
set -eu

status=${1:?} severity=${2:?} message=${3?} failures=${4:?}
# shellcheck source=/dev/null
. "$(dirname "$0")/alert-text.sh"

# Header text: one line, no control characters.
line() { printf '%s' "$1" | tr -d '\000-\037'; }

host=$(line "${UPKEEP_CHECK_SUBJECT:-}") check=$(line "${UPKEEP_CHECK_NAME:-}")
case $status in
  firing) subject="[upkeep] FIRING: $check on $host is $severity" ;;
  repeat) subject="[upkeep] STILL FIRING: $check on $host is $severity" ;;
  *) subject="[upkeep] RESOLVED: $check on $host" ;;
esac
since=
if [ "${UPKEEP_FAILING_SINCE:-0}" -gt 0 ]; then since=$(rfc3339 "$UPKEEP_FAILING_SINCE"); fi

files=$(mktemp -d)
trap 'rm -rf "$files"' EXIT
{
  printf 'From: %s\r\n' "$UPKEEP_ROUTE_MAIL_FROM"
  printf 'To: %s\r\n' "$(echo "$UPKEEP_ROUTE_MAIL_TO" | sed 's/ /, /g')"
  printf 'Subject: %s\r\n' "$subject"
  printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
  printf 'Auto-Submitted: auto-generated\r\n'
  printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
  printf 'Check:     %s (%s) on %s\r\n' "$check" "$(line "${UPKEEP_CHECK_KIND:-}")" "$host"
  printf 'Status:    %s\r\n' "$status"
  printf 'Severity:  %s\r\n' "$severity"
  printf 'Failing since: %s (%s failures in a row)\r\n' "${since:-?}" "$failures"
  printf 'Checked from:  %s\r\n\r\n' "$(hostname)"
  # A line of only "." would end the message early in SMTP; curl escapes it, the rest is text.
  printf '%s\n' "$message" | tr -d '\000-\010\013-\037' | sed 's/$/\r/'
} >"$files/message"

set -- --mail-from "$UPKEEP_ROUTE_MAIL_FROM"
for to in $UPKEEP_ROUTE_MAIL_TO; do set -- "$@" --mail-rcpt "$to"; done
if [ -n "${UPKEEP_ROUTE_SMTP_USER:-}" ]; then
  # curl config syntax: a quoted string with backslash and quote escaped.
  quoted=$(printf '%s:%s' "$UPKEEP_ROUTE_SMTP_USER" "$(cat "$UPKEEP_ROUTE_SMTP_PASSWORD_FILE")" | sed 's/\\/\\\\/g; s/"/\\"/g')
  printf 'user = "%s"\n' "$quoted" >"$files/login"
  set -- "$@" --ssl-reqd --config "$files/login"
fi
curl -fsS --max-time 30 --retry 2 "$@" --upload-file "$files/message" -- "$UPKEEP_ROUTE_SMTP_SERVER"
