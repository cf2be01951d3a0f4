import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Boot } from '@smelt/shared/boot';
import type { Deployment, DeploymentState } from '@smelt/shared/deployment';
import { renderGrub } from '../render/grub.ts';
import { renderIpxe, ScriptValueError } from '../render/ipxe.ts';
import { renderPxelinux } from '../render/pxelinux.ts';
import { decideBoot, type PolicyInput } from './policy.ts';
import { machineUrls } from './urls.ts';

const testdata = join(import.meta.dirname, '..', 'render', 'testdata');
const at = '2026-11-21T10:00:00.000Z';
const isoBoot: Boot = {
  name: 'ubuntu',
  kind: 'installer',
  flavour: 'autoinstall',
  kernel: 'casper/vmlinuz',
  initrd: ['casper/initrd'],
  cmdline: 'console=ttyS0,115200',
  isoPath: '/isos/ubuntu-24.04-live-server-amd64.iso',
  isoPrefix: 'ubuntu',
  createdAt: at,
  updatedAt: at,
};
const fileBoot: Boot = {
  name: 'debian12',
  kind: 'installer',
  kernel: '/srv/debian/linux',
  initrd: ['/srv/debian/initrd.gz'],
  createdAt: at,
  updatedAt: at,
};
const urlBoot: Boot = {
  name: 'rocky9',
  kind: 'installer',
  kernel: 'https://mirror.example/rocky/9/BaseOS/x86_64/os/images/pxeboot/vmlinuz',
  initrd: ['https://mirror.example/rocky/9/BaseOS/x86_64/os/images/pxeboot/initrd.img'],
  createdAt: at,
  updatedAt: at,
};
const mac = '52:54:00:12:34:56';

function input(
  over: Partial<PolicyInput> & { state?: DeploymentState; type?: Deployment['type']; live?: Deployment['live'] },
): PolicyInput {
  const boot = over.boot ?? isoBoot;
  const deployment: Deployment | undefined =
    over.state === undefined
      ? undefined
      : {
          name: 'web1',
          mac,
          boot: boot.name,
          hostname: 'web1.example.org',
          state: over.state,
          ...(over.type && { type: over.type }),
          ...(over.live && { live: over.live }),
          createdAt: at,
          updatedAt: at,
        };
  return {
    mac,
    deployment,
    boot,
    token: 'tok3n',
    wipeBoot: undefined,
    lifecycle: { unknown: 'hold', pollSeconds: 10, provisionTimeout: 7200 },
    urls: machineUrls('http://10.0.0.2'),
    ...over,
  };
}

/** Compares with testdata/<name> (.ipxe unless named); UPDATE_GOLDEN=1 rewrites the file instead. */
function golden(name: string, script: string): void {
  const path = join(testdata, name.includes('.') ? name : `${name}.ipxe`);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, script);
  assert.equal(script, readFileSync(path, 'utf8'), `${name}.ipxe (UPDATE_GOLDEN=1 to accept a deliberate change)`);
}

describe('boot policy and iPXE scripts', () => {
  test('a free machine is held in a polling loop', () => {
    golden('hold-free', renderIpxe(decideBoot(input({}))));
  });

  test('the unknown-machine policy can also leave, reboot or power off', () => {
    for (const unknown of ['ignore', 'reboot', 'poweroff'] as const) {
      const spec = decideBoot(input({ lifecycle: { unknown, pollSeconds: 10, provisionTimeout: 7200 } }));
      assert.equal(spec.kind, unknown === 'ignore' ? 'exit' : unknown);
    }
    golden(
      'policy-reboot',
      renderIpxe(decideBoot(input({ lifecycle: { unknown: 'reboot', pollSeconds: 10, provisionTimeout: 7200 } }))),
    );
  });

  test('provisioning from an ISO with autoinstall: files by ISO path, NoCloud seed, the ISO for casper', () => {
    golden('install-autoinstall-iso', renderIpxe(decideBoot(input({ state: 'provisioning' }))));
  });

  test('provisioning from local files with preseed, and from URLs with kickstart', () => {
    golden(
      'install-preseed-files',
      renderIpxe(decideBoot(input({ state: 'provisioning', boot: fileBoot, type: 'preseed' }))),
    );
    golden(
      'install-kickstart-urls',
      renderIpxe(decideBoot(input({ state: 'provisioning', boot: urlBoot, type: 'kickstart' }))),
    );
  });

  test('a deployed machine boots its disk: exit under UEFI, sanboot 0x80 under BIOS', () => {
    golden('local', renderIpxe(decideBoot(input({ state: 'deployed' }))));
  });

  test('a failed machine is held, not reinstalled in a loop', () => {
    const spec = decideBoot(input({ state: 'failed' }));
    assert.equal(spec.kind, 'hold');
    assert.match(renderIpxe(spec), /smeltctl reinstall 52:54:00:12:34:56/);
  });

  test('wiping boots the configured wipe boot with its phone-home, or holds when there is none', () => {
    assert.equal(decideBoot(input({ state: 'wiping' })).kind, 'hold');
    const script = renderIpxe(decideBoot(input({ state: 'wiping', wipeBoot: fileBoot })));
    assert.match(
      script,
      /smelt\.wipe=1 smelt\.phonehome=http:\/\/10\.0\.0\.2\/hooks\/52-54-00-12-34-56\/tok3n\/installed/,
    );
  });

  test('a value that could change the script is refused, not passed through', () => {
    for (const cmdline of ['quiet ${net0/ip}', 'a"b', "it's"]) {
      assert.throws(
        () => renderIpxe(decideBoot(input({ state: 'provisioning', boot: { ...fileBoot, cmdline } }))),
        ScriptValueError,
        cmdline,
      );
    }
    assert.throws(
      () =>
        renderIpxe(decideBoot(input({ state: 'provisioning', boot: { ...urlBoot, kernel: 'http://x/$(reboot)' } }))),
      ScriptValueError,
    );
  });

  test('PXELINUX and GRUB configs: the same decisions, our files by TFTP path from the tree', () => {
    const base = 'http://10.0.0.2';
    const install = decideBoot(input({ state: 'provisioning', boot: fileBoot, type: 'preseed' }));
    golden('install-preseed-files.pxelinux', renderPxelinux(install, base));
    golden('install-autoinstall-iso.grub', renderGrub(decideBoot(input({ state: 'provisioning' })), base));
    golden('local.pxelinux', renderPxelinux(decideBoot(input({ state: 'deployed' })), base));
    golden('local.grub', renderGrub(decideBoot(input({ state: 'deployed' })), base));
    golden('hold-free.pxelinux', renderPxelinux(decideBoot(input({})), base));
    golden('hold-free.grub', renderGrub(decideBoot(input({})), base));
    const plain = { ...urlBoot, kernel: 'http://mirror.example:8080/k', initrd: ['http://mirror.example:8080/i'] };
    const external = renderGrub(decideBoot(input({ state: 'provisioning', boot: plain })), base);
    assert.match(external, /linux '\(http,mirror\.example:8080\)\/k'/);
    assert.throws(
      () => renderGrub(decideBoot(input({ state: 'provisioning', boot: urlBoot })), base),
      ScriptValueError,
      'GRUB has no https',
    );
  });

  test('diskless: NFS root and squashfs in RAM for live-boot and dracut, with the phone-home on the command line', () => {
    const live = (l: NonNullable<Deployment['live']>) =>
      renderIpxe(decideBoot(input({ state: 'provisioning', type: 'live', boot: fileBoot, live: l })));
    golden('live-nfs', live({ nfsRoot: '10.0.0.9:/srv/roots/web', rw: true }));
    golden('live-nfs-dracut', live({ nfsRoot: '10.0.0.9:/srv/roots/web', style: 'dracut' }));
    golden('live-squashfs', live({ rootfs: '/live/filesystem.squashfs' }));
    golden('live-squashfs-dracut', live({ rootfs: 'http://mirror.example/live/rootfs.img', style: 'dracut' }));
    assert.match(
      live({ rootfs: '/live/x.squashfs' }),
      /smelt\.phonehome=http:\/\/10\.0\.0\.2\/hooks\/52-54-00-12-34-56\/tok3n\/installed/,
    );
    // A running diskless machine boots the same way every time.
    assert.equal(
      renderIpxe(decideBoot(input({ state: 'running', type: 'live', boot: fileBoot, live: { nfsRoot: 'nfs:/r' } }))),
      renderIpxe(
        decideBoot(input({ state: 'provisioning', type: 'live', boot: fileBoot, live: { nfsRoot: 'nfs:/r' } })),
      ),
    );
  });

  test('diskless: an iSCSI root is a sanboot with a per-machine initiator name', () => {
    const iscsi = { server: 'san.example:3261', target: 'iqn.2026-11.example.san:web1', lun: 2 };
    golden('live-iscsi', renderIpxe(decideBoot(input({ state: 'provisioning', type: 'live', live: { iscsi } }))));
  });
});
