import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bootSpecSchema } from '@smelt/shared/boot';
import { SmeltError } from '../errors.ts';
import { createIsoCache } from '../iso/cache.ts';
import { mkisofs, tempDir, writeTree } from '../iso/testdata/xorriso.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { createInventory } from './inventory.ts';

/** A boot whose kernel and initrd live inside an ISO is checked against the ISO's contents when it is made. */
describe('boots from an ISO', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let iso: string;
  const isos = createIsoCache();
  let store: ReturnType<typeof openSqliteStore>;
  let inventory: ReturnType<typeof createInventory>;

  before(async () => {
    dir = await tempDir('boots');
    await writeTree(join(dir.path, 'src'), {
      'casper/vmlinuz': 'kernel',
      'casper/initrd': 'initrd',
      'boot/grub/grub.cfg': 'menuentry',
    });
    iso = join(dir.path, 'ubuntu.iso');
    await mkisofs(join(dir.path, 'src'), iso, ['-R', '-J']);
    store = openSqliteStore(join(dir.path, 'data'));
    inventory = createInventory(store, isos);
  });
  after(async () => {
    await isos.close();
    await store.close();
    await dir.remove();
  });

  const spec = (overrides: Record<string, unknown>) =>
    bootSpecSchema.parse({
      name: 'ubuntu',
      isoPrefix: 'ubuntu',
      kernel: 'casper/vmlinuz',
      initrd: ['casper/initrd'],
      ...overrides,
    });

  async function refusal(overrides: Record<string, unknown>): Promise<SmeltError> {
    const error: unknown = await inventory.boots.create(spec({ isoPath: iso, ...overrides })).then(
      () => assert.fail('the boot was accepted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof SmeltError, String(error));
    assert.equal(error.code, 'invalid_request');
    return error;
  }

  test('a kernel or initrd that is not in the ISO is refused, naming the closest paths', async () => {
    const error = await refusal({ kernel: 'casper/vmlinuz.efi', initrd: ['casper/initrd', 'casper/initrd.lz'] });
    assert.deepEqual(
      error.errors.map((e) => e.path),
      ['kernel', 'initrd.1'],
    );
    assert.match(
      error.errors[0]?.message ?? '',
      /"casper\/vmlinuz\.efi" is not in .*ubuntu\.iso; closest: casper\/vmlinuz/,
    );
    assert.match(error.errors[1]?.message ?? '', /closest: casper\/initrd/);
  });

  test('a missing ISO or a file that is not an ISO is refused at isoPath', async () => {
    const missing = await refusal({ isoPath: join(dir.path, 'absent.iso') });
    assert.deepEqual(
      missing.errors.map((e) => [e.path, e.message]),
      [['isoPath', `no such file on the daemon's host: ${join(dir.path, 'absent.iso')}`]],
    );
    const notIso = join(dir.path, 'not.iso');
    await writeFile(notIso, Buffer.alloc(64 * 1024, 7));
    const wrong = await refusal({ isoPath: notIso });
    const [problem] = wrong.errors;
    assert.ok(problem);
    assert.equal(problem.path, 'isoPath');
    assert.match(problem.message, /not\.iso: /);
  });

  test('a boot whose files are in the ISO is created', async () => {
    const boot = await inventory.boots.create(spec({ isoPath: iso }));
    assert.equal(boot.isoPath, iso);
    assert.deepEqual(boot.initrd, ['casper/initrd']);
  });
});
