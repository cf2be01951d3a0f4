/**
 * Escaping, checked against the real readers: dash and bash (and Python's shlex, which pykickstart uses) must
 * read every shQuote'd word back unchanged; PyYAML (YAML 1.1, cloud-init's parser) and the `yaml` package
 * (YAML 1.2) must read every yamlQuote'd scalar back unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  UnsafeValueError,
  debconfValue,
  lineValue,
  refuseDisk,
  refuseHost,
  refuseIpv4,
  refuseMac,
  refusePackage,
  refuseUrl,
  refuseUser,
  shQuote,
  toYaml,
  yamlQuote,
} from './escape.ts';
import { python, run, tool } from './testdata/support.ts';

/** Strings that mean something to a shell, a YAML parser or a line-oriented reader. */
const nasty = [
  '',
  ' ',
  "'",
  '"',
  '\\',
  "it's",
  "''''",
  '$(touch /PWNED)',
  '`id`',
  '$HOME ${x} $1 $@ $*',
  ';|&<>()!',
  '* ? [a]',
  '~root',
  '#comment',
  '-n',
  '--version',
  'a b\tc',
  'line\nbreak\r\n',
  '%s %d',
  '{{ urls.phoneHome }}',
  'ü✓ 🚀 \u00a0\u2028',
  "\\'\\",
];

describe('shQuote', () => {
  for (const [shell, pkg] of [
    ['dash', 'dash'],
    ['bash', 'bash'],
  ] as const) {
    test(`${shell} reads every quoted word back unchanged`, () => {
      const script = `printf '%s\\0' ${nasty.map((value) => shQuote(value)).join(' ')}`;
      const result = run(tool(shell, pkg), ['-c', script]);
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual(result.stdout.split('\0').slice(0, -1), nasty);
    });
  }

  test("Python's shlex (pykickstart's command-line splitter) reads them back unchanged", () => {
    const line = nasty.map((value) => shQuote(value)).join(' ');
    const out = python(
      'import json, shlex, sys\nprint(json.dumps(shlex.split(sys.stdin.read(), comments=True)))',
      [],
      line,
    );
    assert.deepEqual(JSON.parse(out), nasty);
  });

  test('plain words stay bare; NUL and broken Unicode are refused', () => {
    for (const word of ['web1', '/dev/sda', 'http://10.0.0.2/a/b', 'a=b,c:d@e%f+g', '52:54:00:12:34:56']) {
      assert.equal(shQuote(word), word);
    }
    assert.throws(() => shQuote('a\0b'), UnsafeValueError);
    assert.throws(() => shQuote('\ud800'), UnsafeValueError);
  });
});

describe('line values', () => {
  test('anything that ends or alters a line is refused; tabs and non-ASCII are fine', () => {
    for (const char of [
      '\n',
      '\r',
      '\v',
      '\f',
      '\0',
      '\x1b',
      '\x1c',
      '\x1e',
      '\x7f',
      '\x85',
      '\x9b',
      '\u2028',
      '\u2029',
    ]) {
      assert.throws(() => lineValue('x', `a${char}b`), UnsafeValueError, JSON.stringify(char));
    }
    assert.equal(lineValue('x', 'a\tb ü✓'), 'a\tb ü✓');
  });

  test('debconf values cannot end in a backslash, which would continue the line', () => {
    assert.throws(() => debconfValue('q', 'web1\\'), /trailing backslash/);
    assert.equal(debconfValue('q', 'a\\b'), 'a\\b');
    assert.throws(
      () => debconfValue('netcfg/hostname', 'a\nb'),
      /netcfg\/hostname "a\\nb" cannot go into an answer file/,
    );
  });
});

describe('YAML', () => {
  /** YAML 1.1 and 1.2 traps: booleans, nulls, numbers, dates, sexagesimals, indicators, odd characters. */
  const traps = [
    ...nasty,
    'on',
    'off',
    'yes',
    'no',
    'y',
    'true',
    'null',
    '~',
    '0x1F',
    '010',
    '1e3',
    '.inf',
    '1:30',
    '2001-01-01',
    '- item',
    'key: value',
    '? q',
    '&anchor',
    '*alias',
    '!tag',
    '%directive',
    '@at',
    '|',
    '>',
    '---',
    '...',
    '\ufeffbom',
    '\x7f\x85\x9f',
    '\ufffe',
  ];

  test('every quoted scalar reads back unchanged in PyYAML (YAML 1.1) and the yaml package (YAML 1.2)', () => {
    const document = traps.map((value) => `- ${yamlQuote(value)}`).join('\n');
    assert.deepEqual(parse(document), traps);
    const out = python('import json, sys, yaml\nprint(json.dumps(yaml.safe_load(sys.stdin.read())))', [], document);
    assert.deepEqual(JSON.parse(out), traps);
  });

  test('toYaml writes block YAML both parsers read as the same structure', () => {
    const document = {
      plain: 'value',
      number: 24,
      yes: true,
      no: false,
      nothing: null,
      skipped: undefined,
      'odd key': 'on',
      empty: [],
      emptyMap: {},
      onlyUndefined: { a: undefined },
      list: ['a', 'b'],
      maps: [{ to: '0.0.0.0/0', via: '10.0.0.1' }, { single: 'x' }],
      commands: [['curl', '-d', '', 'http://x/$(y)'], []],
      nested: { deeper: { deepest: ['- x', '1:30'] } },
    };
    const text = toYaml(document);
    const expected = JSON.parse(JSON.stringify({ ...document, onlyUndefined: {} })) as unknown;
    assert.deepEqual(parse(text), expected);
    const out = python('import json, sys, yaml\nprint(json.dumps(yaml.safe_load(sys.stdin.read())))', [], text);
    assert.deepEqual(JSON.parse(out), expected);
    assert.match(text, /^plain: "value"\nnumber: 24\n"yes": true\n"no": false\n/);
    assert.match(text, /^ {2}- \["curl", "-d", "", "http:\/\/x\/\$\(y\)"\]$/m);
  });
});

describe('values that are syntax to their consumer', () => {
  const cases: [string, (value: string) => unknown, string[], string[]][] = [
    [
      'user',
      refuseUser,
      ['smelt', 'ops_1', '_svc', 'a-b'],
      ['Root', 'a b', 'x;reboot', '-x', 'a:b', '', 'a'.repeat(33)],
    ],
    [
      'package',
      refusePackage,
      ['curl', 'libc6:amd64', 'g++', 'pkg=1.0~rc1', 'dns-server^', '@core', '@^minimal-environment'],
      ['-oAPT::Update::Pre-Invoke::=reboot', 'a b', 'vim*', 'x;y', '$(id)', ''],
    ],
    [
      'disk',
      refuseDisk,
      [
        '/dev/sda',
        '/dev/nvme0n1',
        '/dev/disk/by-id/wwn-0x5000c500a0b1c2d3',
        '/dev/disk/by-path/pci-0000:00:1f.2-ata-1',
      ],
      ['sda', '/dev/sda,sdb', '/dev/sda sdb', '/dev//sda', '/dev/$(id)', '/etc/passwd', '/dev/../etc/passwd', '/dev/'],
    ],
    [
      'ipv4',
      (v) => refuseIpv4('ip', v),
      ['10.0.0.1', '255.255.255.0', '0.0.0.0'],
      ['1.1.1.1,8.8.8.8', '256.0.0.1', '01.2.3.4', '1.2.3'],
    ],
    ['mac', refuseMac, ['52:54:00:12:34:56'], ['52-54-00-12-34-56', '52:54:00:12:34:5G', '52:54:00:12:34:56 ']],
    ['host', (v) => refuseHost('ntp', v), ['0.pool.ntp.org', '10.0.0.1', 'fe80::1'], ['-x', 'a b', 'a,b', '']],
    [
      'url',
      (v) => refuseUrl('mirror', v),
      ['http://deb.debian.org/debian', 'https://m/x?y#z'],
      ['ftp://x/', 'not a url', 'http://x/\n'],
    ],
  ];
  for (const [what, check, good, bad] of cases) {
    test(`${what}: accepted and refused`, () => {
      for (const value of good) assert.doesNotThrow(() => check(value), value);
      for (const value of bad) assert.throws(() => check(value), UnsafeValueError, JSON.stringify(value));
    });
  }
});
