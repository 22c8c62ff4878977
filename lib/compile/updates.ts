// Updates: security fixes on a short timer, routine updates and reboots inside the maintenance
// window, and declared mitigations while a fix is missing.
//
// Our timers drive every run. On apt hosts the stock apt-daily(-upgrade) timers still fire, but
// 20auto-upgrades sets their periodic work to "0", so they do nothing; on dnf hosts the stock
// dnf-automatic timers are simply never enabled and our runs pass their own configuration.

import type { ResolvedHost, ResolvedUpdates, ResolvedWindow } from '../policy/resolved.ts';
import { securityCheckDelaySeconds } from '../policy/validate.ts';
import { CONFIG_DIR } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile, type HostPart } from './host-part.ts';
import { checked, PACKAGE_NAME } from './host-word.ts';
import { compileMitigations } from './mitigations.ts';
import { rebootSetFiles } from './reboot-set.ts';
import { runtimeCommand, seconds, unitFile } from './systemd.ts';

const WINDOW_ENV = `${CONFIG_DIR}/window.env`;

/** The runtime gate's view of the window (see lib/runtime/in-window.sh). */
export function windowEnv(window: ResolvedWindow): string {
  return renderEnvFile('The maintenance window, for in-window.sh.', {
    UPKEEP_WINDOW_DAYS: window.days.join(' '),
    UPKEEP_WINDOW_NTH: window.nth === undefined ? '' : String(window.nth),
    UPKEEP_WINDOW_START_MINUTE: window.startMinute,
    UPKEEP_WINDOW_DURATION: window.durationSeconds,
    UPKEEP_WINDOW_TZ: window.timeZone,
    UPKEEP_WINDOW_BLACKOUTS: window.blackouts.join(' '),
  });
}

// unattended-upgrades origin patterns. Debian names its security archive by codename and label,
// Ubuntu by archive (pocket); listing both forms keeps one file right for either distribution.
const SECURITY_ORIGINS = [
  'origin=${distro_id},archive=${distro_codename}-security',
  'origin=Debian,codename=${distro_codename}-security,label=Debian-Security',
];
const ROUTINE_ORIGINS = [
  'origin=${distro_id},archive=${distro_codename}',
  'origin=${distro_id},archive=${distro_codename}-updates',
  'origin=${distro_id},codename=${distro_codename}',
  'origin=${distro_id},codename=${distro_codename}-updates',
  ...SECURITY_ORIGINS,
];

function aptList(key: string, values: readonly string[]): string {
  return `#clear ${key};\n${key} {\n${values.map((v) => `  "${v}";\n`).join('')}};\n`;
}

/** unattended-upgrades takes blacklist entries as regular expressions; match the exact name. */
function exactPackagePattern(name: string): string {
  return `^${name.replace(/[.+]/g, (c) => `\\${c}`)}$`;
}

function aptFiles(updates: ResolvedUpdates) {
  const periodic =
    '// Managed by upkeep: its own timers run updates, so the stock apt-daily runs do nothing.\n' +
    'APT::Periodic::Update-Package-Lists "0";\n' +
    'APT::Periodic::Download-Upgradeable-Packages "0";\n' +
    'APT::Periodic::Unattended-Upgrade "0";\n' +
    'APT::Periodic::AutocleanInterval "7";\n';
  const routine =
    '// Managed by upkeep: routine runs (upkeep-routine-updates) take every update of the release.\n' +
    '// Reboots are upkeep-reboot\'s job, inside the maintenance window only.\n' +
    '// Ubuntu\'s stock configuration allows origins through Allowed-Origins as well; only ours count.\n' +
    '#clear Unattended-Upgrade::Allowed-Origins;\n' +
    aptList('Unattended-Upgrade::Origins-Pattern', ROUTINE_ORIGINS) +
    aptList('Unattended-Upgrade::Package-Blacklist', updates.hold.map(exactPackagePattern)) +
    'Unattended-Upgrade::Automatic-Reboot "false";\n' +
    'Unattended-Upgrade::MinimalSteps "true";\n';
  // apt reads the APT_CONFIG file first and Dir::Etc::main last, after apt.conf.d; pointing main
  // at this same file makes its origins override the routine ones for the security run only.
  const securityPath = `${CONFIG_DIR}/apt/security.conf`;
  const security =
    '// Managed by upkeep: the security run (upkeep-security-updates) takes security origins only.\n' +
    `Dir::Etc::main "${securityPath}";\n` +
    aptList('Unattended-Upgrade::Origins-Pattern', SECURITY_ORIGINS);
  return [
    configFile('/etc/apt/apt.conf.d/20auto-upgrades', periodic),
    configFile('/etc/apt/apt.conf.d/50upkeep-unattended-upgrades', routine),
    configFile(securityPath, security),
  ];
}

function dnfFiles(updates: ResolvedUpdates) {
  const conf = (kind: 'security' | 'routine') =>
    `# Managed by upkeep: the ${kind} run of updates.sh. Reboots are upkeep-reboot's job.\n` +
    '[commands]\n' +
    `upgrade_type = ${kind === 'security' ? 'security' : 'default'}\n` +
    'random_sleep = 0\n' +
    'download_updates = yes\n' +
    'apply_updates = yes\n' +
    'reboot = never\n\n' +
    '[emitters]\n' +
    'emit_via = stdio\n\n' +
    '[base]\n' +
    'debuglevel = 1\n' +
    (updates.hold.length > 0 ? `exclude = ${updates.hold.join(' ')}\n` : '');
  return [configFile(`${CONFIG_DIR}/dnf/routine.conf`, conf('routine')), configFile(`${CONFIG_DIR}/dnf/security.conf`, conf('security'))];
}

/**
 * Updates, reboots and mitigations for `host`. `staging`: the host is in a staging group, so its
 * timers install from the archive; a production host's timers install only versions `upkeep
 * update` promoted after staging ran them (lib/runtime/updates.sh).
 */
export function compileUpdates(host: ResolvedHost, updates: ResolvedUpdates, staging: boolean): HostPart {
  for (const name of updates.hold) checked(name, PACKAGE_NAME, 'held package');
  const { window } = updates;
  const reboots = updates.reboot !== 'never';
  const apt = host.packageFamily === 'apt';
  const mitigations = compileMitigations(updates);
  const mitigationsCommand = mitigations.afterUpdates;
  const network = { Wants: 'network-online.target', After: 'network-online.target' };

  const files = [
    configFile(WINDOW_ENV, windowEnv(window)),
    configFile(`${CONFIG_DIR}/updates.env`, renderEnvFile('Update policy, for updates.sh, reboot.sh and mitigations.sh.', {
      UPKEEP_PACKAGE_FAMILY: host.packageFamily,
      UPKEEP_REBOOT: updates.reboot,
      UPKEEP_UPDATE_ROLE: staging ? 'staging' : 'production',
      // Only when set: stable hosts' files stay as they were.
      ...(updates.channel === 'rolling' ? { UPKEEP_UPDATE_CHANNEL: 'rolling' } : {}),
      // Promotion installs with apt-get/dnf directly, which read neither the unattended-upgrades
      // blacklist nor dnf-automatic's exclude: updates.sh skips these itself.
      ...(updates.hold.length > 0 ? { UPKEEP_HOLD: updates.hold.join(' ') } : {}),
    })),
    ...(updates.rebootSet ? rebootSetFiles(host, window, updates.rebootSet) : []),
    ...(apt ? aptFiles(updates) : dnfFiles(updates)),
    ...mitigations.files,
    unitFile('upkeep-security-updates.service', {
      Unit: { Description: staging ? 'upkeep: install security updates (no reboot)' : 'upkeep: install small promoted updates (no reboot), note the pending ones', ...network },
      Service: {
        Type: 'oneshot',
        // Outside the window needrestart only lists services to restart; restarts drop connections.
        Environment: apt ? ['DEBIAN_FRONTEND=noninteractive', 'NEEDRESTART_MODE=l'] : undefined,
        ExecStart: runtimeCommand('updates.sh', 'security'),
        ExecStartPost: mitigationsCommand,
      },
    }),
    unitFile('upkeep-security-updates.timer', {
      Unit: { Description: `upkeep: look for security updates every ${seconds(updates.securityCheckSeconds)}` },
      Timer: {
        OnBootSec: '5min',
        OnUnitActiveSec: seconds(updates.securityCheckSeconds),
        RandomizedDelaySec: seconds(securityCheckDelaySeconds(updates.securityCheckSeconds)),
        AccuracySec: '1min',
      },
      Install: { WantedBy: 'timers.target' },
    }),
    unitFile('upkeep-routine-updates.service', {
      Unit: { Description: staging ? 'upkeep: install routine updates in the maintenance window' : 'upkeep: install promoted updates in the maintenance window', ...network },
      Service: {
        Type: 'oneshot',
        // Inside the window needrestart restarts what the updates need restarted.
        Environment: apt ? ['DEBIAN_FRONTEND=noninteractive', 'NEEDRESTART_MODE=a'] : undefined,
        // A late (Persistent= catch-up) or blackout-day start is skipped, not failed.
        ExecCondition: runtimeCommand('in-window.sh', WINDOW_ENV),
        ExecStart: runtimeCommand('updates.sh', 'routine'),
        ExecStartPost: [
          mitigationsCommand,
          ...(reboots ? ['/usr/bin/systemctl --no-block start upkeep-reboot.service'] : []),
        ],
        // Work that is still running when the window closes is stopped.
        TimeoutStartSec: seconds(window.durationSeconds),
      },
    }),
    unitFile('upkeep-routine-updates.timer', {
      Unit: { Description: 'upkeep: routine updates when the maintenance window opens' },
      Timer: {
        OnCalendar: window.onCalendar,
        Persistent: true,
        // Spread a fleet a little, never far into the window.
        RandomizedDelaySec: seconds(Math.min(window.durationSeconds / 10, 300)),
        AccuracySec: '1s',
      },
      Install: { WantedBy: 'timers.target' },
    }),
  ];
  if (reboots) {
    files.push(
      unitFile('upkeep-reboot.service', {
        Unit: { Description: `upkeep: reboot (${updates.reboot}) inside the maintenance window`, After: 'upkeep-routine-updates.service' },
        Service: { Type: 'oneshot', ExecStart: runtimeCommand('reboot.sh') },
      }),
      // Every quarter hour, so a reboot that became pending before the window happens early in
      // it; reboot.sh itself refuses outside the window and reboots at most once per opening.
      // A member of a reboot set looks every five minutes: the first half of its slot, the only
      // time it may begin a reboot, is at least ten minutes long (lib/policy/reboot-slot.ts).
      unitFile('upkeep-reboot.timer', {
        Unit: { Description: 'upkeep: look for a pending reboot while the maintenance window is open' },
        Timer: { OnCalendar: updates.rebootSet ? '*-*-* *:00/5:00' : '*-*-* *:00/15:00', AccuracySec: '1min' },
        Install: { WantedBy: 'timers.target' },
      }),
    );
  }
  return {
    files,
    units: ['upkeep-routine-updates.timer', 'upkeep-security-updates.timer', ...(reboots ? ['upkeep-reboot.timer'] : []), ...(updates.rebootSet ? ['upkeep-reboot-ready.socket'] : []), ...mitigations.units],
    // A reboot set member asks its peers whether they are ready with curl.
    packages: [...(apt ? ['unattended-upgrades'] : ['dnf-automatic', 'dnf-utils', 'python3-rpm']), ...(updates.rebootSet ? ['curl'] : []), ...mitigations.packages],
    scripts: ['in-window.sh', 'updates.sh', ...(reboots ? ['reboot.sh'] : []), ...(updates.rebootSet ? ['serve-reboot-ready.sh'] : []), ...mitigations.scripts],
  };
}
