#!/bin/sh
# Exits 0 when root may write PATH (create, replace or remove it) without another user being able
# to send that write elsewhere; otherwise prints why, naming the path, and exits 1.
#
# Usage: safe-path.sh [-r] PATH
#   -r  PATH is a directory tree that is about to be written into: every directory under it is
#       held to the same rule as the nearest existing one below.
#
# A user who can write a directory on the way can plant a symlink there, or swap a directory for
# one, between any check and the write, and root then overwrites whatever the link names. So the
# rule is about who can change the path, not about what it is at the moment of a check:
# - PATH is absolute, without "." or ".." components, and not itself a symlink;
# - the nearest existing directory (PATH itself or the closest one above) and every directory
#   under it that is written (-r) are real directories owned by root (or by the user running this)
#   that no other user can write;
# - every directory above that is owned the same way and writable by no one else, or sticky like
#   /tmp: there others cannot rename or remove what they do not own, and what lies below on the
#   path is owned by root.
# Missing directories are created later by root inside the nearest existing one, which no one
# else can write, so nothing can be planted there in between.
set -eu

recursive=no
if [ "${1:-}" = -r ]; then
  recursive=yes
  shift
fi
path=${1:?usage: safe-path.sh [-r] PATH}
uid=$(id -u)

refuse() {
  echo "safe-path: refusing to write $path: $1" >&2
  exit 1
}

case $path in /*) ;; *) refuse "it is not an absolute path" ;; esac
case $path in / | /*[!/]) ;; *) refuse "it ends in a slash" ;; esac
case $path/ in *//?* | */./* | */../*) refuse "it has empty, \".\" or \"..\" components" ;; esac

if [ -L "$path" ]; then refuse "it is a symlink"; fi
if [ -d "$path" ]; then d=$path; else d=$(dirname "$path"); fi
while [ ! -e "$d" ] && [ ! -L "$d" ]; do d=$(dirname "$d"); done
nearest=$d

while :; do
  # stat does not follow a symlink unless asked to (-L).
  info=$(stat -c '%u %a %F' "$d")
  owner=${info%% *} info=${info#* }
  mode=${info%% *} kind=${info#* }
  [ "$kind" = directory ] || refuse "$d is a $kind, not a directory"
  [ "$owner" = 0 ] || [ "$owner" = "$uid" ] || refuse "$d is owned by user $owner"
  if [ $((0$mode & 022)) -ne 0 ]; then
    if [ "$d" = "$nearest" ] || [ $((0$mode & 01000)) -eq 0 ]; then refuse "$d is writable by other users"; fi
  fi
  [ "$d" != / ] || break
  d=$(dirname "$d")
done

if [ "$recursive" = yes ] && [ -d "$path" ]; then
  bad=$(find "$path" -type d \( \( ! -user 0 ! -user "$uid" \) -o -perm -g+w -o -perm -o+w \) -print | head -n 1)
  [ -z "$bad" ] || refuse "$bad is owned by or writable by another user"
fi
