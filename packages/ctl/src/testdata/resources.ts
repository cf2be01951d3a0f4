import type { Boot } from '@smelt/shared/boot';
import type { Deployment } from '@smelt/shared/deployment';
import type { Machine } from '@smelt/shared/machine';

// Sample API objects for tests, valid against the shared response schemas.

export const now = new Date('2025-01-10T12:00:00Z');

export const boot: Boot = {
  name: 'debian12',
  kind: 'installer',
  flavour: 'preseed',
  kernel: '/srv/debian/linux',
  initrd: ['/srv/debian/initrd.gz'],
  cmdline: 'auto=true priority=critical',
  createdAt: '2025-01-10T11:55:00Z',
  updatedAt: '2025-01-10T11:55:00Z',
};

export const isoBoot: Boot = {
  name: 'alma9',
  kind: 'installer',
  flavour: 'kickstart',
  isoPath: '/srv/iso/alma9.iso',
  isoPrefix: 'alma9',
  kernel: 'images/pxeboot/vmlinuz',
  initrd: ['images/pxeboot/initrd.img'],
  createdAt: '2025-01-07T12:00:00Z',
  updatedAt: '2025-01-07T12:00:00Z',
};

export const deployment: Deployment = {
  name: 'web1',
  mac: 'aa:bb:cc:dd:ee:01',
  boot: 'debian12',
  type: 'preseed',
  address: '10.0.0.51',
  hostname: 'web1',
  dns: ['10.0.0.1'],
  vars: { role: 'web' },
  state: 'provisioning',
  createdAt: '2025-01-10T10:00:00Z',
  updatedAt: '2025-01-10T10:00:00Z',
};

export const machine: Machine = {
  mac: 'aa:bb:cc:dd:ee:01',
  firstSeen: '2025-01-09T12:00:00Z',
  lastSeen: '2025-01-10T11:59:30Z',
  arch: 'x86-64 UEFI',
  vendor: 'Supermicro',
  uuid: '4c4c4544-0031-3410-8051-b4c04f4a4d32',
  labels: { rack: 'r12' },
  state: 'provisioning',
  deployment: 'web1',
  createdAt: '2025-01-09T12:00:00Z',
  updatedAt: '2025-01-10T11:59:30Z',
};

export const freeMachine: Machine = {
  mac: 'aa:bb:cc:dd:ee:02',
  labels: {},
  state: 'free',
  deployment: null,
  createdAt: '2025-01-09T12:00:00Z',
  updatedAt: '2025-01-09T12:00:00Z',
};
