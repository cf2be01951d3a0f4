/**
 * Autoinstall: user-data is validated by `cloud-init schema` (package cloud-init). Debian 12's cloud-init 22.4
 * does not know the `autoinstall` key (it lets unknown top-level keys through), so the `autoinstall` mapping is
 * also checked against Subiquity's schema for the keys used here, encoded below from the autoinstall reference
 * and Subiquity's autoinstall-schema.json, with python3-jsonschema; and the target's own `user-data` section goes
 * through `cloud-init schema` on its own. Both YAML readers, PyYAML (what cloud-init and Subiquity use, YAML 1.1)
 * and the `yaml` package (YAML 1.2), must read the same document.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { renderAutoinstallMetaData, renderAutoinstallUserData } from './autoinstall.ts';
import type { RenderContext } from './context.ts';
import { UnsafeValueError } from './escape.ts';
import { compileTemplate } from './template.ts';
import {
  assertGolden,
  assertNothingPwned,
  fullContext,
  hostile,
  hostileContext,
  minimalContext,
  python,
  run,
  sandbox,
  tempFile,
  testdata,
  tool,
  withDeployment,
} from './testdata/support.ts';

const str = { type: 'string' };
const bool = { type: 'boolean' };
const strings = { type: 'array', items: str };
/** A command list: each command a string (run with sh -c) or an argv list (run directly). */
const commands = { type: 'array', items: { type: ['string', 'array'], items: str } };
const any = {};

/** Netplan v2 ethernet, the keys used here (https://netplan.readthedocs.io/en/stable/netplan-yaml/). */
const ethernet = {
  type: 'object',
  additionalProperties: false,
  properties: {
    match: {
      type: 'object',
      additionalProperties: false,
      properties: { macaddress: str, name: str, driver: str },
    },
    'set-name': str,
    dhcp4: bool,
    dhcp6: bool,
    addresses: strings,
    routes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['to', 'via'],
        additionalProperties: false,
        properties: { to: str, via: str, metric: { type: 'integer' } },
      },
    },
    nameservers: { type: 'object', additionalProperties: false, properties: { addresses: strings, search: strings } },
  },
};

/**
 * The `autoinstall` mapping. Unknown top-level keys are fatal from Subiquity 24.04 on, so they are here too; the
 * keys this renderer never writes are accepted as anything.
 */
const autoinstallSchema = {
  type: 'object',
  required: ['version'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', minimum: 1, maximum: 1 },
    locale: str,
    keyboard: {
      type: 'object',
      required: ['layout'],
      additionalProperties: false,
      properties: { layout: str, variant: str, toggle: { type: ['string', 'null'] } },
    },
    network: {
      type: 'object',
      required: ['version'],
      additionalProperties: false,
      properties: {
        version: { const: 2 },
        ethernets: { type: 'object', additionalProperties: ethernet },
      },
    },
    proxy: { type: ['string', 'null'] },
    apt: {
      type: 'object',
      properties: {
        geoip: bool,
        preserve_sources_list: bool,
        primary: {
          type: 'array',
          items: {
            type: 'object',
            required: ['uri'],
            additionalProperties: false,
            properties: { arches: strings, uri: str },
          },
        },
      },
    },
    storage: {
      type: 'object',
      properties: {
        layout: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { enum: ['lvm', 'direct', 'zfs', 'hybrid'] },
            'sizing-policy': { enum: ['scaled', 'all'] },
            match: {
              type: 'object',
              additionalProperties: false,
              properties: {
                path: str,
                serial: str,
                model: str,
                vendor: str,
                id_path: str,
                devpath: str,
                ssd: bool,
                size: { enum: ['largest', 'smallest'] },
                'install-media': bool,
              },
            },
          },
        },
      },
    },
    identity: {
      type: 'object',
      required: ['username', 'hostname', 'password'],
      additionalProperties: false,
      properties: { realname: str, username: str, hostname: str, password: str, groups: any },
    },
    ssh: {
      type: 'object',
      additionalProperties: false,
      properties: { 'install-server': bool, 'authorized-keys': strings, 'allow-pw': bool },
    },
    packages: strings,
    'user-data': { type: 'object' },
    'early-commands': commands,
    'late-commands': commands,
    'error-commands': commands,
    ...Object.fromEntries(
      [
        'interactive-sections',
        'refresh-installer',
        'source',
        'active-directory',
        'ubuntu-pro',
        'codecs',
        'drivers',
        'oem',
        'snaps',
        'debconf-selections',
        'kernel',
        'kernel-crash-dumps',
        'timezone',
        'updates',
        'shutdown',
        'reporting',
        'zdevs',
      ].map((key) => [key, any]),
    ),
  },
};

/** PyYAML's reading of `text`, and the schema errors of its `autoinstall` mapping. */
function pyyaml(text: string, schema: object | null = autoinstallSchema): { doc: unknown; errors: string[] } {
  const script = `
import json, sys, yaml
doc = yaml.safe_load(sys.stdin.read())
schema = json.loads(sys.argv[1])
errors = []
if schema:
    import jsonschema
    validator = jsonschema.Draft202012Validator(schema)
    target = doc.get('autoinstall') if isinstance(doc, dict) else doc
    errors = ['/'.join(map(str, e.absolute_path)) + ': ' + e.message for e in validator.iter_errors(target)]
print(json.dumps({'doc': doc, 'errors': errors}))
`;
  return JSON.parse(python(script, [JSON.stringify(schema)], text)) as { doc: unknown; errors: string[] };
}

function cloudInitSchema(text: string, what: string): void {
  const file = tempFile('user-data', text);
  try {
    const result = run(tool('cloud-init', 'cloud-init'), ['schema', '--config-file', file.path]);
    assert.equal(result.status, 0, `${what}: cloud-init schema:\n${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /^Valid cloud-config: /m, `${what}: cloud-init schema`);
  } finally {
    file.remove();
  }
}

interface UserData {
  autoinstall: Record<string, unknown> & {
    identity: Record<string, string>;
    ssh: Record<string, unknown>;
    'user-data'?: Record<string, unknown>;
    'late-commands': string[][];
    'error-commands': string[][];
  };
}

/** Every check on a user-data: cloud-init, Subiquity's schema, the target's user-data, both YAML readers. */
function validate(text: string): UserData {
  assert.ok(text.startsWith('#cloud-config\n'), 'user-data starts with #cloud-config');
  cloudInitSchema(text, 'user-data');
  const { doc, errors } = pyyaml(text);
  assert.deepEqual(errors, [], 'Subiquity autoinstall schema');
  assert.deepEqual(parse(text), doc, 'the yaml package (YAML 1.2) and PyYAML (YAML 1.1) read the same');
  const userData = doc as UserData;
  assert.deepEqual(Object.keys(userData), ['autoinstall'], 'autoinstall is the only top-level key');
  const target = userData.autoinstall['user-data'];
  if (target !== undefined) cloudInitSchema(`#cloud-config\n${JSON.stringify(target)}\n`, 'autoinstall.user-data');
  return userData;
}

function validateMetaData(text: string): Record<string, string> {
  const { doc } = pyyaml(text, null);
  assert.deepEqual(parse(text), doc);
  const meta = doc as Record<string, string>;
  assert.deepEqual(Object.keys(meta), ['instance-id', 'local-hostname']);
  assert.match(meta['instance-id'] ?? '', /^smelt-[0-9a-f]{16}$/);
  return meta;
}

const ubuntuMirror = 'http://mirror.example.com/ubuntu';
const cases: [string, RenderContext][] = [
  ['autoinstall-static', fullContext(ubuntuMirror)],
  ['autoinstall-dhcp', minimalContext()],
  ['autoinstall-hostile', hostileContext()],
];
const curl = ['curl', '-fsS', '--noproxy', '*', '--retry', '5', '-o', '/dev/null'];

describe('autoinstall', () => {
  for (const [golden, context] of cases) {
    test(`${golden}: matches the goldens, passes cloud-init schema and Subiquity's schema`, () => {
      const userData = renderAutoinstallUserData(context);
      const metaData = renderAutoinstallMetaData(context);
      assertGolden(`${golden}.user-data`, userData);
      assertGolden(`${golden}.meta-data`, metaData);
      validate(userData);
      assert.equal(validateMetaData(metaData)['local-hostname'], context.deployment.hostname);
    });
  }

  test('says what the deployment says', () => {
    const { autoinstall } = validate(renderAutoinstallUserData(fullContext(ubuntuMirror)));
    assert.deepEqual(autoinstall.network, {
      version: 2,
      ethernets: {
        nic0: {
          match: { macaddress: '52:54:00:12:34:56' },
          dhcp4: false,
          addresses: ['10.0.0.50/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.0.0.1' }],
          nameservers: { addresses: ['10.0.0.1', '1.1.1.1'], search: ['example.com'] },
        },
      },
    });
    assert.deepEqual(autoinstall.storage, {
      layout: { name: 'lvm', 'sizing-policy': 'all', match: { path: '/dev/sda' } },
    });
    assert.deepEqual(autoinstall.apt, { geoip: false, primary: [{ arches: ['default'], uri: ubuntuMirror }] });
    assert.equal(autoinstall.proxy, 'http://proxy.example.com:3128');
    assert.deepEqual(autoinstall.identity, {
      hostname: 'web1',
      username: 'ops',
      password: fullContext('').deployment.passwordHash,
    });
    assert.deepEqual(autoinstall.ssh, {
      'install-server': true,
      'authorized-keys': fullContext('').deployment.sshKeys,
      'allow-pw': true,
    });
    assert.deepEqual(autoinstall.packages, ['curl', 'vim']);
    assert.deepEqual(autoinstall['user-data'], { ntp: { enabled: true, servers: ['0.pool.ntp.org', '10.0.0.1'] } });
  });

  test('no password: locked, keys only, no password over SSH, passwordless sudo', () => {
    const { autoinstall } = validate(renderAutoinstallUserData(minimalContext()));
    assert.equal(autoinstall.identity.password, '*');
    assert.equal(autoinstall.ssh['allow-pw'], false);
    assert.deepEqual(autoinstall['user-data'], {
      write_files: [
        { path: '/etc/sudoers.d/90-smelt', content: 'smelt ALL=(ALL) NOPASSWD:ALL\n', permissions: '0440' },
      ],
    });
    assert.deepEqual(autoinstall.storage, { layout: { name: 'lvm', 'sizing-policy': 'all' } });
    assert.deepEqual(autoinstall.network, {
      version: 2,
      ethernets: { nic0: { match: { macaddress: '52:54:00:ab:cd:ef' }, dhcp4: true } },
    });
  });

  test('hostile values stay strings, identical in YAML 1.1 and 1.2', () => {
    const context = hostileContext();
    const { autoinstall } = validate(renderAutoinstallUserData(context));
    assert.equal(autoinstall.identity.hostname, hostile.hostname);
    assert.equal(autoinstall.identity.password, hostile.passwordHash);
    assert.deepEqual(autoinstall.ssh['authorized-keys'], hostile.sshKeys);
    assert.equal(autoinstall.proxy, hostile.proxy);
    const network = autoinstall.network as { ethernets: { nic0: { nameservers: { search: unknown[] } } } };
    assert.deepEqual(network.ethernets.nic0.nameservers.search, ['on'], 'YAML 1.1 would read a plain on as true');
    assert.deepEqual(autoinstall['late-commands'], [[...curl, '-d', '', hostile.phoneHome]]);
    assert.equal(autoinstall['error-commands'][0]?.at(-1), hostile.failed);
    assert.equal(validateMetaData(renderAutoinstallMetaData(context))['local-hostname'], hostile.hostname);
  });

  test('line breaks, tabs, separators and YAML indicators in a hostname round-trip', () => {
    const hostnames = [
      'web\n1',
      '- web\n  - 1: #x\r\n',
      'web\u2028\u0085\t1',
      '"\'\\',
      '~',
      'null',
      '1:30',
      '0x1F',
      'yes',
    ];
    for (const hostname of hostnames) {
      const context = withDeployment(minimalContext(), { hostname });
      const userData = renderAutoinstallUserData(context);
      const { doc, errors } = pyyaml(userData);
      assert.deepEqual(errors, []);
      assert.deepEqual(parse(userData), doc);
      assert.equal((doc as UserData).autoinstall.identity.hostname, hostname, JSON.stringify(hostname));
      assert.equal(validateMetaData(renderAutoinstallMetaData(context))['local-hostname'], hostname);
    }
    validate(renderAutoinstallUserData(withDeployment(minimalContext(), { hostname: hostnames[1] })));
  });

  test('the checks themselves reject what Subiquity or cloud-init would', () => {
    const good = renderAutoinstallUserData(minimalContext());
    const bad: [string, RegExp][] = [
      [good.replace('  version: 1\n', '  version: 1\n  hostname: "x"\n'), /Additional properties/],
      [good.replace('    password: "*"\n', ''), /'password' is a required property/],
      [good.replace('install-server: true', 'install-server: "yes"'), /is not of type 'boolean'/],
      [good.replace('name: "lvm"', 'name: "raid"'), /is not one of/],
      [
        good.replace('        permissions: "0440"\n', '        permissions: 440\n        owner: [1]\n'),
        /cloud-init schema/,
      ],
      [good.replace('#cloud-config\n', ''), /starts with #cloud-config/],
    ];
    for (const [text, message] of bad) assert.throws(() => validate(text), message, String(message));
  });

  test('an SSH key with a line break is refused: it would be two keys', () => {
    assert.throws(
      () =>
        renderAutoinstallUserData(withDeployment(minimalContext(), { sshKeys: ['ssh-ed25519 AAAA a\nssh-rsa BBBB'] })),
      UnsafeValueError,
    );
  });

  test('the hostile late-commands and error-commands, run: the exact URLs, nothing else', () => {
    const { autoinstall } = validate(renderAutoinstallUserData(hostileContext()));
    for (const [key, expected] of [
      ['late-commands', [[...curl, '-d', '', hostile.phoneHome]]],
      ['error-commands', [[...curl, '-H', 'Content-Type: text/plain', '--data-binary', '@-', hostile.failed]]],
    ] as const) {
      for (const argv of autoinstall[key]) {
        const result = sandbox(argv);
        assert.equal(result.status, 0, result.stderr);
        assertNothingPwned(result, key);
        assert.deepEqual(result.calls, expected);
      }
    }
  });

  test('the instance-id follows name and MAC', () => {
    const id = (context: RenderContext): string | undefined =>
      validateMetaData(renderAutoinstallMetaData(context))['instance-id'];
    const base = minimalContext();
    assert.equal(id(base), id(minimalContext()));
    assert.notEqual(id(base), id(withDeployment(base, { name: 'db3' })));
    assert.notEqual(id(base), id({ ...base, machine: { ...base.machine, mac: '52:54:00:ab:cd:e0' } }));
  });

  test('an operator template renders to a valid user-data', () => {
    const source = readFileSync(join(testdata, 'operator.user-data.tmpl'), 'utf8');
    const text = compileTemplate(source, 'operator.user-data.tmpl', 'yaml').render(hostileContext());
    assertGolden('operator.user-data', text);
    const { autoinstall } = validate(text);
    assert.equal(autoinstall.identity.hostname, hostile.hostname);
    assert.deepEqual(autoinstall.ssh['authorized-keys'], hostile.sshKeys);
    assert.deepEqual(autoinstall['late-commands'], [['curl', '-fsS', '-d', '', hostile.phoneHome]]);
  });
});
