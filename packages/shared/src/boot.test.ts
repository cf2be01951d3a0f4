import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bootSchema, bootSpecSchema } from './boot.ts';

function issuesOf(input: unknown): { path: PropertyKey[]; message: string }[] {
  const result = bootSpecSchema.safeParse(input);
  assert.equal(result.success, false, 'expected the boot to be refused');
  return result.error.issues.map((issue) => ({ path: issue.path, message: issue.message }));
}

describe('bootSpecSchema', () => {
  test('fills in kind=installer and initrd=[]', () => {
    assert.deepEqual(bootSpecSchema.parse({ name: 'debian-12', kernel: '/srv/debian/linux' }), {
      name: 'debian-12',
      kind: 'installer',
      kernel: '/srv/debian/linux',
      initrd: [],
    });
  });

  test('keeps everything given', () => {
    const spec = {
      name: 'ubuntu',
      kind: 'installer',
      flavour: 'autoinstall',
      kernel: 'https://example.com/vmlinuz',
      initrd: ['/srv/ubuntu/initrd', 'http://example.com/extra.img'],
      cmdline: 'console=ttyS0',
      description: 'Ubuntu 24.04',
    };
    assert.deepEqual(bootSpecSchema.parse(spec), spec);
  });

  test('an installer without a kernel is refused at path kernel', () => {
    assert.deepEqual(issuesOf({ name: 'x' }), [
      { path: ['kernel'], message: 'a boot of kind "installer" needs a kernel' },
    ]);
  });

  test('live and image need a kernel too', () => {
    assert.deepEqual(issuesOf({ name: 'x', kind: 'live' }), [
      { path: ['kernel'], message: 'a boot of kind "live" needs a kernel' },
    ]);
    assert.deepEqual(issuesOf({ name: 'x', kind: 'image' }), [
      { path: ['kernel'], message: 'a boot of kind "image" needs a kernel' },
    ]);
  });

  test('ipxe and local need no kernel', () => {
    assert.deepEqual(bootSpecSchema.parse({ name: 'disk', kind: 'local' }), {
      name: 'disk',
      kind: 'local',
      initrd: [],
    });
    assert.deepEqual(bootSpecSchema.parse({ name: 'chain', kind: 'ipxe' }), {
      name: 'chain',
      kind: 'ipxe',
      initrd: [],
    });
  });

  test('isoPrefix without isoPath is refused at isoPath', () => {
    assert.deepEqual(issuesOf({ name: 'x', kernel: '/casper/vmlinuz', isoPrefix: 'ubuntu' }), [
      { path: ['isoPath'], message: 'isoPrefix is set, so isoPath is required' },
    ]);
  });

  test('isoPath without isoPrefix is refused at isoPrefix', () => {
    assert.deepEqual(issuesOf({ name: 'x', kernel: '/casper/vmlinuz', isoPath: '/srv/ubuntu.iso' }), [
      { path: ['isoPrefix'], message: 'isoPath is set, so isoPrefix is required' },
    ]);
  });

  test('isoPath and isoPrefix together are accepted', () => {
    const spec = bootSpecSchema.parse({
      name: 'ubuntu',
      kernel: 'casper/vmlinuz',
      initrd: ['casper/initrd'],
      isoPath: '/srv/ubuntu.iso',
      isoPrefix: 'ubuntu',
    });
    assert.equal(spec.isoPath, '/srv/ubuntu.iso');
    assert.equal(spec.isoPrefix, 'ubuntu');
    assert.equal(spec.kernel, 'casper/vmlinuz');
  });

  test('every coherence problem is reported at once', () => {
    assert.deepEqual(
      issuesOf({ name: 'x', isoPrefix: 'p' }).map((issue) => issue.path),
      [['kernel'], ['isoPath']],
    );
  });

  test('field rules: name, kind, relative ISO path, paths with spaces, unknown fields', () => {
    assert.deepEqual(issuesOf({ name: 'Debian', kernel: '/k' })[0]?.path, ['name']);
    assert.deepEqual(issuesOf({ name: 'x', kind: 'floppy', kernel: '/k' })[0]?.path, ['kind']);
    assert.deepEqual(issuesOf({ name: 'x', kernel: '/k', isoPath: 'rel.iso', isoPrefix: 'p' })[0], {
      path: ['isoPath'],
      message: 'the ISO path must be absolute',
    });
    assert.deepEqual(issuesOf({ name: 'x', kernel: '/my kernel' })[0]?.path, ['kernel']);
    assert.equal(issuesOf({ name: 'x', kernel: '/k', colour: 'blue' })[0]?.path.length, 0);
  });

  test('at most 8 initrds', () => {
    const initrd = Array.from({ length: 9 }, (_, i) => `/srv/initrd${i}`);
    assert.deepEqual(issuesOf({ name: 'x', kernel: '/k', initrd })[0]?.path, ['initrd']);
  });
});

describe('bootSchema', () => {
  test('applies the same coherence rules to a stored boot', () => {
    const stored = {
      name: 'x',
      kind: 'installer',
      initrd: [],
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
    };
    const result = bootSchema.safeParse(stored);
    assert.equal(result.success, false);
    assert.deepEqual(result.error.issues[0]?.path, ['kernel']);
    assert.equal(bootSchema.safeParse({ ...stored, kernel: '/k' }).success, true);
  });
});
