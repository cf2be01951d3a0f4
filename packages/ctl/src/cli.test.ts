import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { closedPort, problemBody, startFakeSmeltd, type RecordedRequest } from './testdata/fake-smeltd.ts';
import { boot, deployment, isoBoot } from './testdata/resources.ts';

// These run the real bin/smeltctl, as a script or a person would, against a fake smeltd on localhost.

const bin = new URL('../bin/smeltctl', import.meta.url).pathname;
const dir = await mkdtemp(join(tmpdir(), 'smeltctl-cli-'));
const TOKEN = 'cli-test-token';

const fake = await startFakeSmeltd((request: RecordedRequest) => {
  if (request.headers.authorization !== `Bearer ${TOKEN}`) return problemBody('unauthorized', 401, 'wrong token');
  const route = `${request.method} ${request.url.pathname}`;
  switch (route) {
    case 'GET /api/v1':
      return { status: 200, body: { version: 'test', routes: [] } };
    case 'GET /api/v1/boots':
      return { status: 200, body: { items: [boot, isoBoot], next: null } };
    case 'GET /api/v1/boots/missing':
      return problemBody('not_found', 404, 'no boot "missing"');
    case 'POST /api/v1/boots':
      return { status: 201, body: { ...isoBoot, ...(JSON.parse(request.body) as object) } };
    case 'POST /api/v1/deployments':
      return problemBody('conflict', 409, 'aa:bb:cc:dd:ee:01 already has a deployment');
    case 'PATCH /api/v1/deployments/web1':
      return { status: 200, body: deployment };
    default:
      return problemBody('not_found', 404, `no route ${route}`);
  }
});
after(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function smeltctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { SMELT_SERVER: _s, SMELT_TOKEN: _t, SMELTCTL_CONFIG: _c, NO_COLOR: _n, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...inherited, SMELTCTL_CONFIG: join(dir, 'absent.json'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

const withServer = ['--server', fake.url, '--token', TOKEN];
const ESC = '\u001b[';

function assertNoStack(run: Run): void {
  assert.doesNotMatch(run.stderr, /^\s+at /m, run.stderr);
}

// Each run is a Node start-up; more at once than there are CPUs only makes each slower.
describe('smeltctl', { concurrency: availableParallelism() }, () => {
  test('an unknown flag is a usage error: exit 2', async () => {
    const run = await smeltctl(['get', 'boots', '--frob']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^Error: Nonexistent flag: --frob/);
    assertNoStack(run);
  });

  test('--MAC nonsense: one line naming the flag, exit 2, nothing sent', async () => {
    const run = await smeltctl(['create', 'deployment', '--MAC', 'nonsense', '--boot', 'debian12', ...withServer]);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(
      run.stderr,
      `Error: --MAC: "nonsense" is not a MAC address: use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff\n`,
    );
  });

  test('a missing required flag is a usage error: exit 2', async () => {
    const run = await smeltctl(['create', 'deployment', '--boot', 'debian12']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /Missing required flag MAC/);
    assertNoStack(run);
  });

  test('a closed port: exit 5, and the message names the URL', async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const run = await smeltctl(['get', 'boots', '--server', server]);
    assert.equal(run.code, 5, run.stderr);
    assert.equal(run.stderr, `Error: cannot reach smeltd at ${server}: connection refused (ECONNREFUSED)\n`);
  });

  test('piped output is plain columns without escape codes, even under FORCE_COLOR', async () => {
    const run = await smeltctl(['get', 'boots', ...withServer], { FORCE_COLOR: '3' });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(ESC), run.stdout);
    assert.match(run.stdout, /^NAME +KIND +SOURCE +AGE\ndebian12 +installer +\/srv\/debian\/linux +\S+\nalma9 /);
  });

  test('-o json and -o yaml print the API objects', async () => {
    const json = await smeltctl(['get', 'boots', '-o', 'json', ...withServer]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [boot, isoBoot]);
    const yaml = await smeltctl(['get', 'boots', '--output', 'yaml', ...withServer]);
    assert.match(yaml.stdout, /^- name: debian12$/m);
  });

  test('not found exits 3, conflict exits 4, with the server detail', async () => {
    const [missing, conflict] = await Promise.all([
      smeltctl(['get', 'boot', 'missing', ...withServer]),
      smeltctl(['create', 'deployment', '--mac', 'AA-BB-CC-DD-EE-01', '--boot', 'debian12', ...withServer]),
    ]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal(missing.stderr, 'Error: no boot "missing"\n');
    assert.equal(conflict.code, 4, conflict.stderr);
    assert.equal(conflict.stderr, 'Error: aa:bb:cc:dd:ee:01 already has a deployment\n');
  });

  test('the lower-case aliases of the seed flags work', async () => {
    const run = await smeltctl([
      'create',
      'boot',
      '--name',
      'alma9',
      '--iso-path',
      '/srv/iso/alma9.iso',
      '--isoprefix',
      'alma9',
      '--kernel',
      'images/pxeboot/vmlinuz',
      ...withServer,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'boot "alma9" created\n');
    const sent = fake.requests.find((request) => request.method === 'POST' && request.url.pathname === '/api/v1/boots');
    assert.deepEqual(JSON.parse(sent?.body ?? '{}'), {
      name: 'alma9',
      kind: 'installer',
      initrd: [],
      kernel: 'images/pxeboot/vmlinuz',
      isoPath: '/srv/iso/alma9.iso',
      isoPrefix: 'alma9',
    });
  });

  test('update --unset sends null in the merge patch', async () => {
    const run = await smeltctl([
      'update',
      'deployment',
      'web1',
      '--address',
      '10.0.0.52',
      '--unset',
      'gateway',
      ...withServer,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const sent = fake.requests.find((request) => request.method === 'PATCH');
    assert.deepEqual(JSON.parse(sent?.body ?? '{}'), { address: '10.0.0.52', gateway: null });
  });

  test('login checks the token, then saves a 0600 config that later commands use', async () => {
    const config = join(dir, 'login', 'config.json');
    const refused = await smeltctl(['login', '--server', fake.url, '--token', 'wrong'], { SMELTCTL_CONFIG: config });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^Error: wrong token\n/);
    await assert.rejects(stat(config));

    const login = await smeltctl(['login', '--server', fake.url, '--token', TOKEN], { SMELTCTL_CONFIG: config });
    assert.equal(login.code, 0, login.stderr);
    assert.equal((await stat(config)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(config, 'utf8')), { server: fake.url, token: TOKEN });

    const get = await smeltctl(['get', 'boots', '-o', 'json'], { SMELTCTL_CONFIG: config });
    assert.equal(get.code, 0, get.stderr);
    assert.equal((JSON.parse(get.stdout) as unknown[]).length, 2);
  });
});
