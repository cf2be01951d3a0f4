import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { configFilePath, readConfigFile, writeConfigFile } from './config-file.ts';
import { CliFailure } from './failure.ts';

const dir = await mkdtemp(join(tmpdir(), 'smeltctl-config-'));
after(() => rm(dir, { recursive: true, force: true }));

describe('configFilePath', () => {
  test("SMELT_CONFIG is smeltd's file and never smeltctl's", () => {
    assert.equal(configFilePath({ SMELTCTL_CONFIG: '/ctl.json', SMELT_CONFIG: '/daemon.yaml' }), '/ctl.json');
    assert.equal(configFilePath({ SMELT_CONFIG: '/daemon.yaml', XDG_CONFIG_HOME: '/xdg' }), '/xdg/smelt/config.json');
  });

  test('SMELTCTL_CONFIG wins, then XDG_CONFIG_HOME, then ~/.config', () => {
    assert.equal(configFilePath({ SMELTCTL_CONFIG: '/x/c.json', XDG_CONFIG_HOME: '/xdg' }), '/x/c.json');
    assert.equal(configFilePath({ XDG_CONFIG_HOME: '/xdg' }), '/xdg/smelt/config.json');
    assert.equal(configFilePath({}), join(homedir(), '.config', 'smelt', 'config.json'));
  });

  test('a relative XDG_CONFIG_HOME is ignored, as the XDG spec says', () => {
    assert.equal(configFilePath({ XDG_CONFIG_HOME: 'rel' }), join(homedir(), '.config', 'smelt', 'config.json'));
  });
});

describe('config file', () => {
  test('is written 0600 in a new 0700 directory and read back', async () => {
    const path = join(dir, 'new', 'config.json');
    await writeConfigFile(path, { server: 'http://h:1', token: 'secret' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'new'))).mode & 0o777, 0o700);
    assert.deepEqual(await readConfigFile(path), { server: 'http://h:1', token: 'secret' });
  });

  test('an existing world-readable file becomes 0600 when rewritten', async () => {
    const path = join(dir, 'loose.json');
    await writeFile(path, '{}', { mode: 0o644 });
    await writeConfigFile(path, { token: 't' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { token: 't' });
  });

  test('a missing file is no settings', async () => {
    assert.deepEqual(await readConfigFile(join(dir, 'absent.json')), {});
  });

  test('a broken file is a usage error that names it', async () => {
    const path = join(dir, 'broken.json');
    for (const content of ['{not json', '{"token": 42}', '[]']) {
      await writeFile(path, content);
      await assert.rejects(readConfigFile(path), (error: unknown) => {
        assert.ok(error instanceof CliFailure);
        assert.equal(error.exitCode, 2);
        assert.ok(error.message.includes(path), error.message);
        return true;
      });
    }
  });
});
