// Typed bindings for the Hetzner Cloud Terraform provider (hetznercloud/hcloud).

export * from './provider.ts';
export * from './server.ts';
export * from './ssh-key.ts';
export * from './firewall.ts';
export * from './placement-group.ts';
export * from './network.ts';
export * from './volume.ts';
export * from './primary-ip.ts';
export * from './rdns.ts';
export * from './image-data.ts';
