#!/bin/sh
# Retention of one client's repository, on the backup host that serves it append-only: run by
# upkeep-backup-prune-<client>.service as the client's receiving user, so that what it writes stays
# readable by the client's server.
#
# Usage: backup-prune.sh
# Environment (the unit's EnvironmentFile, /etc/upkeep/restic/clients/<client>.env):
#   RESTIC_REPOSITORY     the repository's directory
#   UPKEEP_KEEP_WITHIN    restic --keep-within* rules, e.g. "--keep-within 90d"
#   CREDENTIALS_DIRECTORY systemd's, holding "password" (or RESTIC_PASSWORD_FILE set instead)
#   UPKEEP_CLOCK_SKEW     seconds a snapshot may lie in the future before pruning stops (3600)
#   UPKEEP_LOCK_WAIT      seconds to wait for the client's own locks to go (14400)
#   UPKEEP_LOCK_RETRY     seconds between tries while it waits (60)
#
# Pruning needs the repository to itself, and a client's backup or restore drill holds a lock on
# it while it runs, as does `upkeep restore --whole` reading it here (which pruning must not remove
# data under): a backup that is still running at 04:00 would otherwise fail retention, and
# the failed-units check would page a human for nothing. So the job waits for such locks, trying
# again every UPKEEP_LOCK_RETRY seconds for up to UPKEEP_LOCK_WAIT seconds, and each time first
# removes the stale ones a client cut off mid-backup left (restic unlock removes only locks older
# than 30 minutes). A lock still held when the wait ends fails the job, as before.
#
# Every --keep-within rule counts back from the newest snapshot, so a snapshot that a compromised
# client dated far in the future would push every real one out. A snapshot newer than now plus
# the allowed clock skew therefore stops the job before anything is forgotten (exit 1, the unit
# fails and the failed-units check tells a human); the snapshot is listed so that it can be
# inspected and removed by hand with `restic forget ID`.
set -eu

: "${RESTIC_REPOSITORY:?backup-prune.sh: RESTIC_REPOSITORY is not set}"
: "${UPKEEP_KEEP_WITHIN:?backup-prune.sh: UPKEEP_KEEP_WITHIN is not set}"
if [ -z "${RESTIC_PASSWORD_FILE:-}" ]; then
  RESTIC_PASSWORD_FILE=${CREDENTIALS_DIRECTORY:?backup-prune.sh: no password credential}/password
fi
export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
if [ -n "${CACHE_DIRECTORY:-}" ]; then export RESTIC_CACHE_DIR="$CACHE_DIRECTORY"; fi

limit=$(($(date +%s) + ${UPKEEP_CLOCK_SKEW:-3600}))
future=0
# One "<id> <time>" line per snapshot; restic's JSON escapes quotes inside strings, so the
# "short_id" and "time" keys cannot be imitated by a path or tag.
for entry in $(restic snapshots --json --no-lock | grep -o '"time":"[^"]*"\|"short_id":"[^"]*"' | cut -d'"' -f4 | paste -d'@' - -); do
  time=${entry%@*}
  id=${entry#*@}
  at=$(date -d "$time" +%s)
  if [ "$at" -gt "$limit" ]; then
    echo "backup-prune: snapshot $id is dated $time, in the future; nothing is forgotten while it exists" >&2
    future=$((future + 1))
  fi
done
if [ "$future" -gt 0 ]; then
  echo "backup-prune: $future snapshot(s) of $RESTIC_REPOSITORY dated in the future (a wrong clock or a forged snapshot); inspect them, then remove them with restic forget" >&2
  exit 1
fi
deadline=$(($(date +%s) + ${UPKEEP_LOCK_WAIT:-14400}))
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
while :; do
  restic unlock
  # shellcheck disable=SC2086 # the rules are words: "--keep-within 90d --keep-within-monthly 12m"
  if restic forget --prune $UPKEEP_KEEP_WITHIN 2>"$errors"; then
    cat "$errors" >&2
    exit 0
  fi
  cat "$errors" >&2
  grep -q 'repository is already locked' "$errors" || exit 1
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "backup-prune: $RESTIC_REPOSITORY is still locked after ${UPKEEP_LOCK_WAIT:-14400}s of waiting; nothing was forgotten" >&2
    exit 1
  fi
  echo "backup-prune: $RESTIC_REPOSITORY is locked (by a client's backup, its restore drill or a restore reading it); trying again in ${UPKEEP_LOCK_RETRY:-60}s" >&2
  sleep "${UPKEEP_LOCK_RETRY:-60}"
done
