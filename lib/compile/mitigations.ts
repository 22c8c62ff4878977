// Mitigations: what a host does about a vulnerability that has no fixed package yet (mitigations.sh).
//
// Every host with an update policy gets the mitigation units, even with an empty list: a
// mitigation removed from the policy must still be reverted on the hosts that applied it, and
// mitigations.sh reverts whatever its state records and the list no longer names.
//
// They reach the fleet with the rollout, staging first: the health gate of every wave starts
// upkeep-check-mitigations.service, which runs mitigations.sh first (ExecStartPre=) and then
// verifies each mitigation is in effect on the host (a stopped unit inactive, a masked one masked,
// a drop-in with its content, a port in the firewall table) and each reverted one is gone. A
// mitigation that does not take on staging stops the rollout before production.

import type { ResolvedMitigation, ResolvedUpdates } from '../policy/resolved.ts';
import { CONFIG_DIR } from './desired-state.ts';
import { configFile } from './host-part.ts';
import { checked, PACKAGE_NAME } from './host-word.ts';
import { runtimeCommand, seconds, unitFile } from './systemd.ts';
import type { ManagedFile } from './desired-state.ts';

const MITIGATIONS_LIST = `${CONFIG_DIR}/mitigations.list`;
const MITIGATION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const UNIT_NAME = /^[A-Za-z0-9:_.@-]+$/;
const SAFE_FIELD = /^[^\t\n\r]+$/;

/** The unit that applies and reverts mitigations; the check unit requires it. */
export const MITIGATIONS_SERVICE = 'upkeep-mitigations.service';
/** Started by the health gate (its name matches the rollout's check units) and by nothing else. */
export const MITIGATIONS_CHECK = 'upkeep-check-mitigations.service';

function mitigationLine(m: ResolvedMitigation): string {
  const fields = [checked(m.id, MITIGATION_ID, 'mitigation id'), checked(m.package, PACKAGE_NAME, 'package name'), m.fixedIn ?? '-'];
  const a = m.action;
  if (a.kind === 'mask-unit' || a.kind === 'stop-unit') fields.push(a.kind, checked(a.unit, UNIT_NAME, 'unit name'));
  else if (a.kind === 'firewall-port') fields.push(a.kind, `${a.port}/${a.protocol}`);
  else fields.push(a.kind, a.path);
  return fields.map((f) => checked(f, SAFE_FIELD, 'mitigation field')).join('\t');
}

/**
 * The paths outside upkeep's own files that mitigations.sh may write for `m`: a drop-in's target
 * (and the directories above it that are missing), the /dev/null link of a masked unit. plan.md
 * lists them, so a reviewer sees every file a mitigation touches.
 */
export function mitigationWrites(m: ResolvedMitigation): string[] {
  switch (m.action.kind) {
    case 'drop-in':
      return [m.action.path];
    case 'mask-unit':
      return [`/etc/systemd/system/${m.action.unit}`];
    case 'stop-unit':
    case 'firewall-port':
      return [];
  }
}

function mitigationFiles(mitigations: readonly ResolvedMitigation[]): ManagedFile[] {
  const sorted = [...mitigations].sort((a, b) => a.id.localeCompare(b.id));
  const list = sorted.map((m) => `${mitigationLine(m)}\n`).join('');
  const dropIns = sorted.flatMap((m) => {
    if (m.action.kind !== 'drop-in') return [];
    if (!m.action.path.startsWith('/')) throw new Error(`mitigation ${m.id}: drop-in path must be absolute: ${m.action.path}`);
    return [configFile(`${CONFIG_DIR}/mitigations/${m.id}.content`, m.action.content)];
  });
  return [configFile(MITIGATIONS_LIST, list), ...dropIns];
}

export interface MitigationsPart {
  readonly files: readonly ManagedFile[];
  readonly units: readonly string[];
  readonly packages: readonly string[];
  readonly scripts: readonly string[];
  /** ExecStartPost= of the update runs: a fix they installed reverts its mitigation at once. */
  readonly afterUpdates: string;
}

/** The mitigations of a host's update policy (possibly none: see the top of this file). */
export function compileMitigations(updates: ResolvedUpdates): MitigationsPart {
  const firewall = updates.mitigations.some((m) => m.action.kind === 'firewall-port');
  return {
    files: [
      ...mitigationFiles(updates.mitigations),
      unitFile(MITIGATIONS_SERVICE, {
        Unit: { Description: 'upkeep: apply mitigations until their fixes are installed, revert the others' },
        Service: { Type: 'oneshot', ExecStart: runtimeCommand('mitigations.sh') },
      }),
      unitFile('upkeep-mitigations.timer', {
        Unit: { Description: 'upkeep: apply or revert mitigations' },
        Timer: { OnActiveSec: '30s', OnUnitActiveSec: seconds(updates.securityCheckSeconds), AccuracySec: '1min' },
        Install: { WantedBy: 'timers.target' },
      }),
      unitFile(MITIGATIONS_CHECK, {
        Unit: { Description: 'upkeep: mitigations in effect, reverted ones gone' },
        // Not Requires=: a failed dependency leaves this unit's Result as it was, which the gate would read as a pass.
        Service: { Type: 'oneshot', ExecStartPre: `/usr/bin/systemctl start ${MITIGATIONS_SERVICE}`, ExecStart: runtimeCommand('mitigations.sh', 'verify') },
      }),
    ],
    units: ['upkeep-mitigations.timer'],
    packages: firewall ? ['nftables'] : [],
    scripts: ['mitigations.sh'],
    afterUpdates: `/usr/bin/systemctl start ${MITIGATIONS_SERVICE}`,
  };
}
