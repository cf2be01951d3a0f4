import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, resolveConfig } from './load.ts';
import type { ConfigLayers } from './load.ts';
import { configKeys, configSchema, envNameOf } from './schema.ts';
import type { ConfigKey } from './schema.ts';

const FILE = '/etc/smelt/smelt.yaml';

function file(text: string): { path: string; text: string } {
  return { path: FILE, text };
}

/** Resolves the layers and returns the problems; fails the test when the configuration is accepted. */
function problemsOf(layers: ConfigLayers): readonly string[] {
  try {
    resolveConfig(layers);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.name, 'ConfigError');
    assert.equal(error.message, `invalid configuration:\n  ${error.problems.join('\n  ')}`);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('envNameOf', () => {
  test('SMELT_ + the path in upper snake case', () => {
    assert.equal(envNameOf('dataDir'), 'SMELT_DATA_DIR');
    assert.equal(envNameOf('dhcp.pool.start'), 'SMELT_DHCP_POOL_START');
    assert.equal(envNameOf('dhcp.leaseTime'), 'SMELT_DHCP_LEASE_TIME');
    assert.equal(envNameOf('dhcp.mode'), 'SMELT_DHCP_MODE');
    assert.equal(envNameOf('api.listen'), 'SMELT_API_LISTEN');
    assert.equal(envNameOf('interface'), 'SMELT_INTERFACE');
    assert.equal(envNameOf('log.level'), 'SMELT_LOG_LEVEL');
  });

  test('every key has its own well-formed name', () => {
    const names = (Object.keys(configKeys) as ConfigKey[]).map(envNameOf);
    for (const name of names) assert.match(name, /^SMELT_[A-Z][A-Z0-9_]*[A-Z0-9]$/);
    assert.equal(new Set(names).size, names.length);
  });
});

describe('resolveConfig', () => {
  test('defaults: only the address is needed, and DHCP is in proxy mode', () => {
    const config = resolveConfig({ file: file('address: 10.0.0.2\n'), env: {}, flags: {} });
    assert.deepEqual(config, {
      address: '10.0.0.2',
      dataDir: '/var/lib/smelt',
      api: { listen: '0.0.0.0:7480' },
      http: { listen: '0.0.0.0:80', maxInstalls: 200, slotSeconds: 120, sendfileThreads: 1 },
      tftp: {
        listen: '0.0.0.0:69',
        maxTransfers: 1000,
        maxPerPeer: 8,
        maxBlksize: 65464,
        maxWindowsize: 64,
        timeout: 1,
        retries: 5,
        maxQueue: 10_000,
        gso: true,
      },
      files: { dirs: [] },
      dhcp: {
        mode: 'proxy',
        interfaces: [],
        port: 67,
        proxyPort: 4011,
        dns: [],
        ntp: [],
        leaseTime: 3600,
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
      log: { level: 'info' },
    });
  });

  test('configSchema defaults dhcp.mode to proxy', () => {
    assert.equal(configSchema.parse({ address: '10.0.0.2' }).dhcp.mode, 'proxy');
  });

  describe('precedence: defaults < file < env < flags', () => {
    const fileText = 'address: 10.0.0.2\ndataDir: /from/file\ndhcp:\n  leaseTime: 600\n';
    const env = { SMELT_DATA_DIR: '/from/env', SMELT_DHCP_LEASE_TIME: '700' };
    const flags = { dataDir: '/from/flag', 'dhcp.leaseTime': '800' };

    test('flags win over everything', () => {
      const config = resolveConfig({ file: file(fileText), env, flags });
      assert.equal(config.dataDir, '/from/flag');
      assert.equal(config.dhcp.leaseTime, 800);
    });

    test('a boolean setting takes true/false, yes/no, on/off, 1/0 from env or a flag; anything else is refused', () => {
      const base = { address: '10.0.0.2' };
      assert.equal(resolveConfig({ env: {}, flags: { ...base, 'tftp.gso': 'false' } }).tftp.gso, false);
      assert.equal(resolveConfig({ env: { SMELT_TFTP_GSO: 'Off' }, flags: base }).tftp.gso, false);
      assert.equal(resolveConfig({ env: { SMELT_TFTP_GSO: 'yes' }, flags: base }).tftp.gso, true);
      assert.equal(resolveConfig({ env: {}, flags: base }).tftp.gso, true, 'on by default');
      const problems = problemsOf({ env: {}, flags: { ...base, 'tftp.gso': 'maybe' } });
      assert.ok(
        problems.some((p) => p.startsWith('tftp.gso: ') && p.includes('boolean')),
        problems.join('; '),
      );
    });

    test('http.sendfileThreads: 0 (stream through the event loop) to 16; more, fewer or a fraction is refused', () => {
      const base = { address: '10.0.0.2' };
      assert.equal(resolveConfig({ env: { SMELT_HTTP_SENDFILE_THREADS: '0' }, flags: base }).http.sendfileThreads, 0);
      assert.equal(resolveConfig({ env: {}, flags: { ...base, 'http.sendfileThreads': '4' } }).http.sendfileThreads, 4);
      for (const bad of ['17', '-1', '1.5', 'two']) {
        const problems = problemsOf({ env: {}, flags: { ...base, 'http.sendfileThreads': bad } });
        assert.ok(
          problems.length === 1 && problems[0]?.startsWith('http.sendfileThreads: '),
          `${bad}: ${problems.join('; ')}`,
        );
      }
    });

    test('env wins over the file', () => {
      const config = resolveConfig({ file: file(fileText), env, flags: {} });
      assert.equal(config.dataDir, '/from/env');
      assert.equal(config.dhcp.leaseTime, 700);
    });

    test('the file wins over the defaults', () => {
      const config = resolveConfig({ file: file(fileText), env: {}, flags: {} });
      assert.equal(config.dataDir, '/from/file');
      assert.equal(config.dhcp.leaseTime, 600);
    });

    test('layers mix key by key', () => {
      const config = resolveConfig({
        file: file(fileText),
        env: { SMELT_DATA_DIR: '/from/env' },
        flags: { 'api.listen': '127.0.0.1:9000' },
      });
      assert.equal(config.dataDir, '/from/env');
      assert.equal(config.dhcp.leaseTime, 600);
      assert.equal(config.api.listen, '127.0.0.1:9000');
      assert.equal(config.http.listen, '0.0.0.0:80');
    });

    test('an empty environment variable is ignored', () => {
      const config = resolveConfig({ file: file(fileText), env: { SMELT_DATA_DIR: '' }, flags: {} });
      assert.equal(config.dataDir, '/from/file');
    });

    test('a nested key from env keeps its siblings from the file', () => {
      const text =
        'address: 10.0.0.2\ninterface: eth0\ndhcp:\n  mode: server\n  subnet: 10.0.0.0/24\n  pool: { start: 10.0.0.100, end: 10.0.0.199 }\n';
      const config = resolveConfig({ file: file(text), env: { SMELT_DHCP_POOL_END: '10.0.0.150' }, flags: {} });
      assert.deepEqual(config.dhcp.pool, { start: '10.0.0.100', end: '10.0.0.150' });
      assert.equal(config.dhcp.mode, 'server');
    });

    test('env and flags alone build the config without a file', () => {
      const config = resolveConfig({
        env: { SMELT_ADDRESS: '192.168.1.5', SMELT_DHCP_MODE: 'off' },
        flags: { 'log.level': 'debug' },
      });
      assert.equal(config.address, '192.168.1.5');
      assert.equal(config.dhcp.mode, 'off');
      assert.equal(config.log.level, 'debug');
    });

    test('a detected config is the base when there is no file, and is not changed', () => {
      const detected = { address: '192.168.1.10', dhcp: { mode: 'proxy', subnet: '192.168.1.0/24' } };
      const before = structuredClone(detected);
      const config = resolveConfig({ detected, env: { SMELT_DHCP_MODE: 'off' }, flags: {} });
      assert.equal(config.address, '192.168.1.10');
      assert.equal(config.dhcp.subnet, '192.168.1.0/24');
      assert.equal(config.dhcp.mode, 'off');
      assert.deepEqual(detected, before);
    });

    test('variables that are not SMELT_ settings are ignored', () => {
      const config = resolveConfig({
        file: file('address: 10.0.0.2\n'),
        env: { PATH: '/usr/bin', SMELT_TOKEN: 'x', HOME: '/root' },
        flags: {},
      });
      assert.equal(config.address, '10.0.0.2');
    });
  });

  describe('coercion', () => {
    test('a list from the environment is split on commas and trimmed', () => {
      const config = resolveConfig({
        file: file('address: 10.0.0.2\n'),
        env: { SMELT_DHCP_DNS: '1.1.1.1, 8.8.8.8' },
        flags: {},
      });
      assert.deepEqual(config.dhcp.dns, ['1.1.1.1', '8.8.8.8']);
    });

    test('a list from a flag, with empty items dropped', () => {
      const config = resolveConfig({
        file: file('address: 10.0.0.2\n'),
        env: {},
        flags: { 'dhcp.dns': '9.9.9.9,,149.112.112.112,' },
      });
      assert.deepEqual(config.dhcp.dns, ['9.9.9.9', '149.112.112.112']);
    });

    test('a number from the environment and from a flag', () => {
      const fromEnv = resolveConfig({
        file: file('address: 10.0.0.2\n'),
        env: { SMELT_DHCP_LEASE_TIME: '7200' },
        flags: {},
      });
      assert.equal(fromEnv.dhcp.leaseTime, 7200);
      const fromFlag = resolveConfig({
        file: file('address: 10.0.0.2\n'),
        env: {},
        flags: { 'dhcp.leaseTime': '120' },
      });
      assert.equal(fromFlag.dhcp.leaseTime, 120);
    });

    test('a non-number leaseTime is reported against dhcp.leaseTime', () => {
      const problems = problemsOf({
        file: file('address: 10.0.0.2\n'),
        env: { SMELT_DHCP_LEASE_TIME: 'one hour' },
        flags: {},
      });
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /^dhcp\.leaseTime: /);
    });

    test('a leaseTime out of range is reported against dhcp.leaseTime', () => {
      const problems = problemsOf({ file: file('address: 10.0.0.2\n'), env: {}, flags: { 'dhcp.leaseTime': '30' } });
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /^dhcp\.leaseTime: /);
    });
  });

  describe('problems', () => {
    test('an unknown flag is not a setting', () => {
      const problems = problemsOf({ file: file('address: 10.0.0.2\n'), env: {}, flags: { foo: 'bar' } });
      assert.equal(problems.length, 1);
      const [problem = ''] = problems;
      assert.ok(problem.startsWith('--foo: not a setting (settings: interface, address, dataDir, '), problem);
      assert.ok(problem.includes('dhcp.leaseTime'), 'lists the settings');
    });

    test('a flag named like an Object.prototype member is not a setting either', () => {
      const problems = problemsOf({ file: file('address: 10.0.0.2\n'), env: {}, flags: { toString: 'x' } });
      assert.equal(problems.length, 1);
      assert.ok(problems[0]?.startsWith('--toString: not a setting'), problems[0]);
    });

    test('a flag naming a section rather than a setting is not a setting', () => {
      const problems = problemsOf({ file: file('address: 10.0.0.2\n'), env: {}, flags: { dhcp: 'server' } });
      assert.ok(problems[0]?.startsWith('--dhcp: not a setting'), problems[0]);
    });

    test('a missing address is reported', () => {
      const problems = problemsOf({ env: {}, flags: {} });
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /^address: /);
    });

    test('a bad address and a pool outside the subnet are reported together', () => {
      const text = [
        'address: 10.0.0.300',
        'interface: eth0',
        'dhcp:',
        '  mode: server',
        '  subnet: 10.0.0.0/24',
        '  pool: { start: 10.0.1.100, end: 10.0.1.199 }',
        '',
      ].join('\n');
      assert.deepEqual(problemsOf({ file: file(text), env: {}, flags: {} }), [
        'address: "10.0.0.300" is not an IPv4 address (dotted quad, e.g. 192.168.0.10)',
        'dhcp.pool.start: 10.0.1.100 is not inside 10.0.0.0/24',
        'dhcp.pool.end: 10.0.1.199 is not inside 10.0.0.0/24',
      ]);
    });

    test('a pool containing the server address and the gateway', () => {
      const text = [
        'address: 10.0.0.150',
        'interface: eth0',
        'dhcp:',
        '  mode: server',
        '  subnet: 10.0.0.0/24',
        '  gateway: 10.0.0.1',
        '  pool: { start: 10.0.0.1, end: 10.0.0.200 }',
        '',
      ].join('\n');
      assert.deepEqual(problemsOf({ file: file(text), env: {}, flags: {} }), [
        'dhcp.pool: contains the server address 10.0.0.150',
        'dhcp.pool: contains the gateway 10.0.0.1',
      ]);
    });

    test('server mode without subnet and pool', () => {
      assert.deepEqual(problemsOf({ file: file('address: 10.0.0.2\ndhcp: { mode: server }\n'), env: {}, flags: {} }), [
        'dhcp.subnet: required in server mode',
        'dhcp.pool: required in server mode',
        'dhcp.interfaces: server mode needs the interface to serve: set interface or dhcp.interfaces',
      ]);
    });

    test('a gateway outside the subnet and a pool the wrong way round', () => {
      const text = [
        'address: 10.0.0.2',
        'dhcp:',
        '  subnet: 10.0.0.0/24',
        '  gateway: 192.168.0.1',
        '  pool: { start: 10.0.0.200, end: 10.0.0.100 }',
        '',
      ].join('\n');
      assert.deepEqual(problemsOf({ file: file(text), env: {}, flags: {} }), [
        'dhcp.gateway: 192.168.0.1 is not inside 10.0.0.0/24',
        'dhcp.pool: start 10.0.0.200 is after end 10.0.0.100',
      ]);
    });

    test('an unknown flag, a bad file value and a bad env value are all reported at once', () => {
      const problems = problemsOf({
        file: file('address: 10.0.0.2\napi: { listen: "nowhere" }\n'),
        env: { SMELT_LOG_LEVEL: 'loud' },
        flags: { foo: 'bar' },
      });
      assert.equal(problems.length, 3);
      assert.ok(problems[0]?.startsWith('--foo: not a setting'), problems[0]);
      assert.equal(problems[1], 'api.listen: use HOST:PORT, e.g. 0.0.0.0:7480');
      assert.match(problems[2] ?? '', /^log\.level: /);
    });

    test('a type error does not hide the cross-field problems', () => {
      // ConfigError promises every problem at once; a leaseTime typo must not hide a pool outside the subnet.
      const text = [
        'address: 10.0.0.2',
        'interface: eth0',
        'dhcp:',
        '  mode: server',
        '  subnet: 10.0.0.0/24',
        '  pool: { start: 10.0.1.100, end: 10.0.1.199 }',
        '  leaseTime: 1h',
        '',
      ].join('\n');
      const problems = problemsOf({ file: file(text), env: {}, flags: {} });
      assert.deepEqual(
        problems.map((problem) => problem.slice(0, problem.indexOf(':'))),
        ['dhcp.leaseTime', 'dhcp.pool.start', 'dhcp.pool.end'],
      );
    });

    test('an unknown key in the file is reported at its own path', () => {
      const problems = problemsOf({ file: file('address: 10.0.0.2\ndhcp: { mdoe: server }\n'), env: {}, flags: {} });
      assert.deepEqual(problems, ['dhcp.mdoe: not a setting']);
    });

    test('a YAML syntax error names the file and the line', () => {
      const text = 'address: 10.0.0.2\ndhcp:\n  mode: server\n  dns: [1.1.1.1\n';
      const problems = problemsOf({ file: file(text), env: {}, flags: {} });
      const yamlProblem = problems.find((problem) => problem.startsWith(FILE));
      assert.ok(yamlProblem, problems.join('\n'));
      assert.match(yamlProblem, /^\/etc\/smelt\/smelt\.yaml line \d+: \S/);
      assert.equal(yamlProblem.includes('\n'), false);
    });

    test('a YAML syntax error on a known line', () => {
      const text = 'address: 10.0.0.2\ndataDir: /srv/smelt\napi: {listen: "0.0.0.0:7480"\nlog: { level: info }\n';
      const problems = problemsOf({ file: file(text), env: {}, flags: {} });
      const yamlProblem = problems.find((problem) => problem.startsWith(FILE)) ?? '';
      const line = /^\/etc\/smelt\/smelt\.yaml line (\d+): /.exec(yamlProblem)?.[1];
      assert.ok(line === '3' || line === '4', yamlProblem);
    });

    test('a file whose top level is not a mapping', () => {
      const problems = problemsOf({ file: file('- address\n- 10.0.0.2\n'), env: {}, flags: {} });
      assert.equal(problems[0], `${FILE}: the top level must be a mapping of settings`);
    });

    test('an empty file is no settings at all', () => {
      const config = resolveConfig({ file: file(''), env: { SMELT_ADDRESS: '10.0.0.9' }, flags: {} });
      assert.equal(config.address, '10.0.0.9');
    });
  });
});

describe('configSchema', () => {
  test('accepts the documented example', () => {
    const config = configSchema.parse({
      interface: 'eth0',
      address: '10.0.0.2',
      dataDir: '/var/lib/smelt',
      api: { listen: '0.0.0.0:7480' },
      http: { listen: '0.0.0.0:80' },
      tftp: { listen: '0.0.0.0:69' },
      dhcp: {
        mode: 'server',
        subnet: '10.0.0.0/24',
        pool: { start: '10.0.0.100', end: '10.0.0.199' },
        gateway: '10.0.0.1',
        dns: ['10.0.0.1'],
        leaseTime: 3600,
      },
      ipxe: { dir: '/usr/lib/ipxe' },
      store: { kind: 'sqlite' },
    });
    assert.equal(config.dhcp.mode, 'server');
    assert.deepEqual(config.dhcp.pool, { start: '10.0.0.100', end: '10.0.0.199' });
    assert.equal(config.log.level, 'info');
  });

  test('listen addresses: port 0, IPv6, and out-of-range ports', () => {
    assert.equal(configSchema.parse({ address: '10.0.0.2', api: { listen: '127.0.0.1:0' } }).api.listen, '127.0.0.1:0');
    assert.equal(configSchema.parse({ address: '10.0.0.2', api: { listen: '[::1]:7480' } }).api.listen, '[::1]:7480');
    const result = configSchema.safeParse({ address: '10.0.0.2', api: { listen: '0.0.0.0:70000' } });
    assert.equal(result.success, false);
    assert.deepEqual(result.error.issues[0]?.path, ['api', 'listen']);
    assert.equal(result.error.issues[0].message, 'port above 65535');
  });

  test('iscsi: a bad portal, target prefix, overlays path or target id is named with what to write', () => {
    const result = configSchema.safeParse({
      address: '10.0.0.2',
      iscsi: { enabled: true, portal: 'san:3260:1', iqn: 'disk', overlays: 'iscsi', firstTid: 0 },
    });
    assert.equal(result.success, false);
    assert.deepEqual(
      result.error.issues.map((issue) => [issue.path.join('.'), issue.message]),
      [
        ['iscsi.portal', 'use HOST or HOST:PORT'],
        ['iscsi.overlays', 'use an absolute path'],
        ['iscsi.iqn', 'an iSCSI qualified name, iqn.YYYY-MM.domain:name'],
        ['iscsi.firstTid', 'Too small: expected number to be >=1'],
      ],
    );
  });

  test('a listen address without a port is one problem, not also "port above 65535"', () => {
    for (const listen of ['nowhere', '10.0.0.2']) {
      const result = configSchema.safeParse({ address: '10.0.0.2', http: { listen } });
      assert.equal(result.success, false);
      assert.deepEqual(
        result.error.issues.map((issue) => issue.message),
        ['use HOST:PORT, e.g. 0.0.0.0:7480'],
        listen,
      );
    }
  });

  test('a bad listen address does not hide the DHCP checks', () => {
    const result = configSchema.safeParse({
      address: '10.0.0.2',
      tftp: { listen: 'nowhere' },
      dhcp: { mode: 'server' },
    });
    assert.equal(result.success, false);
    assert.deepEqual(
      result.error.issues.map((issue) => issue.path.join('.')),
      ['tftp.listen', 'dhcp.subnet', 'dhcp.pool', 'dhcp.interfaces'],
    );
  });

  test('each further subnet is checked like the first, at its own path', () => {
    const result = configSchema.safeParse({
      address: '10.0.0.2',
      interface: 'eth0',
      dhcp: {
        mode: 'server',
        subnet: '10.0.0.0/24',
        pool: { start: '10.0.0.100', end: '10.0.0.199' },
        subnets: [
          { subnet: '10.1.0.0/24', pool: { start: '10.1.0.10', end: '10.1.0.20' }, gateway: '10.1.0.1' },
          { subnet: '10.2.0.0/24', pool: { start: '10.2.0.50', end: '10.3.0.9' }, gateway: '10.2.0.60' },
        ],
      },
    });
    assert.equal(result.success, false);
    assert.deepEqual(
      result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
      [
        'dhcp.subnets.1.pool.end: 10.3.0.9 is not inside 10.2.0.0/24',
        'dhcp.subnets.1.pool: contains the gateway 10.2.0.60',
      ],
    );
  });

  test('an etcd store needs endpoints and gets a prefix', () => {
    const config = configSchema.parse({
      address: '10.0.0.2',
      store: { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'] },
    });
    assert.deepEqual(config.store, { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/smelt' });
    const result = configSchema.safeParse({ address: '10.0.0.2', store: { kind: 'etcd', endpoints: [] } });
    assert.equal(result.success, false);
    assert.equal(result.error.issues[0]?.message, 'list at least one etcd endpoint');
  });
});
