#!/bin/sh
# upkeep-agent: the host side of `upkeep apply`. Streamed to a host over ssh for every operation
# (and installed under /usr/local/lib/upkeep for the self-rollback timer). It switches the host
# between generations atomically: every host is on its old or its new generation, never between.
#
# How a switch stays atomic: the new generation is staged and the current state of every touched
# path and unit is snapshotted before anything live changes; then an intent journal is written;
# then files and units change; the manifest is written last (the commit point). An operation that
# dies midway (cut connection, SIGKILL, full disk) leaves the journal behind, and every run of the
# agent first recovers: before the commit it undoes the switch from the snapshot, after it finishes.
#
# Protocol: lines "key value..." on stdout; exit 0 ok, 10 host locked, 11 stale plan, 12 failed and
# left on the old generation, 13 invalid input, 14 not supported here, 15 not on that generation,
# 20 failed and could not restore (the journal stays; the next run retries the recovery).
#
# A change is settled only once the applier saw it pass its health gates (and its group's soak):
# until then $STATE/unsettled names the generation, so a run that was cut off (a CI job's timeout
# during the soak, a killed applier) leaves hosts the next run still gates and soaks, instead of
# taking them as done. A repair of the same generation (drifted files put back) keeps the state it
# repaired in $STATE/repair until it is settled, so its rollback returns to exactly that state.
#
# UPKEEP_ROOT=DIR applies into an image root: paths under DIR, `systemctl --root`, nothing started.

# Names read from manifests and headers are validated words (no spaces), so word splitting them is safe.
# shellcheck disable=SC2013

set -u
umask 077

ROOT=${UPKEEP_ROOT:-}
STATE=$ROOT/var/lib/upkeep
RUNTIME=$ROOT/usr/local/lib/upkeep
AGENT=$RUNTIME/upkeep-agent
TXN=$STATE/txn
NL='
'

say() { printf '%s\n' "$*"; }

die() {
	code=$1
	shift
	say "error $*"
	printf 'upkeep-agent: %s\n' "$*" >&2
	exit "$code"
}

# Progress after each step. Writing to a connection that is gone kills the agent with SIGPIPE
# between two steps, which the next run recovers from; the test hook pauses here to allow that.
step() {
	say "step $1"
	if [ "${UPKEEP_PAUSE_AFTER:-}" = "$1" ]; then
		sleep "${UPKEEP_PAUSE_SECONDS:-0}" 9>&- >/dev/null 2>&1
		say "resumed $1"
	fi
}

live() { [ -z "$ROOT" ]; }

sc() {
	if live; then systemctl "$@"; else systemctl --root="$ROOT" "$@"; fi
}

valid_word() {
	case $1 in '' | *[!A-Za-z0-9._:@-]*) return 1 ;; esac
}

# --- files ----------------------------------------------------------------------------------

pad_mode() { printf '%04d' "$1"; }

# Owner names come from the image's own user database in an image root, not this machine's.
name_of_id() { # DB ID
	n=$(awk -F: -v id="$2" '$3 == id { print $1; exit }' "$ROOT/etc/$1" 2>/dev/null)
	if [ -n "$n" ]; then say "$n"; elif [ "$2" = 0 ]; then say root; else say "$2"; fi
}

id_of_name() { # DB NAME
	n=$(awk -F: -v name="$2" '$1 == name { print $3; exit }' "$ROOT/etc/$1" 2>/dev/null)
	if [ -n "$n" ]; then say "$n"; elif [ "$2" = root ]; then say 0; else return 1; fi
}

# "HOSTPATH SHA MODE OWNER" for each host path as it is on disk now, or "HOSTPATH absent". Two
# processes for any number of files: a no-op apply costs about what hashing the files costs.
states_of() {
	[ $# -gt 0 ] || return 0
	files=''
	for p in "$@"; do
		if [ -f "$ROOT$p" ]; then files="$files $ROOT$p"; fi
	done
	{
		if [ -n "$files" ]; then
			# shellcheck disable=SC2086 # validated paths, no spaces
			sha256sum $files
			# shellcheck disable=SC2086
			if live; then stat -c 'stat %n %a %U:%G' $files; else stat -c 'stat %n %a %u %g' $files; fi
		fi
	} | awk -v root="$ROOT" -v paths="$*" '
		# In an image root, owner names come from the image, not from this machine.
		function names(db, map,   line, f) {
			while ((getline line < db) > 0) { split(line, f, ":"); if (!(f[3] in map)) map[f[3]] = f[1] }
		}
		function name(map, id) { return id in map ? map[id] : (id == 0 ? "root" : id) }
		BEGIN { if (root != "") { names(root "/etc/passwd", user); names(root "/etc/group", group) } }
		NF == 2 { sha[$2] = $1 }
		$1 == "stat" { state[$2] = sprintf("%04d", $3) " " (root == "" ? $4 : name(user, $4) ":" name(group, $5)) }
		END {
			n = split(paths, p, " ")
			for (i = 1; i <= n; i++) { f = root p[i]; if (f in sha) print p[i], sha[f], state[f]; else print p[i], "absent" }
		}'
}

# "SHA MODE OWNER" of one host path, or "absent".
file_state() {
	states_of "$1" | {
		read -r _ state
		say "$state"
	}
}

set_owner() { # OWNER FILE
	if live; then
		chown "$1" "$2"
	else
		u=$(id_of_name passwd "${1%%:*}") && g=$(id_of_name group "${1#*:}") && chown "$u:$g" "$2"
	fi
}

# Atomic install: temp file beside the target, owner and mode set, fsync, rename, fsync the dir.
install_file() { # SRC HOSTPATH MODE OWNER
	dest=$ROOT$2
	dir=${dest%/*}
	tmp=$dir/.upkeep-new.${dest##*/}
	(umask 022 && mkdir -p "$dir") || return 1
	if cat "$1" >"$tmp" && set_owner "$4" "$tmp" && chmod "$3" "$tmp" && sync "$tmp" && mv -f "$tmp" "$dest"; then
		sync "$dir"
		return 0
	fi
	rm -f "$tmp"
	return 1
}

remove_file() { # HOSTPATH
	rm -f "$ROOT$1" && sync "$(dirname "$ROOT$1")"
}

is_unit_file() {
	case $1 in */systemd/system/*) return 0 ;; esac
	return 1
}

# --- manifest -------------------------------------------------------------------------------
# upkeep-manifest 1 / generation G / plan P / previous G|none / file SHA MODE OWNER PATH / unit U / package P

mget() { # KEY FILE
	[ -f "$2" ] && awk -v k="$1" '$1 == k { print $2; exit }' "$2"
}

current_generation() {
	g=$(mget generation "$STATE/manifest")
	say "${g:-none}"
}

# The file/unit/package lines: what a generation is, without its name and history.
manifest_body() { # FILE
	[ -f "$1" ] && grep -E '^(file|unit|package) ' "$1"
}

write_atomic() { # DEST (content on stdin)
	cat >"$1.tmp" && sync "$1.tmp" && mv -f "$1.tmp" "$1" && sync "${1%/*}"
}

# --- lock -----------------------------------------------------------------------------------
# flock on fd 9, held by this shell: it ends with the session, whatever ends the session.

lock_info() {
	if [ -f "$STATE/lock.holder" ]; then
		since=$(stat -c %Y "$STATE/lock.holder")
		say "lock pid=$(mget pid "$STATE/lock.holder") age=$(($(date +%s) - ${since:-0})) from=$(mget from "$STATE/lock.holder") holder=$(sed -n 's/^holder //p' "$STATE/lock.holder")"
	else
		say "lock pid=0 age=0 from=unknown holder=unknown"
	fi
}

open_lock() {
	mkdir -p "$STATE" || die 12 "cannot create $STATE"
	exec 9>>"$STATE/lock"
}

# How long a change waits for the lock before refusing: a session that only reads the state
# (plan --live, a health gate) holds it for an instant, and must not make an apply fail.
CHANGE_LOCK_WAIT=5

take_lock() { # WAITSECONDS
	open_lock
	if [ "$1" = 0 ]; then flock -n 9; else flock -w "$1" 9; fi || {
		lock_info
		die 10 "host is locked by another upkeep session"
	}
	from=local
	if [ -n "${SSH_CONNECTION:-}" ]; then from=${SSH_CONNECTION%% *}; fi
	# Informational only (the flock is the lock), so not worth an fsync on every no-op apply.
	# Its modification time says since when.
	printf 'pid %s\nfrom %s\nholder %s\n' "$$" "$from" "${UPKEEP_HOLDER:-upkeep}" >"$STATE/lock.holder"
}

# --- snapshot and restore -------------------------------------------------------------------

# Records every path and unit a switch may touch as they are now, so the switch can be undone
# byte for byte: snapshot/list "PATH STATE...", snapshot/files/PATH, snapshot/units "U ENABLED ACTIVE".
snapshot() { # DIR PATHS UNITS OLDMANIFEST
	rm -rf "$1" && mkdir -p "$1/files" || return 1
	: >"$1/list" && : >"$1/units" || return 1
	for p in $2; do
		s=$(file_state "$p") || return 1
		say "$p $s" >>"$1/list" || return 1
		if [ "$s" != absent ]; then
			mkdir -p "$1/files${p%/*}" && cp -p "$ROOT$p" "$1/files$p" || return 1
		fi
	done
	# shellcheck disable=SC2086 # validated unit names
	unit_states $3 >"$1/units" || return 1
	if [ -f "$4" ]; then cp "$4" "$1/manifest"; else : >"$1/manifest.none"; fi || return 1
	sync "$1/list" "$1/units" && sync -f "$1/list"
}

# "UNIT ENABLED ACTIVE" for each unit: ENABLED is the unit file state ("absent": no unit file),
# ACTIVE "offline" in an image root. Two systemctl calls for any number of units.
unit_states() {
	[ $# -gt 0 ] || return 0
	if live; then
		# One block per unit, in argument order.
		systemctl show -p UnitFileState -p ActiveState -- "$@" 2>/dev/null | awk -v units="$*" '
			BEGIN { RS = ""; FS = "\n"; split(units, u, " ") }
			{
				en = ""; act = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^UnitFileState=/) en = substr($i, 15)
					if ($i ~ /^ActiveState=/) act = substr($i, 13)
				}
				print u[NR], (en == "" ? "absent" : en), act
			}'
	else
		sc list-unit-files --no-legend "$@" 2>/dev/null | awk -v units="$*" '
			{ enabled[$1] = $2 }
			END {
				k = split(units, u, " ")
				for (i = 1; i <= k; i++) print u[i], (u[i] in enabled ? enabled[u[i]] : "absent"), "offline"
			}'
	fi
}

unit_enabled() {
	unit_states "$1" | {
		read -r _ enabled _
		say "$enabled"
	}
}

unit_active() {
	if live; then systemctl is-active "$1" 2>/dev/null || :; else say offline; fi
}

# Puts back exactly what a snapshot recorded: files, modes, owners, enablement, active timers, manifest.
restore_snapshot() { # DIR
	reload=no
	restart=''
	# An install killed between writing its temp file and renaming it (SIGKILL, cut session)
	# leaves the temp file beside the target: it belongs to no generation.
	while read -r p _; do
		rm -f "$ROOT${p%/*}/.upkeep-new.${p##*/}" || return 1
	done <"$1/list"
	# Units that were not enabled go first, while their unit files still exist.
	while read -r u en act; do
		if [ "$en" != enabled ] && [ "$(unit_enabled "$u")" = enabled ]; then
			sc disable "$u" >/dev/null 2>&1 || return 1
		fi
		if live && [ "$act" != active ] && [ "$(unit_active "$u")" = active ]; then
			systemctl stop "$u" || return 1
		fi
	done <"$1/units"
	# Remove what did not exist first: it frees the space the restored files may need.
	while read -r p s _; do
		if [ "$s" = absent ] && [ -e "$ROOT$p" ]; then
			remove_file "$p" || return 1
			if is_unit_file "$p"; then reload=yes; fi
		fi
	done <"$1/list"
	while read -r p sha mode owner; do
		[ "$sha" = absent ] && continue
		[ "$(file_state "$p")" = "$sha $mode $owner" ] && continue
		install_file "$1/files$p" "$p" "$mode" "$owner" || return 1
		if is_unit_file "$p"; then
			reload=yes
			restart="$restart ${p##*/}"
		fi
	done <"$1/list"
	if live && [ $reload = yes ]; then systemctl daemon-reload || return 1; fi
	while read -r u en act; do
		if [ "$en" = enabled ] && [ "$(unit_enabled "$u")" != enabled ]; then
			sc enable "$u" >/dev/null 2>&1 || return 1
		fi
		if live && [ "$act" = active ]; then
			case " $restart " in
			*" $u "*) systemctl restart "$u" || return 1 ;;
			*) [ "$(unit_active "$u")" = active ] || systemctl start "$u" || return 1 ;;
			esac
		fi
	done <"$1/units"
	if [ -f "$1/manifest" ]; then
		write_atomic "$STATE/manifest" <"$1/manifest" || return 1
	else
		rm -f "$STATE/manifest" && sync "$STATE" || return 1
	fi
}

# --- recovery -------------------------------------------------------------------------------

# The agent's first act under the lock: an interrupted switch is undone (before its commit) or
# finished (after it); an interrupted rollback is redone.
recover() {
	[ -f "$STATE/journal" ] || return 0
	# shellcheck disable=SC2046
	set -- $(cat "$STATE/journal")
	op=${1:-}
	from=${2:-}
	to=${3:-}
	case $op in
	switch)
		if [ "$(current_generation)" = "$to" ] && [ "$from" != "$to" ]; then
			finish_switch "$from" "$to" || die 20 "could not finish the interrupted switch $from -> $to"
			RECOVERED="finished interrupted switch $from -> $to"
		else
			restore_snapshot "$TXN/before" || die 20 "could not undo the interrupted switch $from -> $to"
			rm -f "$STATE/journal" && rm -rf "$TXN"
			RECOVERED="undid interrupted switch $from -> $to"
		fi
		;;
	rollback)
		restore_snapshot "$STATE/undo/$from" || die 20 "could not finish the interrupted rollback $from -> $to"
		rm -f "$STATE/journal"
		RECOVERED="finished interrupted rollback $from -> $to"
		;;
	rollback-repair)
		restore_snapshot "$STATE/repair" || die 20 "could not finish the interrupted rollback of the repair of $from"
		rm -rf "$STATE/repair" && rm -f "$STATE/journal"
		RECOVERED="finished interrupted rollback of the repair of $from"
		;;
	*) die 20 "unknown journal entry in $STATE/journal: $op" ;;
	esac
	sync "$STATE"
	if live; then logger -t upkeep "$RECOVERED" 2>/dev/null; fi
	say "recovered $RECOVERED"
}

# After the commit: keep the new generation and the way back to the previous one.
finish_switch() { # FROM TO
	mkdir -p "$STATE/generations" "$STATE/undo" || return 1
	if [ -d "$TXN/stage" ]; then
		rm -rf "$STATE/generations/$2" && mv "$TXN/stage" "$STATE/generations/$2" || return 1
	fi
	if [ "$1" != "$2" ]; then
		# The repair snapshot belonged to the generation left behind.
		rm -rf "$STATE/repair" || return 1
		if [ -d "$TXN/before" ]; then rm -rf "$STATE/undo/$2" && mv "$TXN/before" "$STATE/undo/$2" || return 1; fi
	elif [ -d "$TXN/before" ] && live; then
		# A repair: until it is settled, the way back is to the state it repaired, not to the
		# generation before. (An image root has no gates to settle it: its repair is done at once.)
		rm -rf "$STATE/repair" && mv "$TXN/before" "$STATE/repair" || return 1
	fi
	sync "$STATE/generations" "$STATE/undo" "$STATE"
	rm -f "$STATE/journal" && rm -rf "$TXN" && sync "$STATE"
}

# Keeps the current and the previous generation; older ones cannot be rolled back to anyway.
prune() {
	keep=" $(current_generation) $(mget previous "$STATE/manifest") "
	for d in "$STATE"/generations/* "$STATE"/undo/*; do
		[ -d "$d" ] || continue
		case $keep in *" ${d##*/} "*) ;; *) rm -rf "$d" ;; esac
	done
}

# --- read-state -----------------------------------------------------------------------------

# Backup keys, so that the applier (lib/apply/backup-keys.ts) sees without another round trip
# whether a backup client's public key is already accepted by its repository host:
# "backup-key KEY" (this host's backup ssh key, if made) and "backup-accepts USER KEY" (each
# key a receiving user accepts), and "backup-pin FILE LINE" (each line of the provisioned backup
# host's pin: known_hosts, ssh_config). No process per line: a no-op apply is mostly read-state.
backup_keys() {
	if [ -f "$STATE/backup/id_ed25519.pub" ]; then
		IFS= read -r key <"$STATE/backup/id_ed25519.pub" && say "backup-key $key"
	fi
	for f in "$STATE"/backup-clients/*.keys; do
		[ -f "$f" ] || continue
		u=${f##*/}
		while IFS= read -r key; do [ -n "$key" ] && say "backup-accepts ${u%.keys} $key"; done <"$f"
	done
	for f in known_hosts ssh_config; do
		[ -f "$STATE/backup-host/$f" ] || continue
		while IFS= read -r line; do [ -n "$line" ] && say "backup-pin $f $line"; done <"$STATE/backup-host/$f"
	done
}

# The provisioned peers pinned here (lib/apply/peer-pins.ts): "peer-pin FILE LINE" for each line
# of addresses and signers.
peer_pins() {
	for f in addresses signers; do
		[ -f "$STATE/peers/$f" ] || continue
		while IFS= read -r line; do [ -n "$line" ] && say "peer-pin $f $line"; done <"$STATE/peers/$f"
	done
}

# "unsettled GEN AGE": the current generation has not passed its gates yet, switched AGE seconds
# ago by this host's clock (the applier soaks from it without trusting its own clock to agree).
unsettled() {
	[ -f "$STATE/unsettled" ] || return 0
	g=$(cat "$STATE/unsettled")
	[ "$g" = "$(current_generation)" ] || return 0
	say "unsettled $g $(($(date +%s) - $(stat -c %Y "$STATE/unsettled")))"
}

cmd_read_state() {
	RECOVERED=''
	open_lock
	if flock -n 9; then
		recover
		exec 9>&-
		say "lock free"
	else
		lock_info
	fi
	m=$STATE/manifest
	say "generation $(current_generation)"
	say "plan $(mget plan "$m")"
	say "previous $(mget previous "$m")"
	[ -f "$STATE/unconfirmed" ] && say "unconfirmed $(cat "$STATE/unconfirmed")"
	unsettled
	if [ -f "$m" ]; then
		awk '$1 == "file" { print "manifest", $5, $2, $3, $4 } $1 == "package" { print "package", $2 }' "$m"
		# shellcheck disable=SC2046 # validated paths and unit names
		states_of $(awk '$1 == "file" { print $5 }' "$m") | sed 's/^/disk /'
		# shellcheck disable=SC2046
		unit_states $(awk '$1 == "unit" { print $2 }' "$m") | sed 's/^/unit /'
	fi
	backup_keys
	peer_pins
	if live; then
		systemctl list-units --state=failed --plain --no-legend 2>/dev/null | while read -r u _; do say "failed $u"; done
		say "system $(systemctl is-system-running 2>/dev/null)"
		# For the customers' calendar (lib/plan/window-calendar.ts): apt's flag, or dnf's answer
		# (needs-restarting -r exits 1 when a reboot is needed).
		if [ -e /var/run/reboot-required ]; then
			say "reboot-required yes"
		elif command -v needs-restarting >/dev/null 2>&1; then
			if needs-restarting -r >/dev/null 2>&1; then say "reboot-required no"; else say "reboot-required yes"; fi
		else
			say "reboot-required no"
		fi
	else
		say "system offline"
	fi
}

# --- apply ----------------------------------------------------------------------------------

# Reads the bundle header from stdin (byte by byte, so the contents stay on stdin):
#   upkeep-bundle 1 / agent LEN SHA / file LEN SHA MODE OWNER PATH / unit U / package P / end
# Besides $TXN/header it leaves, without a process per line (a no-op apply is mostly this):
# HDR_PATHS, HDR_UNITS, HDR_PACKAGES (space-separated), HDR_BODY (the manifest body the bundle
# describes) and HDR_EXPECT ("PATH SHA MODE OWNER" lines as states_of prints them, agent last).
read_header() {
	read -r magic version || die 13 "empty bundle"
	[ "$magic $version" = "upkeep-bundle 1" ] || die 13 "not an upkeep bundle (version 1)"
	header='' HDR_PATHS='' HDR_UNITS='' HDR_PACKAGES='' HDR_BODY='' HDR_EXPECT='' agent_sha=''
	while read -r kind a b c d e; do
		case $kind in
		end)
			HDR_BODY=${HDR_BODY#"$NL"}
			HDR_EXPECT="${HDR_EXPECT#"$NL"}$NL${AGENT#"$ROOT"} $agent_sha 0755 root:root"
			printf '%s\n' "${header#"$NL"}" >"$TXN/header" || failed "cannot write $TXN (disk full?)"
			return 0
			;;
		agent)
			if ! { valid_word "$a" && valid_word "$b"; }; then die 13 "bad agent line"; fi
			agent_sha=$b
			;;
		file)
			case $e in /*) ;; *) die 13 "file path must be absolute: $e" ;; esac
			if ! { valid_word "$a" && valid_word "$b" && valid_word "$c" && valid_word "$d"; }; then die 13 "bad file line for $e"; fi
			case $e in *[!A-Za-z0-9._/@+-]* | */../* | */./* | *//*) die 13 "bad file path: $e" ;; esac
			HDR_PATHS="$HDR_PATHS $e"
			HDR_BODY="$HDR_BODY${NL}file $b $c $d $e"
			HDR_EXPECT="$HDR_EXPECT$NL$e $b $c $d"
			;;
		unit | package)
			valid_word "$a" || die 13 "bad $kind name: $a"
			HDR_BODY="$HDR_BODY$NL$kind $a"
			if [ "$kind" = unit ]; then HDR_UNITS="$HDR_UNITS $a"; else HDR_PACKAGES="$HDR_PACKAGES $a"; fi
			;;
		*) die 13 "unknown bundle line: $kind" ;;
		esac
		header="$header$NL$kind $a $b $c $d $e"
	done
	die 13 "bundle ended before its header did"
}

# True when the host already is exactly this generation: manifest, disk, units, packages, agent.
already_there() { # NEW CURRENT
	[ "$2" = "$1" ] || return 1
	[ "$(manifest_body "$STATE/manifest")" = "$HDR_BODY" ] || return 1
	# shellcheck disable=SC2086 # validated paths and unit names
	[ "$(states_of $HDR_PATHS "${AGENT#"$ROOT"}")" = "$HDR_EXPECT" ] || return 1
	# shellcheck disable=SC2086
	unit_states $HDR_UNITS |
		awk '$2 != "enabled" || ($1 ~ /\.(timer|socket)$/ && $3 != "active" && $3 != "offline") { bad = 1 } END { exit bad }' || return 1
	[ -z "$(missing_packages)" ]
}

missing_packages() {
	wanted=$HDR_PACKAGES
	[ -n "$wanted" ] || return 0
	if command -v dpkg-query >/dev/null 2>&1; then
		# shellcheck disable=SC2016,SC2086 # a dpkg format string; validated package names
		installed=" $(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package} ${Status}\n' $wanted 2>/dev/null | awk '/ install ok installed$/ { printf "%s ", $1 }')"
	else
		installed=' '
		for p in $wanted; do
			if rpm --root="${ROOT:-/}" -q "$p" >/dev/null 2>&1; then installed="$installed$p "; fi
		done
	fi
	for p in $wanted; do
		case $installed in *" $p "*) ;; *) printf '%s ' "$p" ;; esac
	done
}

# Cuts the spooled contents (in header order, no separators) into the stage, checking every hash.
stage() { # NEW PLAN BASE
	mkdir -p "$TXN/stage/files" || return 1
	offset=1
	while read -r kind len sha mode owner path; do
		case $kind in agent | file) ;; *) continue ;; esac
		if [ "$kind" = agent ]; then out=$TXN/agent; else out=$TXN/stage/files$path; fi
		mkdir -p "${out%/*}" || return 1
		tail -c +"$offset" "$TXN/spool" | head -c "$len" >"$out" || return 1
		got=$(sha256sum <"$out") || return 1
		[ "${got%% *}" = "$sha" ] || {
			say "error content of ${path:-the agent} does not match its hash"
			return 1
		}
		offset=$((offset + len))
	done <"$TXN/header"
	rm -f "$TXN/spool"
	{
		say "upkeep-manifest 1"
		say "generation $1"
		say "plan $2"
		say "previous $3"
		say "$HDR_BODY"
	} >"$TXN/stage/manifest" || return 1
	sync -f "$TXN/stage/manifest"
}

# The switch itself, between the journal and the commit. Prints what it changed.
switch_to() { # NEW
	new_units=" $(awk '$1 == "unit" { printf "%s ", $2 }' "$TXN/header")"
	reload=no
	changed_units=''
	for u in $(awk '$1 == "unit" { print $2 }' "$STATE/manifest" 2>/dev/null); do
		case $new_units in *" $u "*) continue ;; esac
		if [ "$(unit_enabled "$u")" = enabled ]; then
			sc disable "$u" >/dev/null 2>&1 || return 1
			say "disabled $u"
		fi
		if live && [ "$(unit_active "$u")" = active ]; then systemctl stop "$u" || return 1; fi
	done
	while read -r kind _ sha mode owner path; do
		[ "$kind" = file ] || continue
		[ "$(file_state "$path")" = "$sha $mode $owner" ] && continue
		install_file "$TXN/stage/files$path" "$path" "$mode" "$owner" || {
			say "error cannot install $path"
			return 1
		}
		say "wrote $path"
		if is_unit_file "$path"; then
			reload=yes
			changed_units="$changed_units ${path##*/}"
		fi
	done <"$TXN/header"
	new_paths=" $(awk '$1 == "file" { printf "%s ", $6 }' "$TXN/header")"
	for p in $(awk '$1 == "file" { print $5 }' "$STATE/manifest" 2>/dev/null); do
		case $new_paths in *" $p "*) continue ;; esac
		[ -e "$ROOT$p" ] || continue
		remove_file "$p" || return 1
		say "removed $p"
		if is_unit_file "$p"; then reload=yes; fi
	done
	step files
	if live && [ $reload = yes ]; then
		systemctl daemon-reload || return 1
		say "daemon-reload"
	fi
	for u in $new_units; do
		if [ "$(unit_enabled "$u")" != enabled ]; then
			sc enable "$u" >/dev/null 2>&1 || {
				say "error cannot enable $u"
				return 1
			}
			say "enabled $u"
		fi
		# Timers and sockets run from now on, not from the next boot (a socket serves the other
		# hosts: the monitor's liveness, a reboot set member's readiness).
		case $u in *.timer | *.socket) ;; *) continue ;; esac
		live || continue
		if [ "$(unit_active "$u")" != active ]; then
			systemctl start "$u" || return 1
		else
			# A changed timer is restarted so its new schedule counts from now, a changed socket
			# so it listens where it now says.
			case " $changed_units " in *" $u "*)
				systemctl restart "$u" || return 1
				say "restarted $u"
				;;
			esac
		fi
	done
	step units
}

# Ends the agent within a second or two of its connection going away (client killed, applier
# killed, master closed) instead of at its next output line, so the lock is freed at once and the
# next run recovers. A line on stdout every second fails as soon as nobody reads it.
watch_connection() {
	live || return 0
	(
		trap '' PIPE
		# Also ends when the agent itself is gone (SIGKILL skips its EXIT trap).
		while sleep 1 >/dev/null 2>&1 && kill -0 "$$" 2>/dev/null; do
			say alive 2>/dev/null || {
				kill -s TERM "-$$" 2>/dev/null || kill -s TERM "$$"
				exit 0
			}
		done
	) 9>&- &
	WATCHDOG=$!
	trap 'kill "$WATCHDOG" 2>/dev/null' EXIT
}

# Replaces the installed agent (used by the self-rollback timer) when the streamed one differs.
install_agent() {
	[ -f "$TXN/agent" ] || return 0
	install_file "$TXN/agent" "${AGENT#"$ROOT"}" 0755 root:root
}

cmd_apply() { # NEW BASE PLAN CONFIRMSECONDS
	new=$1 base=$2 plan=$3 confirm=$4
	for w in "$new" "$base" "$plan" "$confirm"; do valid_word "$w" || die 13 "bad argument: $w"; done
	RECOVERED=''
	take_lock "$CHANGE_LOCK_WAIT"
	watch_connection
	step lock
	recover
	step recover
	old=$(current_generation)
	if ! { rm -rf "$TXN" && mkdir -p "$TXN"; }; then failed "cannot create $TXN (disk full?)"; fi
	read_header
	if [ "$old" != "$base" ] && [ "$old" != "$new" ]; then
		say "current $old"
		die 11 "host is on generation $old, the plan was computed against $base: re-plan (upkeep plan --live) and review again"
	fi
	if already_there "$new" "$old"; then
		rm -rf "$TXN"
		say "previous $old"
		say "result unchanged"
		return 0
	fi
	cat >"$TXN/spool" || failed "cannot spool the bundle (disk full?)"
	prev=$(mget previous "$STATE/manifest")
	if [ "$old" = "$new" ]; then previous=${prev:-none}; else previous=$old; fi
	stage "$new" "$plan" "$previous" || failed "staging failed (disk full?)"
	install_agent || failed "cannot install the agent"
	step stage
	missing=$(missing_packages)
	missing=${missing% }
	if [ -n "$missing" ]; then
		live || failed "packages missing from the image: $missing"
		# In a session of its own, so a dropped connection (which ends the agent's process group)
		# never interrupts dpkg halfway; its output goes to a log for the same reason.
		if command -v apt-get >/dev/null 2>&1; then
			# shellcheck disable=SC2086 # package names are validated words
			# Package lists may be missing or stale (fresh images ship none): update once and retry.
			DEBIAN_FRONTEND=noninteractive setsid -w sh -c 'apt-get install -y --no-install-recommends "$@" || { apt-get update && apt-get install -y --no-install-recommends "$@"; }' apt $missing </dev/null >"$STATE/packages.log" 2>&1 9>&-
		else
			# shellcheck disable=SC2086
			setsid -w dnf install -y $missing </dev/null >"$STATE/packages.log" 2>&1 9>&-
		fi || failed "installing $missing failed: $(tail -n 3 "$STATE/packages.log" | tr '\n' ' ')"
		say "installed $missing"
	fi
	step packages
	paths=$( (awk '$1 == "file" { print $6 }' "$TXN/header" && awk '$1 == "file" { print $5 }' "$STATE/manifest" 2>/dev/null) | sort -u)
	units=$( (awk '$1 == "unit" { print $2 }' "$TXN/header" && awk '$1 == "unit" { print $2 }' "$STATE/manifest" 2>/dev/null) | sort -u)
	snapshot "$TXN/before" "$paths" "$units" "$STATE/manifest" || failed "cannot snapshot the current state (disk full?)"
	step snapshot
	# Before the commit, so no host is ever on a new generation without it; it names $new, so it says
	# nothing while the host is still (or again) on $old.
	if live; then say "$new" | write_atomic "$STATE/unsettled" || failed "cannot write $STATE/unsettled (disk full?)"; fi
	say "switch $old $new" | write_atomic "$STATE/journal" || failed "cannot write the journal (disk full?)"
	step journal
	if ! switch_to "$new" || ! write_atomic "$STATE/manifest" <"$TXN/stage/manifest"; then
		restore_snapshot "$TXN/before" || die 20 "switch to $new failed and the old state could not be restored; the next run retries"
		rm -f "$STATE/journal"
		failed "switch to $new failed and was undone"
	fi
	step commit
	finish_switch "$old" "$new" || say "warning could not tidy up after the commit"
	prune
	say "previous $old"
	say "result changed"
	if live && [ "$confirm" != 0 ]; then arm_rollback "$new" "$confirm"; fi
	step arm
}

# Fails an apply that changed nothing live yet.
failed() {
	rm -rf "$TXN"
	die 12 "$1; the host stays on generation $old"
}

rollback_unit() { say "upkeep-rollback-$(say "$1" | cut -c1-16)"; }

# The host returns to the previous generation by itself unless `confirm` arrives in time, so a
# change that breaks ssh heals itself (as deploy-rs's magic rollback does).
arm_rollback() { # GEN SECONDS
	for g in $(cat "$STATE/unconfirmed" 2>/dev/null) "$1"; do
		systemctl stop "$(rollback_unit "$g").timer" >/dev/null 2>&1
		systemctl reset-failed "$(rollback_unit "$g").service" >/dev/null 2>&1
	done
	unit=$(rollback_unit "$1")
	# The switch is committed by now: failing to arm is reported, not turned into a failed apply.
	if ! { say "$1" | write_atomic "$STATE/unconfirmed" &&
		systemd-run --quiet --unit="$unit" --on-active="$2s" --timer-property=AccuracySec=1s \
			/bin/sh "${AGENT#"$ROOT"}" rollback-unconfirmed "$1" 9>&-; }; then
		rm -f "$STATE/unconfirmed"
		say "warning cannot arm the self-rollback: generation $1 stays without confirmation"
		return 0
	fi
	say "armed $unit"
}

# --- confirm, rollback ----------------------------------------------------------------------

# Holds the lock for a step about generation GEN, after recovery; refuses a host not on it.
lock_on_generation() { # GEN
	valid_word "$1" || die 13 "bad generation"
	RECOVERED=''
	take_lock 30
	recover
	[ "$(current_generation)" = "$1" ] || die 15 "host is on generation $(current_generation), not $1: it rolled back"
}

cmd_confirm() { # GEN
	lock_on_generation "$1"
	if [ -f "$STATE/unconfirmed" ]; then
		systemctl stop "$(rollback_unit "$1").timer" >/dev/null 2>&1
		rm -f "$STATE/unconfirmed" && sync "$STATE"
	fi
	say "confirmed $1"
}

# The applier saw generation GEN pass its gates (and its group's soak): the change is done, and a
# repair's way back is no longer needed.
cmd_settle() { # GEN
	lock_on_generation "$1"
	rm -rf "$STATE/repair" && rm -f "$STATE/unsettled" && sync "$STATE"
	say "settled $1"
}

do_rollback() {
	cur=$(current_generation)
	[ "$cur" != none ] || die 15 "nothing to roll back: upkeep never applied here"
	if [ -d "$STATE/repair" ]; then
		# An unsettled repair goes back to the state it repaired, on the same generation.
		say "rollback-repair $cur $cur" | write_atomic "$STATE/journal" || die 12 "cannot write the journal"
		restore_snapshot "$STATE/repair" || die 20 "rollback of the repair of $cur failed; the next run retries"
		rm -rf "$STATE/repair"
	else
		[ -d "$STATE/undo/$cur" ] || die 14 "no snapshot to return from generation $cur"
		to=$(mget previous "$STATE/manifest")
		say "rollback $cur ${to:-none}" | write_atomic "$STATE/journal" || die 12 "cannot write the journal"
		restore_snapshot "$STATE/undo/$cur" || die 20 "rollback from $cur failed; the next run retries"
	fi
	rm -f "$STATE/journal" "$STATE/unconfirmed" "$STATE/unsettled" && sync "$STATE"
	say "from $cur"
	say "to $(current_generation)"
}

cmd_rollback() { # [EXPECTED-TARGET]
	RECOVERED=''
	take_lock "$CHANGE_LOCK_WAIT"
	recover
	if [ -n "${1:-}" ]; then
		if [ -d "$STATE/repair" ]; then want=$(current_generation); else want=$(mget previous "$STATE/manifest"); fi
		[ "$1" = "${want:-none}" ] || die 14 "only ${want:-none} can be restored, not $1"
	fi
	do_rollback
}

cmd_rollback_unconfirmed() { # GEN
	valid_word "$1" || die 13 "bad generation"
	RECOVERED=''
	take_lock 600
	recover
	if [ "$(cat "$STATE/unconfirmed" 2>/dev/null)" = "$1" ] && [ "$(current_generation)" = "$1" ]; then
		do_rollback
		logger -t upkeep "generation $1 was not confirmed in time: rolled back" 2>/dev/null
	fi
}

# --- health, break-lock ---------------------------------------------------------------------

# "check UNIT RESULT STATUS" from the unit's last run ("missing": no such unit here, "never": it has
# not run since it was installed or the host booted). A check unit's exit status is its severity.
check_result() { # UNIT
	if [ "$(systemctl show -p LoadState --value "$1" 2>/dev/null)" != loaded ]; then
		say "check $1 missing"
	elif [ "$(systemctl show -p ExecMainExitTimestampMonotonic --value "$1")" = 0 ]; then
		say "check $1 never"
	else
		say "check $1 $(systemctl show -p Result --value "$1") $(systemctl show -p ExecMainStatus --value "$1")"
	fi
}

failed_units() {
	systemctl list-units --state=failed --plain --no-legend 2>/dev/null | while read -r u _; do say "failed $u"; done
}

cmd_health() { # CHECKUNIT...
	live || die 14 "health checks need a running host"
	for u in "$@"; do
		valid_word "$u" || die 13 "bad unit name: $u"
		if [ "$(systemctl show -p LoadState --value "$u" 2>/dev/null)" != loaded ]; then
			say "check $u missing"
			continue
		fi
		systemctl reset-failed "$u" >/dev/null 2>&1
		# A oneshot check's start returns when it has run.
		rc=0
		timeout 300 systemctl start "$u" >/dev/null 2>&1 || rc=$?
		if [ "$(systemctl show -p ExecMainExitTimestampMonotonic --value "$u")" = 0 ]; then
			# A unit nothing refers to (no timer) may be unloaded as soon as it has run, and its
			# results with it: only the start's own status is left.
			if [ "$rc" = 0 ]; then say "check $u success 0"; else say "check $u failed $rc"; fi
		else
			check_result "$u"
		fi
	done
	for u in $(awk '$1 == "unit" && $2 ~ /\.timer$/ { print $2 }' "$STATE/manifest" 2>/dev/null); do
		say "timer $u $(unit_active "$u")"
	done
	failed_units
	say "system $(systemctl is-system-running 2>/dev/null)"
}

# The host as it is just before a change, without running anything: the checks' last results and
# the failed units. The gate after the change blames it only for what was not already failing.
cmd_health_before() { # CHECKUNIT...
	live || die 14 "health checks need a running host"
	for u in "$@"; do
		valid_word "$u" || die 13 "bad unit name: $u"
		check_result "$u"
	done
	failed_units
}

cmd_break_lock() {
	RECOVERED=''
	open_lock
	if ! flock -n 9; then
		lock_info
		pid=$(mget pid "$STATE/lock.holder")
		valid_word "${pid:-x}" || die 20 "the lock's holder is unknown"
		# The holder leads its own process group (sshd and the local transport start it so):
		# ending the group also ends the children that inherited the lock.
		kill -s TERM "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null
		flock -w 10 9 || {
			kill -s KILL "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null
			flock -w 10 9 || die 20 "the lock is still held after killing $pid"
		}
		say "broken $pid"
	fi
	recover
}

main() {
	cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	read-state) cmd_read_state ;;
	apply) cmd_apply "$@" ;;
	confirm) cmd_confirm "$@" ;;
	settle) cmd_settle "$@" ;;
	rollback) cmd_rollback "$@" ;;
	rollback-unconfirmed) cmd_rollback_unconfirmed "$@" ;;
	health) cmd_health "$@" ;;
	health-before) cmd_health_before "$@" ;;
	break-lock) cmd_break_lock ;;
	*) die 13 "usage: upkeep-agent read-state|apply|confirm|settle|rollback|rollback-unconfirmed|health|health-before|break-lock" ;;
	esac
}

main "$@"
