// The first-boot cloud-init document of a provisioned server: the minimum for the applier to take
// over. The hostname, and the pinned host key (replacing whatever keys the image would generate,
// so the key the applier expects is the only one the server can present). Operator keys arrive
// through Hetzner's ssh keys, which also stops Hetzner from mailing out a root password.
// Everything else (packages, units, authorized keys from then on) is the host rollout's job.

import { Fn } from 'cdktf';
import type { TlsPrivateKey } from './host-keys.ts';

/**
 * user_data for a server: "#cloud-config" followed by a JSON document (JSON is valid YAML). A port
 * other than 22 is set before sshd first starts, so the applier's first connection uses it.
 */
export function bootstrapUserData(hostname: string, key: TlsPrivateKey, sshPort = 22): string {
  const config = {
    hostname,
    preserve_hostname: false,
    ssh_deletekeys: true,
    ssh_genkeytypes: [],
    ssh_keys: {
      ed25519_private: key.privateKeyOpenssh,
      ed25519_public: key.publicKeyOpenssh,
    },
    ssh_pwauth: false,
    ...(sshPort !== 22 && {
      write_files: [{ path: '/etc/ssh/sshd_config.d/upkeep-port.conf', permissions: '0644', content: `Port ${sshPort}\n` }],
    }),
  };
  return `#cloud-config\n${Fn.jsonencode(config)}`;
}
