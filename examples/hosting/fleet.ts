// A hosting company: a staging host, two production web hosts, a mail host, two nameservers, a
// backup server and a monitor host, all created in Hetzner Cloud and all under the standard
// maintenance contract.

import { defineFleet } from 'upkeep';
import { dnsChecks, mailChecks, standardContract, stagingLayer, webChecks } from 'upkeep/policies/standard';

const timeZone = 'Europe/Berlin';

export default defineFleet({
  name: 'hosting',
  defaults: standardContract({
    timeZone,
    routes: [{ name: 'oncall', webhook: 'https://alerts.example.com/hooks/upkeep', token: { env: 'ALERT_TOKEN' }, delivery: '2m' }],
    backupRepository: { host: 'backup1' },
    backupPassword: { env: 'RESTIC_PASSWORD' },
    // Every host is a Hetzner Cloud server: a virtual machine, with no disks or sensors of its own.
    hardwareChecks: false,
  }),
  groups: {
    staging: stagingLayer(timeZone),
    production: { after: ['staging'], soak: '30m', batchSize: 2, failureBudget: 0 },
  },
  hosts: {
    stage1: {
      group: 'staging',
      roles: ['web', 'mail'],
      provision: { serverType: 'cx22' },
      monitoring: { checks: webChecks('https://staging.example.com/', 'monitor1') },
    },
    web1: {
      group: 'production',
      roles: ['web'],
      provision: { serverType: 'cx32' },
      monitoring: { checks: webChecks('https://www.example.com/', 'monitor1') },
    },
    web2: {
      group: 'production',
      roles: ['web'],
      provision: { serverType: 'cx32' },
      monitoring: { checks: webChecks('https://shop.example.com/', 'monitor1') },
    },
    mail1: {
      group: 'production',
      roles: ['mail'],
      provision: { serverType: 'cx22', reverseDns: 'mail.example.com' },
      monitoring: {
        checks: mailChecks({ smtp: 'smtp://mail.example.com', imap: 'imaps://mail.example.com', mailbox: 'probe@example.com', password: { env: 'PROBE_MAIL_PASSWORD' }, monitor: 'monitor1' }),
      },
    },
    ns1: {
      group: 'production',
      roles: ['dns'],
      provision: { serverType: 'cx22' },
      monitoring: { checks: dnsChecks('ns1.example.com', 'example.com', 'monitor1') },
    },
    ns2: {
      group: 'production',
      roles: ['dns'],
      provision: { serverType: 'cx22', location: 'fsn1' },
      monitoring: { checks: dnsChecks('ns2.example.com', 'example.com', 'monitor1') },
    },
    backup1: {
      group: 'production',
      roles: ['backup'],
      provision: { serverType: 'cx22', volumeSize: 500 },
      // The backup server cannot keep its own backup: it goes off-site to a storage box.
      // Its host key is pinned: take it from the provider's documentation, not from a first connection.
      backups: { repository: { url: 'sftp:u100000@u100000.your-storagebox.de:/upkeep/backup1', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5m8hptD+U2OGQ/aVygINL/mtWPTFAKo6+C1jm9pjZx' } },
    },
    monitor1: {
      group: 'production',
      roles: ['monitor'],
      provision: { serverType: 'cx22', location: 'hel1' },
    },
  },
  // The two nameservers never reboot together: each has its own half of the window, and reboots
  // only while the other answers DNS. (Hosts with the role "dns" form this set by default; written
  // out here so it can be read.)
  rebootSets: { dns: { hosts: ['ns1', 'ns2'], port: 53 } },
  provisioning: {
    token: { env: 'HCLOUD_TOKEN' },
    location: 'nbg1',
    operatorKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7bJ5dfg0bE2oQ3oWc8rXb2sU0t1Xcm4t2n2zVt0b1X ops@example.com'],
    adminNetworks: ['203.0.113.0/24', '2001:db8:1::/48'],
    privateNetwork: '10.0.0.0/16',
    stateBackend: { local: { path: 'terraform.tfstate' } },
  },
});
