import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { deploymentPatchSchema, deploymentSpecSchema } from '@smelt/shared/deployment';
import { machineSpecSchema } from '@smelt/shared/machine';
import { CliFailure } from '../failure.ts';
import { deploymentFlagFor, deploymentSettingsFromFlags, fieldsToUnset } from './deployment.ts';
import { readSshKeys } from './ssh-keys.ts';
import { validateFlags } from './validate.ts';

const dir = await mkdtemp(join(tmpdir(), 'smeltctl-flags-'));
after(() => rm(dir, { recursive: true, force: true }));
const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx alice@laptop';

function usageError(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof CliFailure);
    assert.equal(error.exitCode, 2);
    assert.match(error.lines.join('\n'), pattern);
    return true;
  };
}

describe('deploymentSettingsFromFlags', () => {
  test('turns flags into the API fields, lists split, absent flags absent', async () => {
    const file = join(dir, 'keys.pub');
    await writeFile(file, `# mine\n${key}\n\n`);
    const fields = await deploymentSettingsFromFlags({
      boot: 'debian12',
      deploymentType: 'preseed',
      dns: ['1.1.1.1,8.8.8.8'],
      packages: ['nginx,curl', 'vim'],
      sshKey: [file],
      'password-hash': '$6$salt$hash',
      var: ['tz=UTC'],
    });
    assert.deepEqual(fields, {
      boot: 'debian12',
      type: 'preseed',
      dns: ['1.1.1.1', '8.8.8.8'],
      packages: ['nginx', 'curl', 'vim'],
      sshKeys: [key],
      passwordHash: '$6$salt$hash',
      vars: { tz: 'UTC' },
    });
  });
});

describe('readSshKeys', () => {
  test('an unreadable file is a usage error; a pasted key is taken as is', async () => {
    await assert.rejects(readSshKeys([join(dir, 'absent.pub')]), usageError(/--sshKey: cannot read .*ENOENT/));
    assert.deepEqual(await readSshKeys([key]), [key]);
  });
  test('a file without keys is a usage error', async () => {
    const file = join(dir, 'empty.pub');
    await writeFile(file, '# nothing\n');
    await assert.rejects(readSshKeys([file]), usageError(/holds no public key/));
  });
});

describe('fieldsToUnset', () => {
  test('accepts field names and flag spellings', () => {
    assert.deepEqual(fieldsToUnset(['gateway', 'deploymentType', 'sshKey,password-hash', '--var']), [
      'gateway',
      'type',
      'sshKeys',
      'passwordHash',
      'vars',
    ]);
  });
  test('refuses identity fields and unknown names', () => {
    assert.throws(() => fieldsToUnset(['boot']), usageError(/"boot" is not a field that can be unset/));
    assert.throws(() => fieldsToUnset(['mac']), usageError(/one of: address/));
  });
});

describe('validateFlags', () => {
  test('names the flag, not the JSON field, one line per wrong value', () => {
    assert.throws(
      () =>
        validateFlags(
          deploymentSpecSchema,
          { mac: 'nonsense', boot: 'debian12', dns: ['1.1.1.1', 'x'] },
          deploymentFlagFor,
        ),
      usageError(/^Error: --MAC: "nonsense" is not a MAC address.*\n {2}--dns: "x" is not an IPv4 address/),
    );
  });
  test('a bad record key names the key and the reason', () => {
    assert.throws(
      () => validateFlags(machineSpecSchema, { mac: 'aa:bb:cc:dd:ee:ff', labels: { Bad: 'x' } }, { labels: 'label' }),
      usageError(/^Error: --label: "Bad": label keys are lower-case words$/),
    );
  });
  test('returns the parsed value (canonical MAC, dotted netmask)', () => {
    const spec = validateFlags(deploymentSpecSchema, { mac: 'AABB.CCDD.EEFF', boot: 'b', netmask: '/16' });
    assert.equal(spec.mac, 'aa:bb:cc:dd:ee:ff');
    assert.equal(spec.netmask, '255.255.0.0');
  });
  test('null in a patch is kept: it clears the field', () => {
    assert.deepEqual(validateFlags(deploymentPatchSchema, { gateway: null }), { gateway: null });
  });
});
