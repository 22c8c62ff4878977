#!/bin/sh
# restic jobs: backup, forget (retention), check (integrity) and drill (test restore).
#
# Usage: backup.sh backup|forget|check|drill|key|snapshots
#        backup.sh restore [--at TIME | --snapshot ID] [--to DIR] PATH...
#   backup saves a snapshot of the paths listed in backup.paths; each must exist, or nothing is
#   saved and the job fails naming it; a listed symlink is saved with what it points to.
#   key prints the client's public ssh key (creating the key pair if needed), for the repository
#   host's list of authorized clients.
#   forget applies the retention; only for a repository this host may delete from (a backup host
#   of the fleet serves its clients append-only and applies their retention itself).
#   restore puts each absolute PATH (a file or a directory, with everything under it) back where
#   it was (or under DIR with --to), from the newest snapshot up to TIME (date -d syntax; now by
#   default) that holds every PATH, or from snapshot ID; newer snapshots without them are skipped
#   and named. It prints the snapshot used. Existing files there are overwritten. A PATH that
#   another user could redirect (a symlink, or a directory on the way or under it that someone
#   other than root owns or can write: restic follows symlinks it finds there) is refused; see
#   safe-path.sh. For those, use --to DIR, or run restic yourself after
#   `. /etc/upkeep/restic/backup.env`, into a directory only root can write.
# Reads /etc/upkeep/restic/backup.env: RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, RESTIC_CACHE_DIR,
# UPKEEP_RCLONE_PROGRAM (ssh command to the fleet's backup host, which forces its append-only
# `rclone serve restic --stdio`), UPKEEP_SFTP_COMMAND (ssh command for other sftp repositories),
# both with a pinned known_hosts, UPKEEP_SSH_KEY (client key, created on first use),
# UPKEEP_BACKUP_HOST_PIN (a provisioned backup host: the directory where bin/apply pins its
# address, in ssh_config, and its host key, in known_hosts),
# UPKEEP_KEEP_DAILY/WEEKLY/MONTHLY/YEARLY,
# UPKEEP_CHECK_SUBSET, UPKEEP_DRILL_FILES. From the environment: UPKEEP_LOCK_WAIT and
# UPKEEP_LOCK_RETRY (seconds a scheduled job waits for another process's repository lock, 14400,
# and between tries, 60; see waiting). Writes status lines "<epoch> <result> <detail>" to
# /var/lib/upkeep/backup/<job>.status, which the backup-freshness check reads.
set -eu

job=${1:?usage: backup.sh backup|forget|check|drill|key|snapshots|restore [--at TIME|--snapshot ID] [--to DIR] PATH...}
config=${UPKEEP_BACKUP_CONFIG:-/etc/upkeep/restic/backup.env}
status_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/backup
set -a
# shellcheck source=/dev/null
. "$config"
set +a
config_dir=$(dirname "$config")
runtime_dir=$(dirname "$0")
mkdir -p "$status_dir"

if [ -n "${UPKEEP_SSH_KEY:-}" ] && [ ! -f "$UPKEEP_SSH_KEY" ]; then
  ssh-keygen -q -t ed25519 -N '' -C "upkeep-backup@$(hostname)" -f "$UPKEEP_SSH_KEY"
fi
# The key is answered before the restic lock: the applier must not wait for a running backup.
if [ "$job" = key ]; then
  [ -n "${UPKEEP_SSH_KEY:-}" ] || { echo "key: this repository is not reached over ssh" >&2; exit 2; }
  cat "$UPKEEP_SSH_KEY.pub"
  exit 0
fi

# One restic job at a time on this host: a prune holds an exclusive repository lock that would
# make a backup or check starting meanwhile fail.
exec 9>"$status_dir/restic.lock"
flock 9

# Everything a job writes is inside this fresh directory that only root can write: a name beside
# it in /tmp could be taken by another user first (a symlink root would write through).
work=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-restic.XXXXXX")
trap 'rm -rf "$work"' EXIT

status() {
  printf '%s %s %s\n' "$(date +%s)" "$1" "$2" >"$status_dir/$job.status.new"
  mv "$status_dir/$job.status.new" "$status_dir/$job.status"
}

# Says why the job cannot run, records it for a scheduled job, and stops.
refuse() {
  echo "$job: $1" >&2
  case $job in backup | forget | check | drill) status failed "$1" ;; esac
  exit 1
}

# A provisioned backup host is reached only at the address and with the key bin/apply pinned:
# before that, nothing connects (its bare name could lead anywhere).
if [ -n "${UPKEEP_BACKUP_HOST_PIN:-}" ] && { [ ! -s "$UPKEEP_BACKUP_HOST_PIN/ssh_config" ] || [ ! -s "$UPKEEP_BACKUP_HOST_PIN/known_hosts" ]; }; then
  refuse "the backup host's address and host key are not pinned on this host ($UPKEEP_BACKUP_HOST_PIN/ssh_config, known_hosts); bin/apply writes them once the backup host is provisioned"
fi

# Why the repository host cannot be reached, asked of ssh itself: restic relays what its ssh
# command says only while it runs, and may exit first. One connection that sends nothing (the
# host's forced command gets no input and ends); its words go to stderr, and a host key other
# than the pinned one stops the job, saying so.
diagnose() {
  command=${UPKEEP_RCLONE_PROGRAM:-${UPKEEP_SFTP_COMMAND:-}}
  [ -n "$command" ] || return 0
  said=$(mktemp "${TMPDIR:-/tmp}/upkeep-ssh.XXXXXX")
  set -f
  # shellcheck disable=SC2086 # the compiled command line: plain words, split as restic splits them
  set -- $command
  set +f
  # -T: no terminal asked for (ssh would, without a remote command).
  program=$1
  shift
  "$program" -T "$@" </dev/null >/dev/null 2>"$said" || true
  cat "$said" >&2
  if grep -q 'Host key verification failed\|REMOTE HOST IDENTIFICATION HAS CHANGED\|host key is known' "$said"; then
    rm -f "$said"
    refuse "the backup host did not present its pinned ssh host key, so nothing was sent: a different machine (or a rebuilt backup host whose new key bin/apply has not pinned yet) answers at its address"
  fi
  rm -f "$said"
}

r() {
  if [ -n "${UPKEEP_RCLONE_PROGRAM:-}" ]; then
    # No arguments of restic's own: the backup host runs its forced command whatever is sent.
    restic -o "rclone.program=$UPKEEP_RCLONE_PROGRAM" -o rclone.args= "$@"
  elif [ -n "${UPKEEP_SFTP_COMMAND:-}" ]; then
    restic -o "sftp.command=$UPKEEP_SFTP_COMMAND" "$@"
  else
    restic "$@"
  fi
}

# As r for a scheduled job, waiting while another process holds the repository's lock. restic
# 0.14 fails at once then (it has no --retry-lock), and the backup host's retention job
# (backup-prune.sh) holds the lock exclusively while it prunes, after waiting up to four hours for
# its clients' locks: failing would lose the day's backup, or record a restore drill that never
# ran as a failed one. So the job tries again every UPKEEP_LOCK_RETRY seconds (60, plus up to half
# as much at random, so that two jobs that keep missing each other fall out of step), first removing
# stale locks (restic unlock removes only those: a retention job cut off mid-prune leaves one), for
# up to UPKEEP_LOCK_WAIT seconds (14400, as long as the retention job waits; the units have no start
# timeout), and then fails saying it could not lock the repository.
# restic's output is passed on as it comes, its stderr also kept in $work/restic.err for the job
# to say why it failed; returns restic's exit code (the job records a failure itself: under set -e
# a failing restic would end the job before its status line, and the last one would stay).
waiting() {
  deadline=$(($(date +%s) + ${UPKEEP_LOCK_WAIT:-14400}))
  while :; do
    { { rc=0; r "$@" 2>&1 >&3 3>&- || rc=$?; echo "$rc" >"$work/restic.rc"; } | tee "$work/restic.err" >&2; } 3>&1
    rc=$(cat "$work/restic.rc")
    # restic's own words at the start of a line, which no file name in an error message can forge.
    if [ "$rc" -ne 1 ] || ! grep -q '^unable to create lock in backend: repository is already locked' "$work/restic.err"; then
      return "$rc"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || refuse "could not lock the repository: another process (the backup host's retention job, or a restore reading it) still held it after ${UPKEEP_LOCK_WAIT:-14400}s of waiting"
    retry=${UPKEEP_LOCK_RETRY:-60}
    pause=$((retry + $(shuf -i 0-$((retry / 2)) -n 1)))
    echo "$job: the repository is locked by another process (the backup host's retention job, or a restore reading it); trying again in ${pause}s" >&2
    sleep "$pause"
    # Best effort: removes only stale locks, and the next try says what still holds the repository.
    r unlock >/dev/null 2>&1 || true
  done
}

case $job in
  restore)
    shift
    at=
    snapshot=
    target=/
    while [ $# -gt 0 ]; do
      case $1 in
        --at) at=${2:?restore: --at needs a time}; shift 2 ;;
        --snapshot) snapshot=${2:?restore: --snapshot needs a snapshot id}; shift 2 ;;
        --to) target=${2:?restore: --to needs a directory}; shift 2 ;;
        --) shift; break ;;
        -*) echo "restore: unknown option $1" >&2; exit 2 ;;
        *) break ;;
      esac
    done
    [ $# -gt 0 ] || { echo "restore: name the absolute paths to restore" >&2; exit 2; }
    [ -z "$at" ] || [ -z "$snapshot" ] || { echo "restore: give --at or --snapshot, not both" >&2; exit 2; }
    case $snapshot in *[!0-9a-f]*) echo "restore: $snapshot is not a snapshot id" >&2; exit 2 ;; esac
    if [ -n "$at" ]; then
      until=$(date -d "$at" +%s 2>/dev/null) || { echo "restore: --at $at is not a time date(1) understands" >&2; exit 2; }
    else
      until=$(date +%s)
    fi
    if [ "$target" != / ]; then
      case $target in /*) ;; *) echo "restore: --to $target is not an absolute path" >&2; exit 2 ;; esac
      # A directory of root's own: restic follows symlinks it finds under its target.
      [ -d "$target" ] || mkdir -m 0700 "$target"
      "$runtime_dir/safe-path.sh" -r "$target" || { echo "restore: --to $target is not a directory only root can write" >&2; exit 1; }
    fi
    n=$#
    while [ "$n" -gt 0 ]; do
      path=$1
      shift
      n=$((n - 1))
      case $path in
        /*) ;;
        *) echo "restore: $path is not an absolute path" >&2; exit 2 ;;
      esac
      # restic reads --include as a pattern: a path with pattern characters would restore others.
      case $path in *'*'* | *'?'* | *'['* | *"\\"*) echo "restore: $path contains pattern characters; use restic restore directly" >&2; exit 2 ;; esac
      if [ "$target" = / ] && ! "$runtime_dir/safe-path.sh" -r "$path"; then
        echo "restore: $path is not restored in place; restore it with --to DIR, a directory only root can write" >&2
        exit 1
      fi
      set -- "$@" "$path"
    done
    # The snapshot: the one named, else the newest up to --at that holds every path. A newer
    # snapshot without them (the host's backup after the deletion, or a rebuilt host's empty one)
    # is skipped, and said so.
    # A failure is said, not taken for a repository without snapshots.
    rc=0
    r snapshots --json >"$work/snapshots" || rc=$?
    [ "$rc" -eq 0 ] || { echo "restore: restic snapshots exited $rc; nothing was restored" >&2; exit 1; }
    grep -o '"time":"[^"]*"\|"short_id":"[^"]*"' "$work/snapshots" | cut -d'"' -f4 | paste -d' ' - - >"$work/all"
    : >"$work/candidates"
    while read -r time id; do
      if [ -n "$snapshot" ]; then
        case $id in "$snapshot"*) echo "$(date -d "$time" +%s) $id $time" >>"$work/candidates" ;; esac
      else
        t=$(date -d "$time" +%s)
        [ "$t" -gt "$until" ] || echo "$t $id $time" >>"$work/candidates"
      fi
    done <"$work/all"
    chosen=
    skipped=0
    for entry in $(sort -rn "$work/candidates" | tr ' ' '@'); do
      id=$(echo "$entry" | cut -d@ -f2)
      missing=
      for path in "$@"; do
        # Asked for one path, restic ls lists it and what lies under it, and nothing when the
        # snapshot does not hold it. The path is not looked for in the listing: restic's JSON
        # escapes some characters (& < > as \u0026 \u003c \u003e, quotes, controls), so any entry
        # (a node; the snapshot line's strings escape quotes) says it is there.
        rc=0
        r ls --json "$id" "$path" >"$work/ls" || rc=$?
        [ "$rc" -eq 0 ] || { echo "restore: restic ls of snapshot $id exited $rc; nothing was restored" >&2; exit 1; }
        grep -q '"struct_type":"node"' "$work/ls" || missing="$missing $path"
      done
      if [ -z "$missing" ]; then chosen=$entry; break; fi
      [ -n "$snapshot" ] && { echo "restore: snapshot $id does not hold:$missing" >&2; exit 1; }
      skipped=$((skipped + 1))
      echo "restore: snapshot $id of $(echo "$entry" | cut -d@ -f3) does not hold:$missing; looking at older ones" >&2
    done
    if [ -z "$chosen" ]; then
      echo "restore: no snapshot${at:+ up to $at} holds every path; see backup.sh snapshots" >&2
      exit 1
    fi
    id=$(echo "$chosen" | cut -d@ -f2)
    n=$#
    while [ "$n" -gt 0 ]; do set -- "$@" --include "$1"; shift; n=$((n - 1)); done
    r restore "$id" --target "$target" "$@"
    echo "restore: restored from snapshot $id of $(echo "$chosen" | cut -d@ -f3)"
    [ "$skipped" -eq 0 ] || echo "restore: $skipped newer snapshot(s) did not hold the paths"
    [ "$target" = / ] || echo "restore: restored under $target"
    ;;
  snapshots)
    r snapshots --compact
    ;;
  backup)
    # Every listed path must exist. restic reads --files-from lines as patterns and skips one that
    # matches nothing with a line on stderr and exit 0: an unmounted volume or a mistyped path would
    # pass for a good backup. So the paths go to restic verbatim, never as patterns, once each is
    # found. A listed symlink is backed up with what it points to: restic stores a link alone, and
    # a snapshot of /srv/data -> /mnt/HC_Volume_1/data without the data is no backup of it.
    missing=
    : >"$work/paths"
    while IFS= read -r path || [ -n "$path" ]; do
      [ -n "$path" ] || continue
      # Without trailing slashes: "link/" names the directory behind the link, not the link.
      link=$path
      while [ "$link" != / ] && [ "${link%/}" != "$link" ]; do link=${link%/}; done
      if [ ! -e "$path" ]; then
        [ ! -L "$link" ] || echo "backup: $path is a symlink to $(readlink "$link"), which does not exist" >&2
        missing="$missing $path"
        continue
      fi
      printf '%s\n' "$link" >>"$work/paths"
      if [ -L "$link" ]; then
        echo "backup: $path is a symlink; backing up $(readlink -f "$link"), where it points, as well"
        readlink -f "$link" >>"$work/paths"
      fi
    done <"$config_dir/backup.paths"
    [ -z "$missing" ] || refuse "listed path(s) do not exist:$missing; nothing was backed up"
    # Without a lock, which the retention job may hold: anything but a readable config means no repository yet.
    if ! r --no-lock cat config >/dev/null 2>&1; then
      diagnose
      echo "backup: no repository at $RESTIC_REPOSITORY yet; initialising it"
      rc=0
      r init || rc=$?
      [ "$rc" -eq 0 ] || refuse "cannot read or create the repository (restic init exited $rc)"
    fi
    rc=0
    waiting backup --files-from-verbatim "$work/paths" --exclude-file "$config_dir/backup.excludes" \
      --exclude-caches --tag upkeep || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || diagnose
    case $rc in
      0) status ok "snapshot saved" ;;
      # restic exits 3 when some files could not be read; the snapshot exists, so warn, not fail.
      3) status warning "snapshot saved but some files could not be read"; echo "backup: warning: some files could not be read" >&2 ;;
      *) status failed "restic backup exited $rc"; exit "$rc" ;;
    esac
    ;;
  forget)
    set --
    [ "${UPKEEP_KEEP_DAILY:-0}" -gt 0 ] && set -- "$@" --keep-daily "$UPKEEP_KEEP_DAILY"
    [ "${UPKEEP_KEEP_WEEKLY:-0}" -gt 0 ] && set -- "$@" --keep-weekly "$UPKEEP_KEEP_WEEKLY"
    [ "${UPKEEP_KEEP_MONTHLY:-0}" -gt 0 ] && set -- "$@" --keep-monthly "$UPKEEP_KEEP_MONTHLY"
    [ "${UPKEEP_KEEP_YEARLY:-0}" -gt 0 ] && set -- "$@" --keep-yearly "$UPKEEP_KEEP_YEARLY"
    [ $# -gt 0 ] || { echo "forget: no retention rule; refusing to forget everything" >&2; exit 2; }
    rc=0
    waiting forget --prune "$@" || rc=$?
    [ "$rc" -eq 0 ] || { status failed "restic forget --prune exited $rc; see the job's journal"; exit "$rc"; }
    status ok "retention applied"
    ;;
  check)
    rc=0
    waiting check --read-data-subset "$UPKEEP_CHECK_SUBSET" || rc=$?
    if grep -q '^Fatal: repository contains errors' "$work/restic.err"; then
      status failed "the repository contains errors (restic check exited $rc); see the job's journal"
      exit 1
    fi
    [ "$rc" -eq 0 ] || { status failed "restic check exited $rc; see the job's journal"; exit "$rc"; }
    status ok "read back $UPKEEP_CHECK_SUBSET of the data"
    ;;
  drill)
    target=$work/restored
    # Regular files of the latest snapshot whose names need no escaping as restic --include patterns.
    rc=0
    waiting ls latest --json >"$work/ls" || rc=$?
    [ "$rc" -eq 0 ] || { status failed "could not list the latest snapshot (restic ls exited $rc)"; exit 1; }
    sed -n 's/^{"name":"[^"]*","type":"file","path":"\([^"\\*?[]*\)".*/\1/p' "$work/ls" |
      shuf -n "${UPKEEP_DRILL_FILES:-20}" >"$work/list" || true
    count=$(wc -l <"$work/list")
    if [ "$count" -eq 0 ]; then
      status failed "the latest snapshot has no files to restore"
      echo "drill: the latest snapshot has no files to restore" >&2
      exit 1
    fi
    set --
    while IFS= read -r path; do set -- "$@" --include "$path"; done <"$work/list"
    # --verify reads every restored file back and compares it with the snapshot's content.
    # A repository locked past the wait is recorded as such by waiting, never as a failed verification.
    rc=0
    waiting restore latest --target "$target" --verify "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
      status failed "restore of $count files failed verification (restic restore exited $rc)"
      exit 1
    fi
    missing=0
    while IFS= read -r path; do [ -f "$target$path" ] || missing=$((missing + 1)); done <"$work/list"
    if [ "$missing" -gt 0 ]; then
      status failed "$missing of $count sampled files were not restored"
      exit 1
    fi
    status ok "restored and verified $count files"
    echo "drill: restored and verified $count files from the latest snapshot"
    ;;
  *)
    echo "backup: unknown job: $job" >&2
    exit 2
    ;;
esac
