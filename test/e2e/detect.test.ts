/**
 * `smeltd config detect` and the first run with no config file, against real interfaces, routes and resolv.conf
 * inside a network namespace this file creates (a veth pair: eth7 with 10.77.0.2/24 and a default route via
 * 10.77.0.1, and its peer eth7p with no IPv4). Nothing here touches the root namespace's interfaces, and no DHCP
 * runs: the first-run daemon is in proxy mode, inside the namespace, and is stopped by PID.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ipv4ToNumber, parseCidr } from '@smelt/shared/net';
import { parse as parseYaml } from 'yaml';
import { createNetns, type Netns } from '../harness/netns.ts';
import { smeltdBin } from '../harness/paths.ts';
import { exited, run, runOk, type RunResult } from '../harness/process.ts';
import { removeDir, tempDir } from '../harness/smeltd.ts';

const DEFAULT_CONFIG_FILE = '/etc/smelt/smelt.yaml';

let netns: Netns | undefined;
const dataDir = tempDir('smelt-detect-');

before(async () => {
  netns = await createNetns('detect');
  const ns = netns.name;
  await runOk('ip', ['-n', ns, 'link', 'add', 'eth7', 'type', 'veth', 'peer', 'name', 'eth7p']);
  await runOk('ip', ['-n', ns, 'addr', 'add', '10.77.0.2/24', 'dev', 'eth7']);
  await runOk('ip', ['-n', ns, 'link', 'set', 'eth7', 'up']);
  await runOk('ip', ['-n', ns, 'link', 'set', 'eth7p', 'up']);
  await runOk('ip', ['-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1', 'dev', 'eth7']);
  netns.setResolvConf('nameserver 127.0.0.53\nnameserver 10.77.0.53\n');
  // An interface is listed by the OS once it is up with some address; eth7p's is its IPv6 link-local one.
  for (let i = 0; !(await runOk('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', 'eth7p'])).includes('fe80::'); i++) {
    assert.ok(i < 50, 'eth7p never got its IPv6 link-local address');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

after(async () => {
  removeDir(dataDir);
  await netns?.remove();
});

/** The test process's environment without any SMELT_* setting, so only what a test sets reaches the daemon. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('SMELT_')) env[key] = value;
  }
  return { ...env, ...extra };
}

function inNetns(): Netns {
  assert.ok(netns, 'the namespace was made in before()');
  return netns;
}

/** smeltd inside the namespace, never in the root one. */
function smeltdInNetns(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', inNetns().name, smeltdBin, ...args], { env: cleanEnv(env), timeoutMs: 15_000 });
}

function assertNoStack(result: RunResult): void {
  assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace on stderr:\n${result.stderr}`);
}

function stderrLines(result: RunResult): string[] {
  return result.stderr.split('\n').filter((line) => line.trim() !== '');
}

const expectedDetected = {
  interface: 'eth7',
  address: '10.77.0.2',
  dataDir: '/var/lib/smelt',
  api: { listen: '0.0.0.0:7480' },
  http: { listen: '0.0.0.0:80' },
  tftp: { listen: '10.77.0.2:69' },
  dhcp: { mode: 'proxy', subnet: '10.77.0.0/24', gateway: '10.77.0.1', dns: ['10.77.0.53'], leaseTime: 3600 },
  ipxe: { dir: '/usr/lib/ipxe' },
  store: { kind: 'sqlite' },
  log: { level: 'info' },
};

interface Detected {
  dhcp: { pool?: { start: string; end: string } } & Record<string, unknown>;
  [key: string]: unknown;
}

/** The pool lies inside the subnet and leaves out the server (.2) and the gateway (.1). */
function assertPool(detected: Detected): void {
  const pool = detected.dhcp.pool;
  assert.ok(pool, 'a pool is detected for a /24');
  const subnet = parseCidr('10.77.0.0/24');
  const start = ipv4ToNumber(pool.start);
  const end = ipv4ToNumber(pool.end);
  assert.ok(subnet && start !== undefined && end !== undefined, `a readable pool: ${JSON.stringify(pool)}`);
  const first = subnet.network + 1;
  const last = subnet.network + 254;
  assert.ok(first <= start && start <= end && end <= last, `pool ${pool.start}-${pool.end} inside 10.77.0.0/24`);
  for (const excluded of ['10.77.0.1', '10.77.0.2']) {
    const value = ipv4ToNumber(excluded) ?? 0;
    assert.ok(value < start || value > end, `pool ${pool.start}-${pool.end} leaves out ${excluded}`);
  }
}

function withoutPool(detected: Detected): Record<string, unknown> {
  const { pool: _pool, ...dhcp } = detected.dhcp;
  return { ...detected, dhcp };
}

test('config detect --output json reads the default-route interface, its gateway and resolv.conf', async () => {
  const result = await smeltdInNetns(['config', 'detect', '--output', 'json']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  const detected = JSON.parse(result.stdout) as Detected;
  assertPool(detected);
  assert.deepEqual(withoutPool(detected), expectedDetected);

  const yaml = await smeltdInNetns(['config', 'detect', '--output', 'yaml']);
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.deepEqual(parseYaml(yaml.stdout), detected, 'the YAML output is the same config');
  const plain = await smeltdInNetns(['config', 'detect']);
  assert.equal(plain.stdout, yaml.stdout, 'YAML is the default output');

  const named = await smeltdInNetns(['config', 'detect', '--interface', 'eth7', '--output', 'json']);
  assert.equal(named.code, 0, named.stderr);
  assert.deepEqual(JSON.parse(named.stdout), detected, '--interface eth7 detects the same as the default route');
});

test('config detect --interface nope exits 2 naming the interfaces that exist', async () => {
  const result = await smeltdInNetns(['config', 'detect', '--interface', 'nope']);
  assert.equal(result.code, 2);
  assertNoStack(result);
  assert.equal(result.stdout, '');
  const lines = stderrLines(result);
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] ?? '', /^smeltd: .*"nope"/);
  assert.match(lines[0] ?? '', /\blo\b/);
  assert.match(lines[0] ?? '', /\beth7\b.*10\.77\.0\.2/);
});

test('config detect on an interface with no IPv4 exits 2 saying so', async () => {
  const result = await smeltdInNetns(['config', 'detect', '--interface', 'eth7p']);
  assert.equal(result.code, 2);
  assertNoStack(result);
  assert.equal(result.stdout, '');
  const lines = stderrLines(result);
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] ?? '', /^smeltd: .*"eth7p".*no IPv4/);
});

test('config detect with no default route and no --interface exits 2 asking for --interface', async () => {
  const ns = inNetns().name;
  await runOk('ip', ['-n', ns, 'route', 'del', 'default']);
  try {
    const result = await smeltdInNetns(['config', 'detect']);
    assert.equal(result.code, 2);
    assertNoStack(result);
    assert.equal(result.stdout, '');
    const lines = stderrLines(result);
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', /^smeltd: no default route/);
    assert.match(lines[0] ?? '', /--interface/);
    assert.match(lines[0] ?? '', /\beth7\b/);

    // The same for the daemon itself: with no config file there is nothing to start from.
    const start = await smeltdInNetns(['start'], { SMELT_DATA_DIR: dataDir, SMELT_API_LISTEN: '10.77.0.2:17480' });
    assert.equal(start.code, 2, start.stderr);
    assert.match(start.stderr, /no default route/);
  } finally {
    await runOk('ip', ['-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1', 'dev', 'eth7']);
  }
});

test('first run with no config file: detects the interface, serves the API, DHCP in proxy mode', async () => {
  const ns = inNetns().name;
  assert.equal(existsSync(DEFAULT_CONFIG_FILE), false, `${DEFAULT_CONFIG_FILE} must not exist for this test`);
  assert.equal(existsSync(`/etc/netns/${ns}/smelt`), false);
  const env = cleanEnv({ SMELT_DATA_DIR: dataDir, SMELT_API_LISTEN: '10.77.0.2:17480' });
  assert.equal(env.SMELT_CONFIG, undefined);

  const child = spawn('ip', ['netns', 'exec', ns, smeltdBin, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const listening = await new Promise<{ listen: string; dataDir: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`smeltd did not log "api listening" within 15 s:\n${output}`));
      }, 15_000);
      const onData = () => {
        const line = output.split('\n').find((text) => text.includes('"api listening"'));
        if (line === undefined) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(JSON.parse(line) as { listen: string; dataDir: string });
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`smeltd exited ${code} before listening:\n${output}`));
      });
    });
    assert.equal(listening.listen, '10.77.0.2:17480');
    assert.equal(listening.dataDir, dataDir);
    assert.equal(statSync(`${dataDir}/api-token`).mode & 0o777, 0o600);

    const health = await runOk('ip', [
      'netns',
      'exec',
      ns,
      'curl',
      '-sS',
      '--max-time',
      '5',
      'http://10.77.0.2:17480/healthz',
    ]);
    const body = JSON.parse(health) as { status: string; version: string };
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.version, 'string');

    const show = await smeltdInNetns(['config', 'show', '--output', 'json'], {
      SMELT_DATA_DIR: dataDir,
      SMELT_API_LISTEN: '10.77.0.2:17480',
    });
    assert.equal(show.code, 0, show.stderr);
    const config = JSON.parse(show.stdout) as Detected & { dhcp: { mode: string } };
    assert.equal(config.dhcp.mode, 'proxy', 'a first run never hands out addresses');
    assert.equal(config.interface, 'eth7');
    assert.equal(config.address, '10.77.0.2');
    assert.equal(config.dataDir, dataDir);
    assert.deepEqual(config.api, { listen: '10.77.0.2:17480' });

    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null }, output);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
  }
});
