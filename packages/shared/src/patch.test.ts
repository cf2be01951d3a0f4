import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { bootPatchSchema } from './boot.ts';
import { deploymentPatchSchema } from './deployment.ts';
import { applyMergePatch, mergePatchShape } from './patch.ts';

describe('applyMergePatch', () => {
  test('null deletes, undefined leaves, values replace, new keys are added', () => {
    const target = { a: 1, b: 'two', c: [3], d: true };
    const result = applyMergePatch(target, { a: null, b: undefined, c: [4, 5], e: 'new' });
    assert.deepEqual(result, { b: 'two', c: [4, 5], d: true, e: 'new' });
  });

  test('an empty patch changes nothing', () => {
    assert.deepEqual(applyMergePatch({ a: 1, b: 2 }, {}), { a: 1, b: 2 });
  });

  test('null for a key that is not there leaves it absent', () => {
    const result = applyMergePatch({ a: 1 }, { missing: null });
    assert.deepEqual(result, { a: 1 });
    assert.equal(Object.hasOwn(result, 'missing'), false);
  });

  test('falsy values other than null replace', () => {
    assert.deepEqual(applyMergePatch({ a: 1, b: 'x', c: true }, { a: 0, b: '', c: false }), { a: 0, b: '', c: false });
  });

  test('an object value merges into the object key by key (RFC 7396 §2)', () => {
    assert.deepEqual(applyMergePatch({ vars: { a: '1', b: '2' } }, { vars: { c: '3', a: null } }), {
      vars: { b: '2', c: '3' },
    });
    assert.deepEqual(applyMergePatch({ vars: 'not an object' }, { vars: { c: '3' } }), { vars: { c: '3' } });
  });

  test('an array replaces the array', () => {
    assert.deepEqual(applyMergePatch({ dns: ['1.1.1.1', '8.8.8.8'] }, { dns: ['9.9.9.9'] }), { dns: ['9.9.9.9'] });
  });

  test('leaves the target and the patch untouched', () => {
    const target = { a: 1, b: 2 };
    const patch = { a: null, c: 3 };
    applyMergePatch(target, patch);
    assert.deepEqual(target, { a: 1, b: 2 });
    assert.deepEqual(patch, { a: null, c: 3 });
  });
});

describe('mergePatchShape', () => {
  const shape = {
    required: z.string(),
    optional: z.number().optional(),
    defaulted: z.enum(['x', 'y']).default('x'),
  };
  const patchSchema = z.strictObject(mergePatchShape(shape));

  test('every field may be absent, and defaults are not filled in', () => {
    assert.deepEqual(patchSchema.parse({}), {});
  });

  test('every field may be null', () => {
    assert.deepEqual(patchSchema.parse({ required: null, optional: null, defaulted: null }), {
      required: null,
      optional: null,
      defaulted: null,
    });
  });

  test('values are still validated by the field schema', () => {
    assert.deepEqual(patchSchema.parse({ defaulted: 'y', optional: 3 }), { defaulted: 'y', optional: 3 });
    assert.equal(patchSchema.safeParse({ defaulted: 'z' }).success, false);
    assert.equal(patchSchema.safeParse({ optional: 'three' }).success, false);
  });
});

describe('bootPatchSchema', () => {
  test('accepts a partial change without filling in defaults', () => {
    assert.deepEqual(bootPatchSchema.parse({ cmdline: 'console=ttyS0' }), { cmdline: 'console=ttyS0' });
  });

  test('accepts null to clear a field', () => {
    assert.deepEqual(bootPatchSchema.parse({ kernel: null, initrd: null, kind: null }), {
      kernel: null,
      initrd: null,
      kind: null,
    });
  });

  test('refuses a name change and unknown fields', () => {
    const result = bootPatchSchema.safeParse({ name: 'renamed' });
    assert.equal(result.success, false);
    assert.equal(result.error.issues[0]?.code, 'unrecognized_keys');
    assert.equal(bootPatchSchema.safeParse({ colour: 'blue' }).success, false);
  });

  test('still validates values', () => {
    const result = bootPatchSchema.safeParse({ kind: 'floppy' });
    assert.equal(result.success, false);
    assert.deepEqual(result.error.issues[0]?.path, ['kind']);
  });
});

describe('deploymentPatchSchema', () => {
  test('refuses the MAC: it cannot change', () => {
    const result = deploymentPatchSchema.safeParse({ mac: 'aa:bb:cc:dd:ee:ff' });
    assert.equal(result.success, false);
    assert.equal(result.error.issues.length, 1);
    assert.equal(result.error.issues[0]?.code, 'unrecognized_keys');
    assert.match(result.error.issues[0].message, /"mac"/);
  });

  test('accepts null for any field, including the boot', () => {
    assert.deepEqual(deploymentPatchSchema.parse({ hostname: null, address: null, boot: null, vars: null }), {
      hostname: null,
      address: null,
      boot: null,
      vars: null,
    });
  });

  test('accepts a rename and normalises values as the full schema does', () => {
    assert.deepEqual(deploymentPatchSchema.parse({ name: 'web01', netmask: '24', address: '10.0.0.20' }), {
      name: 'web01',
      netmask: '255.255.255.0',
      address: '10.0.0.20',
    });
  });

  test('refuses bad values with their path', () => {
    const result = deploymentPatchSchema.safeParse({ address: '10.0.0.256', dns: ['1.1.1.1', 'x'] });
    assert.equal(result.success, false);
    assert.deepEqual(
      result.error.issues.map((issue) => issue.path),
      [['address'], ['dns', 1]],
    );
  });

  test('an empty patch is valid and empty', () => {
    assert.deepEqual(deploymentPatchSchema.parse({}), {});
  });
});
