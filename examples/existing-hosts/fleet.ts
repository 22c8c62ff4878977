// Servers that already exist: upkeep maintains them, it does not create them. Each host is named
// by its address and pinned by its ssh host key, so the applier never trusts a key blindly.
// They are virtual machines at another provider (machine: 'virtual'): no disk SMART data or CPU
// sensor to check (hardwareChecks: false). A bare-metal server says machine: 'bare-metal', and the
// contract's hardware checks are asked for.

import { defineFleet } from 'upkeep';
import { standardContract, stagingLayer } from 'upkeep/policies/standard';

export default defineFleet({
  name: 'existing',
  defaults: standardContract({
    routes: [{ name: 'ops', webhook: 'https://alerts.example.com/hooks/upkeep', token: { env: 'ALERT_TOKEN' } }],
    backupRepository: { host: 'backup1' },
    backupPassword: { file: 'secrets/restic-password' },
    hardwareChecks: false,
  }),
  groups: {
    staging: stagingLayer(),
    production: { after: ['staging'], soak: '30m', batchSize: 1 },
  },
  hosts: {
    stage1: {
      machine: 'virtual',
      group: 'staging',
      roles: ['app'],
      address: '192.0.2.10',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx9Tn3bG5Rk2yJ1cQkT1mY4sLq8VnP0aZc7dFhW2uE3 stage1',
    },
    app1: {
      machine: 'virtual',
      group: 'production',
      roles: ['app'],
      address: '192.0.2.11',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq2mWv5Xo8Lr3sTz1bN7yK4cPd9Ue6fGh0jAi2kRl5S app1',
    },
    backup1: {
      machine: 'virtual',
      group: 'production',
      roles: ['backup'],
      address: '192.0.2.20',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn4Rt7yUi1oPa3sDf5gHj8kLz0xCv2bNm6qWe9rTy4U backup1',
      // Its own backup would be lost with it.
      exempt: { backups: 'The backup server holds the other hosts\' repositories; its volume is snapshotted by the provider.' },
    },
  },
});
