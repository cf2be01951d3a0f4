/**
 * The foundation's done-when, driven only through the real smeltctl binary against a real smeltd on loopback:
 * login, create boot, create/update/delete deployment, get with every output format, the exit codes of
 * DESIGN.md §7, and a daemon restart that keeps everything.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { smeltctl } from '../harness/smeltctl.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const dir = tempDir('smelt-ctl-e2e-');
const env = { SMELTCTL_CONFIG: join(dir, 'smeltctl.json'), SMELT_SERVER: '', SMELT_TOKEN: '' };
const kernel = join(dir, 'vmlinuz');
const initrd = join(dir, 'initrd.img');
let daemon: RunningSmeltd | undefined;
function running(): RunningSmeltd {
  if (!daemon) throw new Error('smeltd did not start');
  return daemon;
}

async function ok(args: string[]): Promise<string> {
  const result = await smeltctl(args, env);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function fails(args: string[], exitCode: number, message: RegExp): Promise<void> {
  const result = await smeltctl(args, env);
  assert.equal(result.code, exitCode, `smeltctl ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

/** The plain (non-TTY) table: a header row and whitespace-separated columns. */
function rows(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

before(async () => {
  writeFileSync(kernel, 'kernel');
  writeFileSync(initrd, 'initrd');
  daemon = await startSmeltd({ dataDir: join(dir, 'data') });
});
after(async () => {
  await daemon?.stop();
  removeDir(dir);
});

describe('smeltctl against smeltd', () => {
  test('login checks the token and saves it', async () => {
    await fails(['login', '--server', running().url, '--token', 'wrong-token-0123456789'], 1, /token/i);
    const out = await ok(['login', '--server', running().url, '--token', running().token]);
    assert.match(out, new RegExp(running().url.replace(/[.]/g, '\\.')));
  });

  test('create boot, then get boots shows it', async () => {
    await ok([
      'create',
      'boot',
      '--name',
      'ubuntu',
      '--kernel',
      kernel,
      '--initrd',
      initrd,
      '--cmdline',
      'console=ttyS0',
    ]);
    const table = rows(await ok(['get', 'boots']));
    assert.deepEqual(table[0]?.slice(0, 3), ['NAME', 'KIND', 'SOURCE']);
    assert.deepEqual(table[1]?.slice(0, 3), ['ubuntu', 'installer', kernel]);
  });

  test('create deployment with the seed flags, and get deployments prints the seed table', async () => {
    await ok([
      'create',
      'deployment',
      '--MAC',
      '00-11-22-33-44-55',
      '--address',
      '192.168.0.100',
      '--name',
      'web01',
      '--boot',
      'ubuntu',
      '--gateway',
      '192.168.0.1',
      '--netmask',
      '24',
      '--dns',
      '1.1.1.1,8.8.8.8',
      '--hostname',
      'web01.lab',
    ]);
    await ok(['create', 'deployment', '--mac', 'AABB.CCDD.EE02', '--address', '192.168.0.102', '--boot', 'ubuntu']);
    const out = await ok(['get', 'deployments']);
    assert.ok(!out.includes('\u001b['), 'no ANSI escapes into a pipe');
    const table = rows(out);
    assert.deepEqual(
      table.map((row) => row.slice(0, 5)),
      [
        ['NAME', 'MAC', 'ADDRESS', 'TYPE', 'STATE'],
        ['aa-bb-cc-dd-ee-02', 'aa:bb:cc:dd:ee:02', '192.168.0.102', '<none>', 'provisioning'],
        ['web01', '00:11:22:33:44:55', '192.168.0.100', '<none>', 'provisioning'],
      ],
    );
    assert.equal(table[0]?.[5], 'AGE');
    for (const row of table.slice(1)) assert.match(row[5] ?? '', /^\d+s$/);
  });

  test('json and yaml outputs carry the stored objects', async () => {
    const json = JSON.parse(await ok(['get', 'deployments', '-o', 'json'])) as {
      name: string;
      netmask?: string;
      dns?: string[];
    }[];
    const web = json.find((d) => d.name === 'web01');
    assert.ok(web, 'web01 is listed');
    assert.equal(web.netmask, '255.255.255.0', 'a prefix length is stored as a dotted netmask');
    assert.deepEqual(web.dns, ['1.1.1.1', '8.8.8.8']);
    const yaml = parseYaml(await ok(['get', 'deployment', 'web01', '--output', 'yaml'])) as { mac: string };
    assert.equal(yaml.mac, '00:11:22:33:44:55');
  });

  test('update deployment by MAC in another spelling, and clear a field', async () => {
    await ok(['update', 'deployment', '--MAC', '001122334455', '--address', '192.168.0.110', '--unset', 'gateway']);
    const web = JSON.parse(await ok(['get', 'deployment', 'web01', '-o', 'json'])) as {
      address: string;
      gateway?: string;
    };
    assert.equal(web.address, '192.168.0.110');
    assert.equal(web.gateway, undefined);
  });

  test('machines deployed through the API are listed with their derived state', async () => {
    const table = rows(await ok(['get', 'machines']));
    assert.deepEqual(table[0]?.slice(0, 2), ['MAC', 'STATE']);
    assert.deepEqual(
      table.slice(1).map((row) => [row[0], row[1], row.at(-1)]),
      [
        ['00:11:22:33:44:55', 'provisioning', 'web01'],
        ['aa:bb:cc:dd:ee:02', 'provisioning', 'aa-bb-cc-dd-ee-02'],
      ],
    );
  });

  test('exit codes: 2 usage, 3 not found, 4 conflict, 5 unreachable', async () => {
    await fails(['create', 'deployment', '--MAC', 'nonsense', '--boot', 'ubuntu'], 2, /--MAC: "nonsense" is not a MAC/);
    await fails(['get', 'boots', '--no-such-flag'], 2, /no-such-flag/);
    await fails(
      ['create', 'deployment', '--MAC', '02:00:00:00:00:09', '--address', '10.0.0.300', '--boot', 'ubuntu'],
      2,
      /address/,
    );
    await fails(['describe', 'deployment', 'nope'], 3, /no deployment named "nope"/);
    await fails(['update', 'deployment', 'web01', '--address', '192.168.0.102'], 4, /192\.168\.0\.102 is taken/);
    await fails(['delete', 'boot', 'ubuntu'], 4, /used by deployments/);
    await fails(
      ['get', 'boots', '--server', 'http://127.0.0.1:9'],
      5,
      /cannot reach smeltd at http:\/\/127\.0\.0\.1:9/,
    );
  });

  test('a restart of smeltd keeps everything', async () => {
    const before = await ok(['get', 'deployments', '-o', 'json']);
    const { code } = await running().stop();
    assert.equal(code, 0, 'SIGTERM is a clean exit');
    daemon = await startSmeltd({ dataDir: join(dir, 'data') });
    // The restarted daemon picked a new port; the saved token must still be valid.
    await ok(['login', '--server', running().url, '--token', running().token]);
    assert.deepEqual(JSON.parse(await ok(['get', 'deployments', '-o', 'json'])), JSON.parse(before));
  });

  test('delete deployment frees the machine, then the boot can go', async () => {
    await ok(['delete', 'deployment', 'web01']);
    await ok(['delete', 'deployment', 'aa:bb:cc:dd:ee:02']);
    const machines = JSON.parse(await ok(['get', 'machines', '-o', 'json'])) as { state: string }[];
    assert.deepEqual(
      machines.map((m) => m.state),
      ['free', 'free'],
    );
    await ok(['delete', 'boot', 'ubuntu']);
    assert.deepEqual(JSON.parse(await ok(['get', 'boots', '-o', 'json'])), []);
  });
  test('get and update defaults: set, list, unset, and what cannot be a default', async () => {
    await ok([
      'update',
      'defaults',
      '--dns',
      '10.0.0.53,10.0.0.54',
      '--packages',
      'openssh-server',
      '--mirror',
      'http://deb.example/debian',
    ]);
    const shown = JSON.parse(await ok(['get', 'defaults', '-o', 'json'])) as Record<string, unknown>;
    assert.deepEqual(shown, {
      dns: ['10.0.0.53', '10.0.0.54'],
      packages: ['openssh-server'],
      mirror: 'http://deb.example/debian',
    });
    await ok(['update', 'defaults', '--unset', 'mirror']);
    const plain = await ok(['get', 'defaults']);
    assert.match(plain, /DNS:\s+10\.0\.0\.53\n\s+10\.0\.0\.54/);
    assert.match(plain, /Mirror:\s+<none>/);
    await fails(['update', 'defaults', '--unset', 'address'], 2, /not a default/);
    await fails(['update', 'defaults', '--dns', 'not-an-ip'], 2, /dns/);
  });
});
