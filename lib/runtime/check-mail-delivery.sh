#!/bin/sh
# Nagios-style check: mail is delivered end to end. Sends a message with a unique subject to
# UPKEEP_MAIL_TO through UPKEEP_MAIL_SMTP, then searches for it over IMAP (UPKEEP_MAIL_IMAP, user
# UPKEEP_MAIL_IMAP_USER, password in the file UPKEEP_MAIL_IMAP_PASSWORD_FILE) until
# UPKEEP_MAIL_MAX_DELAY seconds have passed since the run began: the send and every search are
# cut short at that deadline, so a failing run lasts the maximum delay and no longer (the SLA
# arithmetic, lib/policy/check-timing.ts, counts on it: runs never overlap, so each failing run
# holds back the next). The credentials reach curl through a private config
# file (curl -K), never its command line; that syntax also keeps spaces and quotes in a password.
# UPKEEP_MAIL_SMTP is smtp://HOST[:PORT] (STARTTLS required) or smtps://HOST[:PORT];
# UPKEEP_MAIL_IMAP is imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS required). curl's
# --ssl-reqd refuses to go on without TLS, so the password never travels in clear text.
set -u
case $UPKEEP_MAIL_SMTP in smtp://* | smtps://*) ;; *)
  echo "UNKNOWN: $UPKEEP_MAIL_SMTP is not an smtp:// or smtps:// URL"
  exit 3
  ;;
esac
case $UPKEEP_MAIL_IMAP in imap://* | imaps://*) ;; *)
  echo "UNKNOWN: $UPKEEP_MAIL_IMAP is not an imaps:// or imap:// URL"
  exit 3
  ;;
esac
deadline=$(($(date +%s) + UPKEEP_MAIL_MAX_DELAY))
# within LIMIT: the seconds left before the deadline, at most LIMIT; fails when none are left.
within() {
  left=$((deadline - $(date +%s)))
  [ "$left" -gt 0 ] || return 1
  if [ "$left" -gt "$1" ]; then echo "$1"; else echo "$left"; fi
}
work=$(mktemp -d) || exit 3
trap 'rm -rf "$work"' EXIT
token="upkeep-probe-$(date +%s)-$$"
credentials=$(printf '%s:%s' "$UPKEEP_MAIL_IMAP_USER" "$(cat "$UPKEEP_MAIL_IMAP_PASSWORD_FILE")" | sed 's/[\\"]/\\&/g')
printf 'user = "%s"\n' "$credentials" >"$work/curlrc"
printf 'From: upkeep <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nupkeep mail delivery probe\r\n' \
  "$UPKEEP_MAIL_TO" "$UPKEEP_MAIL_TO" "$token" >"$work/message"
if ! out=$(curl -sS --ssl-reqd --max-time "$(within 60 || echo 1)" --mail-from "$UPKEEP_MAIL_TO" --mail-rcpt "$UPKEEP_MAIL_TO" \
  --upload-file "$work/message" -- "$UPKEEP_MAIL_SMTP" 2>&1); then
  echo "CRITICAL: sending through $UPKEEP_MAIL_SMTP failed: $out"
  exit 2
fi
while limit=$(within 30); do
  found=$(curl -sS --ssl-reqd --max-time "$limit" -K "$work/curlrc" -X "SEARCH SUBJECT \"$token\"" -- "$UPKEEP_MAIL_IMAP/INBOX" 2>&1) || {
    echo "UNKNOWN: IMAP search at $UPKEEP_MAIL_IMAP failed: $found"
    exit 3
  }
  case $found in *"SEARCH "[0-9]*) echo "OK: probe delivered to $UPKEEP_MAIL_TO"; exit 0 ;; esac
  pause=$(within "${UPKEEP_MAIL_POLL_SECONDS:-15}") || break
  sleep "$pause"
done
echo "CRITICAL: probe to $UPKEEP_MAIL_TO not delivered within $((UPKEEP_MAIL_MAX_DELAY / 60))m"
exit 2
