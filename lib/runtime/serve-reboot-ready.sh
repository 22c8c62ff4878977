#!/bin/sh
# Answers one HTTP request on the reboot-readiness socket (systemd, Accept=yes) of a reboot set
# member: 200 when reboot-ready.sh says this host is ready, so another member may reboot; 503 with
# its reason otherwise. The other members' reboot.sh asks before it reboots. The answer is the
# same for every path; the request is read to its end all the same, since closing a socket with
# unread data resets the connection instead of delivering the answer.
set -u

cr=$(printf '\r')
while read -r line; do
  case $line in '' | "$cr") break ;; esac
done
said=$("$(dirname "$0")/reboot-ready.sh")
case $? in
  0) printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$said" ;;
  *) printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n%s\n' "$said" ;;
esac
