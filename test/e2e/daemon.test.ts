/**
 * The real smeltd binary as a child process: configuration errors, usage errors, listen failures, signals, the API
 * token and the precedence of file < environment < flags. Every daemon here listens on 127.0.0.1 only: each test
 * passes a config file, so nothing is ever detected from (or bound on) this machine's real interfaces.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { api } from '../harness/api.ts';
import { repoRoot, smeltdBin } from '../harness/paths.ts';
import { run, type RunResult } from '../harness/process.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const VERSION = (
  JSON.parse(readFileSync(join(repoRoot, 'packages/daemon/package.json'), 'utf8')) as { version: string }
).version;
const USAGE_HINT = 'Run smeltd --help for usage.';
const NOBODY = 65534;

const root = tempDir('smelt-daemon-');
after(() => {
  removeDir(root);
});
let dirs = 0;
function newDir(): string {
  const dir = join(root, `t${++dirs}`);
  mkdirSync(dir);
  return dir;
}

/** The test process's environment without any SMELT_* setting, so only what a test sets reaches the daemon. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('SMELT_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * A config file on loopback; the daemon under test never binds anything but 127.0.0.1 (TFTP and HTTP included:
 * their defaults, 0.0.0.0:69 and :80, would be this machine's real interfaces), and never serves DHCP.
 */
function writeConfig(dir: string, config: Record<string, unknown>): string {
  const path = join(dir, 'smelt.json');
  const loopback = {
    address: '127.0.0.1',
    dataDir: join(dir, 'data'),
    tftp: { listen: '127.0.0.1:0' },
    http: { listen: '127.0.0.1:0' },
    dhcp: { mode: 'off' },
  };
  writeFileSync(path, JSON.stringify({ ...loopback, ...config }));
  return path;
}

function smeltd(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(smeltdBin, args, { env: cleanEnv(env), timeoutMs: 15_000 });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** stderr is a short message for people: no stack trace, no internals. */
function assertNoStack(result: RunResult): void {
  assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace on stderr:\n${result.stderr}`);
}

/** The message lines of stderr, leaving out the "Run smeltd --help" hint that usage errors end with. */
function messageLines(result: RunResult): string[] {
  return lines(result.stderr).filter((line) => line !== USAGE_HINT);
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

function logLines(output: string): { msg?: string; level?: number; [key: string]: unknown }[] {
  return lines(output)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string });
}

test('a config file with several problems exits 2 and lists every one by its path, without a stack', async () => {
  const dir = newDir();
  const configPath = join(dir, 'smelt.yaml');
  writeFileSync(
    configPath,
    [
      'address: 10.0.0',
      `dataDir: ${join(dir, 'data')}`,
      'api: { listen: "127.0.0.1:0", port: 7480 }',
      'colour: blue',
      'dhcp:',
      '  mode: server',
      '  subnet: 10.0.0.0/24',
      '  pool: { start: 10.9.0.100, end: 10.0.0.199 }',
      '  leaseTime: 1h',
      '',
    ].join('\n'),
  );
  const result = await smeltd(['start', '--config', configPath]);
  assert.equal(result.code, 2, `exit code; stderr:\n${result.stderr}`);
  assertNoStack(result);
  const problems = lines(result.stderr);
  assert.match(problems[0] ?? '', /^smeltd: invalid configuration/);
  const lineFor = (pattern: RegExp, what: string) => {
    const found = problems.find((line) => pattern.test(line));
    assert.ok(found, `no line for ${what} in:\n${result.stderr}`);
    return found;
  };
  assert.match(lineFor(/^\s+address:/, 'address'), /10\.0\.0/);
  assert.match(lineFor(/^\s+dhcp\.pool\.start:/, 'dhcp.pool.start'), /10\.9\.0\.100 is not inside 10\.0\.0\.0\/24/);
  lineFor(/^\s+dhcp\.leaseTime:/, 'dhcp.leaseTime');
  lineFor(/^\s+colour: not a setting$/, 'the unknown top-level key colour');
  lineFor(/^\s+api\.port: not a setting$/, 'the unknown key api.port');
  assert.equal(result.stdout, '');
  assert.equal(existsSync(join(dir, 'data')), false, 'a rejected config touched nothing on disk');
});

test('usage: unknown command and unknown flag exit 2 with a one-line message; --help and --version exit 0', async () => {
  const unknownCommand = await smeltd(['frobnicate']);
  assert.equal(unknownCommand.code, 2);
  assertNoStack(unknownCommand);
  assert.deepEqual(messageLines(unknownCommand).length, 1, `one line:\n${unknownCommand.stderr}`);
  assert.match(messageLines(unknownCommand)[0] ?? '', /^smeltd: .*unknown command "frobnicate"/);

  // A valid loopback config, so that nothing is detected; the unknown flag alone is wrong.
  const configPath = writeConfig(newDir(), { api: { listen: '127.0.0.1:0' } });
  for (const verb of [['start'], ['config', 'show'], ['token']]) {
    const unknownFlag = await smeltd([...verb, '--config', configPath, '--frobnicate', 'yes']);
    assert.equal(unknownFlag.code, 2, `${verb.join(' ')}: exit code; stderr:\n${unknownFlag.stderr}`);
    assertNoStack(unknownFlag);
    assert.equal(messageLines(unknownFlag).length, 1, `${verb.join(' ')}: one line:\n${unknownFlag.stderr}`);
    assert.match(messageLines(unknownFlag)[0] ?? '', /^smeltd: .*--frobnicate/);
    assert.equal(unknownFlag.stdout, '');
  }
  const detectFlag = await smeltd(['config', 'detect', '--frobnicate', 'yes']);
  assert.equal(detectFlag.code, 2);
  assert.equal(messageLines(detectFlag).length, 1, detectFlag.stderr);
  assert.match(messageLines(detectFlag)[0] ?? '', /^smeltd: .*--frobnicate/);

  // A flag with no value at the end of the line.
  const dangling = await smeltd(['start', '--config', configPath, '--frobnicate']);
  assert.equal(dangling.code, 2);
  assertNoStack(dangling);
  assert.equal(messageLines(dangling).length, 1, dangling.stderr);
  assert.match(messageLines(dangling)[0] ?? '', /^smeltd: .*--frobnicate/);

  for (const help of ['--help', '-h']) {
    const result = await smeltd([help]);
    assert.equal(result.code, 0, help);
    assert.match(result.stdout, /Usage:/);
    assert.match(result.stdout, /smeltd config detect/);
    assert.equal(result.stderr, '');
  }
  const version = await smeltd(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `${VERSION}\n`);
});

test('a port in use: exit 1 with one line naming the address and saying it is in use', async () => {
  const blocker = createServer();
  const port = await listen(blocker);
  try {
    const dir = newDir();
    const result = await smeltd(['start', '--config', writeConfig(dir, { api: { listen: `127.0.0.1:${port}` } })]);
    assert.equal(result.code, 1, `exit code; stderr:\n${result.stderr}`);
    assertNoStack(result);
    const stderr = lines(result.stderr);
    assert.equal(stderr.length, 1, `one line:\n${result.stderr}`);
    assert.match(stderr[0] ?? '', new RegExp(`127\\.0\\.0\\.1:${port}\\b`));
    assert.match(stderr[0] ?? '', /in use/);
  } finally {
    await close(blocker);
  }
});

test('one daemon per data directory: a second exits 1 naming the first; after kill -9 the next one starts', async () => {
  const dataDir = join(newDir(), 'data');
  const first = await startSmeltd({ dataDir });
  let next: RunningSmeltd | undefined;
  try {
    const dir = newDir();
    const second = await smeltd(['start', '--config', writeConfig(dir, { dataDir, api: { listen: '127.0.0.1:0' } })]);
    assert.equal(second.code, 1, `exit code; stderr:\n${second.stderr}`);
    assertNoStack(second);
    const stderr = lines(second.stderr);
    assert.equal(stderr.length, 1, `one line:\n${second.stderr}`);
    assert.match(
      stderr[0] ?? '',
      new RegExp(`${dataDir}.*in use by another smeltd \\(pid ${String(first.child.pid)}\\)`),
    );
    // The first daemon is untouched: its API still answers.
    assert.equal((await api(first, 'GET', '/api/v1/boots')).status, 200);
    // The kernel drops the lock with the process, however it ends: no stale lock after kill -9.
    await first.stop('SIGKILL');
    next = await startSmeltd({ dataDir });
    assert.equal((await api(next, 'GET', '/api/v1/boots')).status, 200);
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) await first.stop('SIGKILL');
    await next?.stop();
  }
});

test('a privileged port as a user without the capability: exit 1 with one line saying what is needed', async () => {
  const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  assert.ok(unprivilegedStart > 81, `net.ipv4.ip_unprivileged_port_start is ${unprivilegedStart}; port 81 is open`);
  // Only this test's own directory is handed to nobody; the daemon writes its token and store there.
  const dir = newDir();
  chmodSync(root, 0o755);
  chownSync(dir, NOBODY, NOBODY);
  const configPath = writeConfig(dir, { api: { listen: '127.0.0.1:81' } });
  const result = await run(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', smeltdBin, 'start', '--config', configPath],
    { env: cleanEnv(), timeoutMs: 15_000 },
  );
  assert.equal(result.code, 1, `exit code; stderr:\n${result.stderr}`);
  assertNoStack(result);
  const stderr = lines(result.stderr);
  assert.equal(stderr.length, 1, `one line:\n${result.stderr}`);
  assert.match(stderr[0] ?? '', /127\.0\.0\.1:81\b/);
  assert.match(stderr[0] ?? '', /port 81/);
  assert.match(stderr[0] ?? '', /root or CAP_NET_BIND_SERVICE/);
});

test('SIGTERM and SIGINT stop the daemon cleanly, and a restart keeps the data and the token', async () => {
  const dataDir = join(newDir(), 'data');
  const running: RunningSmeltd[] = [];
  try {
    const first = await startSmeltd({ dataDir });
    running.push(first);
    const created = await api(first, 'POST', '/api/v1/machines', { mac: '02:00:00:00:00:01', labels: { a: '1' } });
    assert.equal(created.status, 201);
    const stopped = await first.stop('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, first.output());
    assert.ok(
      logLines(first.output()).some((line) => line.msg === 'stopped'),
      `no "stopped" log line:\n${first.output()}`,
    );

    const second = await startSmeltd({ dataDir });
    running.push(second);
    assert.equal(second.token, first.token, 'the token survives a restart');
    const kept = await api(second, 'GET', '/api/v1/machines/02:00:00:00:00:01');
    assert.equal(kept.status, 200, 'the machine made before SIGTERM is still there');
    assert.deepEqual((kept.json as { labels: unknown }).labels, { a: '1' });
    assert.equal(
      (await api(second, 'POST', '/api/v1/machines', { mac: '02:00:00:00:00:02', labels: { b: '2' } })).status,
      201,
    );
    const interrupted = await second.stop('SIGINT');
    assert.deepEqual(interrupted, { code: 0, signal: null }, second.output());
    assert.ok(
      logLines(second.output()).some((line) => line.msg === 'stopped'),
      `no "stopped" log line:\n${second.output()}`,
    );

    const third = await startSmeltd({ dataDir });
    running.push(third);
    assert.equal(third.token, first.token);
    const list = await api(third, 'GET', '/api/v1/machines');
    assert.equal(list.status, 200);
    assert.deepEqual((list.json as { items: { mac: string }[] }).items.map((machine) => machine.mac).sort(), [
      '02:00:00:00:00:01',
      '02:00:00:00:00:02',
    ]);
    assert.deepEqual(await third.stop('SIGTERM'), { code: 0, signal: null });
  } finally {
    for (const daemon of running) {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop('SIGKILL');
    }
  }
});

test('the API token: 0600, printed by `smeltd token`, and a loose token file is tightened on start', async () => {
  const dataDir = join(newDir(), 'data');
  const tokenFile = join(dataDir, 'api-token');
  let daemon = await startSmeltd({ dataDir });
  try {
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.ok(daemon.token.length >= 32, `a token of ${daemon.token.length} characters`);
    const printed = await smeltd(['token', '--config', join(dataDir, 'test-config.json')]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, `${daemon.token}\n`);
    assert.equal((await api(daemon, 'GET', '/api/v1/machines')).status, 200, 'the printed token is the one in use');
    assert.equal((await api({ ...daemon, token: 'wrong' }, 'GET', '/api/v1/machines')).status, 401);
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });

    chmodSync(tokenFile, 0o644);
    daemon = await startSmeltd({ dataDir });
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600, 'tightened to 0600 on start');
    assert.equal(daemon.token, printed.stdout.trim(), 'the same token, not a new one');
    assert.ok(
      logLines(daemon.output()).some((line) => line.level === 40 && (line.msg ?? '').includes('0600')),
      `no warning about the loose token file:\n${daemon.output()}`,
    );
    assert.equal((await api(daemon, 'GET', '/api/v1/machines')).status, 200);
  } finally {
    await daemon.stop();
  }
});

test('SMELT_API_LISTEN and --api.listen override the config file, the flag over the environment', async () => {
  const [envPort, flagPort] = [await freePort(), await freePort()];
  const dataDir = join(newDir(), 'data');
  const fromEnv = await startSmeltd({ dataDir, env: { SMELT_API_LISTEN: `127.0.0.1:${envPort}` } });
  try {
    assert.equal(fromEnv.url, `http://127.0.0.1:${envPort}`, 'the "api listening" line shows the env address');
    assert.equal((await fetch(`${fromEnv.url}/healthz`)).status, 200);
  } finally {
    await fromEnv.stop();
  }
  const fromFlag = await startSmeltd({
    dataDir,
    env: { SMELT_API_LISTEN: `127.0.0.1:${envPort}` },
    args: ['--api.listen', `127.0.0.1:${flagPort}`],
  });
  try {
    assert.equal(fromFlag.url, `http://127.0.0.1:${flagPort}`, 'the "api listening" line shows the flag address');
    assert.equal((await fetch(`${fromFlag.url}/healthz`)).status, 200);
  } finally {
    await fromFlag.stop();
  }
});

test('`smeltd config show` prints the effective config as YAML: file < environment < flags', async () => {
  const dir = newDir();
  const configPath = join(dir, 'smelt.yaml');
  writeFileSync(
    configPath,
    [
      'address: 10.0.0.2',
      'interface: eth0',
      `dataDir: ${join(dir, 'data')}`,
      'api: { listen: "127.0.0.1:1111" }',
      'dhcp:',
      '  mode: off',
      '  leaseTime: 600',
      '  dns: [10.0.0.1]',
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const result = await smeltd(
    [
      'config',
      'show',
      '--config',
      configPath,
      '--dhcp.mode',
      'server',
      '--dhcp.subnet',
      '10.0.0.0/24',
      '--dhcp.pool.start=10.0.0.100',
      '--dhcp.pool.end',
      '10.0.0.199',
      '--dhcp.leaseTime',
      '900',
    ],
    {
      SMELT_DHCP_MODE: 'proxy',
      SMELT_API_LISTEN: '127.0.0.1:2222',
      SMELT_DHCP_LEASE_TIME: '1200',
      SMELT_DHCP_DNS: '10.0.0.53, 10.0.0.54',
      SMELT_TFTP_LISTEN: '10.0.0.2:69',
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  const shown = parseYaml(result.stdout) as Record<string, unknown>;
  assert.deepEqual(shown, {
    address: '10.0.0.2', // file
    interface: 'eth0', // file
    dataDir: join(dir, 'data'), // file
    api: { listen: '127.0.0.1:2222' }, // env over file
    http: { listen: '0.0.0.0:80', maxInstalls: 200, slotSeconds: 120, sendfileThreads: 1 }, // default
    tftp: {
      listen: '10.0.0.2:69',
      maxTransfers: 1000,
      maxPerPeer: 8,
      maxBlksize: 65464,
      maxWindowsize: 64,
      timeout: 1,
      retries: 5,
      maxQueue: 10_000,
      gso: true,
    }, // listen: env over default
    files: { dirs: [] }, // default
    dhcp: {
      mode: 'server', // flag over env over file
      interfaces: [],
      port: 67,
      proxyPort: 4011,
      subnet: '10.0.0.0/24', // flag
      pool: { start: '10.0.0.100', end: '10.0.0.199' }, // flags
      dns: ['10.0.0.53', '10.0.0.54'], // env list over file
      ntp: [],
      leaseTime: 900, // flag over env over file, as a number
      subnets: [],
      rateLimit: 20,
      offerTimeout: 60,
      declineTimeout: 3600,
    },
    ipxe: { dir: '/usr/lib/ipxe', bios: 'undionly.kpxe', efi64: 'ipxe.efi', arm64: 'arm64-efi/ipxe.efi' },
    templates: {},
    lifecycle: { unknown: 'hold', pollSeconds: 10, provisionTimeout: 7200 },
    iscsi: { enabled: false, control: 0, iqn: 'iqn.2026-11.org.smelt:disk', firstTid: 1000 },
    store: { kind: 'sqlite' },
    log: { level: 'warn' }, // file
  });

  // Without the flags, the environment wins over the file; with nothing else, the file shows through.
  const envOnly = await smeltd(['config', 'show', '--config', configPath, '--output', 'json'], {
    SMELT_DHCP_MODE: 'proxy',
  });
  assert.equal(envOnly.code, 0, envOnly.stderr);
  const envShown = JSON.parse(envOnly.stdout) as { dhcp: { mode: string; leaseTime: number }; api: { listen: string } };
  assert.equal(envShown.dhcp.mode, 'proxy');
  assert.equal(envShown.dhcp.leaseTime, 600);
  assert.equal(envShown.api.listen, '127.0.0.1:1111');
});
