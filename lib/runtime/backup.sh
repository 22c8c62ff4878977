#!/bin/sh
# restic jobs: backup, forget (retention), check (integrity) and drill (test restore).
#
# Usage: backup.sh backup|forget|check|drill|key|restore PATH...
#   key prints the client's public ssh key (creating the key pair if needed), for the repository
#   host's list of authorized clients.
#   forget applies the retention; only for a repository this host may delete from (a backup host
#   of the fleet serves its clients append-only and applies their retention itself).
#   restore puts each absolute PATH (a file or a directory, with everything under it) back where
#   it was, as the latest snapshot holds it; existing files there are overwritten. A PATH that
#   another user could redirect (a symlink, or a directory on the way or under it that someone
#   other than root owns or can write: restic follows symlinks it finds there) is refused; see
#   safe-path.sh. For those, another snapshot or another target, run restic yourself after
#   `. /etc/upkeep/restic/backup.env`, into a directory only root can write.
# Reads /etc/upkeep/restic/backup.env: RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, RESTIC_CACHE_DIR,
# UPKEEP_RCLONE_PROGRAM (ssh command to the fleet's backup host, which forces its append-only
# `rclone serve restic --stdio`), UPKEEP_SFTP_COMMAND (ssh command for other sftp repositories),
# both with a pinned known_hosts, UPKEEP_SSH_KEY (client key, created on first use),
# UPKEEP_KEEP_DAILY/WEEKLY/MONTHLY/YEARLY,
# UPKEEP_CHECK_SUBSET, UPKEEP_DRILL_FILES. Writes status lines "<epoch> <result> <detail>" to
# /var/lib/upkeep/backup/<job>.status, which the backup-freshness check reads.
set -eu

job=${1:?usage: backup.sh backup|forget|check|drill|key|restore PATH...}
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

status() {
  printf '%s %s %s\n' "$(date +%s)" "$1" "$2" >"$status_dir/$job.status.new"
  mv "$status_dir/$job.status.new" "$status_dir/$job.status"
}

case $job in
  restore)
    shift
    [ $# -gt 0 ] || { echo "restore: name the absolute paths to restore" >&2; exit 2; }
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
      if ! "$runtime_dir/safe-path.sh" -r "$path"; then
        echo "restore: $path is not restored in place; restore it with restic into a directory only root can write" >&2
        exit 1
      fi
      set -- "$@" --include "$path"
    done
    r restore latest --target / "$@"
    echo "restore: restored from the latest snapshot"
    ;;
  backup)
    if ! r cat config >/dev/null 2>&1; then
      echo "backup: no repository at $RESTIC_REPOSITORY yet; initialising it"
      r init
    fi
    rc=0
    r backup --files-from "$config_dir/backup.paths" --exclude-file "$config_dir/backup.excludes" \
      --exclude-caches --tag upkeep || rc=$?
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
    r forget --prune "$@"
    status ok "retention applied"
    ;;
  check)
    r check --read-data-subset "$UPKEEP_CHECK_SUBSET"
    status ok "read back $UPKEEP_CHECK_SUBSET of the data"
    ;;
  drill)
    # Everything the drill writes is inside this fresh directory that only root can write: a name
    # beside it in /tmp could be taken by another user first (a symlink root would write through).
    work=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-drill.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    target=$work/restored
    # Regular files of the latest snapshot whose names need no escaping as restic --include patterns.
    r ls latest --json | sed -n 's/^{"name":"[^"]*","type":"file","path":"\([^"\\*?[]*\)".*/\1/p' |
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
    if ! r restore latest --target "$target" --verify "$@"; then
      status failed "restore of $count files failed verification"
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
