#!/bin/sh
# Answers one HTTP request on the reboot-readiness socket (systemd, Accept=yes) of a reboot set
# member: 200 when reboot-ready.sh says this host is ready, so another member may reboot; 503 with
# its reason otherwise. The other members' reboot.sh asks before it reboots. The request is read to
# its end all the same, since closing a socket with unread data resets the connection instead of
# delivering the answer.
#
# A request for /?nonce=N (32 hex digits, chosen by the asking member) gets, after the reason, an
# ssh signature (ssh-keygen -Y sign, namespace upkeep-reboot-ready) by this host's ssh host key,
# which the service receives as its credential "host-key", over the lines
#   upkeep reboot readiness / set SET / member HOST / nonce N / status 200|503
# so that the asker knows the answer is this host's and fresh (lib/compile/reboot-set.ts). Without
# a nonce, or without the credential (a host whose key the policy does not pin), the answer is
# not signed.
set -u

config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
cr=$(printf '\r')
nonce=
first=1
while read -r line; do
  case $line in '' | "$cr") break ;; esac
  if [ "$first" = 1 ]; then
    first=0
    nonce=$(printf '%s\n' "$line" | sed -n 's|^GET /?nonce=\([0-9a-f]\{32\}\) HTTP/1\.[01]\r\{0,1\}$|\1|p')
  fi
done
said=$("$(dirname "$0")/reboot-ready.sh")
case $? in
  0) status=200 head='200 OK' ;;
  *) status=503 head='503 Service Unavailable' ;;
esac
signature=
key=${CREDENTIALS_DIRECTORY:-/nonexistent}/host-key
if [ -n "$nonce" ] && [ -r "$key" ] && [ -r "$config_dir/reboot-set.env" ]; then
  # shellcheck source=/dev/null
  . "$config_dir/reboot-set.env"
  # ssh-keygen's complaints go to the journal (the service's stderr); the answer goes unsigned.
  signature=$(printf 'upkeep reboot readiness\nset %s\nmember %s\nnonce %s\nstatus %s\n' "$UPKEEP_REBOOT_SET" "$UPKEEP_REBOOT_MEMBER" "$nonce" "$status" |
    ssh-keygen -Y sign -q -f "$key" -n upkeep-reboot-ready) || {
    echo "serve-reboot-ready: could not sign the answer with the host key" >&2
    signature=
  }
fi
printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$head" "$said"
[ -z "$signature" ] || printf '%s\n' "$signature"
