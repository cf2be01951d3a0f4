/**
 * Kickstart: Debian ships no kickstart validator (pykickstart is not packaged), so every line is checked against
 * the commands, options and sections below, taken from the pykickstart reference
 * (https://pykickstart.readthedocs.io/en/latest/kickstart-docs.html; Fedora 33+/RHEL 9 syntax). Command lines are
 * split by Python's shlex, as pykickstart does; script sections must pass `sh -n` in dash and bash.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RenderContext } from './context.ts';
import { UnsafeValueError } from './escape.ts';
import { renderKickstart } from './kickstart.ts';
import { compileTemplate } from './template.ts';
import {
  assertGolden,
  assertNothingPwned,
  assertShellSyntax,
  fullContext,
  hostile,
  hostileContext,
  minimalContext,
  python,
  sandbox,
  testdata,
  withDeployment,
} from './testdata/support.ts';

/** An option takes no value (`flag`), any value, or one of a list. */
type Option = 'flag' | 'value' | readonly string[];
interface Syntax {
  options: Record<string, Option>;
  /** Positional arguments: least and most. */
  args: readonly [number, number];
  required?: readonly string[];
  /** May appear more than once. */
  repeat?: boolean;
}

const yesNo = ['yes', 'no', 'on', 'off', 'true', 'false', '1', '0'];
const script: Record<string, Option> = {
  '--interpreter': 'value',
  '--erroronfail': 'flag',
  '--log': 'value',
  '--logfile': 'value',
};

/** The commands this renderer may write, with every option the reference gives them (pykickstart F33+). */
const COMMANDS: Record<string, Syntax> = {
  text: { options: { '--non-interactive': 'flag' }, args: [0, 0] },
  lang: { options: { '--addsupport': 'value' }, args: [1, 1] },
  keyboard: { options: { '--vckeymap': 'value', '--xlayouts': 'value', '--switch': 'value' }, args: [0, 1] },
  timezone: {
    options: { '--utc': 'flag', '--isUtc': 'flag', '--nontp': 'flag', '--ntpservers': 'value' },
    args: [0, 1],
  },
  timesource: {
    options: { '--ntp-server': 'value', '--ntp-pool': 'value', '--ntp-disable': 'flag', '--nts': 'flag' },
    args: [0, 0],
    repeat: true,
  },
  network: {
    options: {
      '--bootproto': ['dhcp', 'bootp', 'static', 'query', 'ibft'],
      '--device': 'value',
      '--ip': 'value',
      '--netmask': 'value',
      '--gateway': 'value',
      '--nameserver': 'value',
      '--hostname': 'value',
      '--activate': 'flag',
      '--no-activate': 'flag',
      '--onboot': yesNo,
      '--nodns': 'flag',
      '--noipv4': 'flag',
      '--noipv6': 'flag',
      '--ipv6': 'value',
      '--ipv6gateway': 'value',
      '--mtu': 'value',
      '--nodefroute': 'flag',
      '--ethtool': 'value',
      '--vlanid': 'value',
      '--interfacename': 'value',
    },
    args: [0, 0],
    repeat: true,
  },
  url: {
    options: {
      '--url': 'value',
      '--mirrorlist': 'value',
      '--metalink': 'value',
      '--proxy': 'value',
      '--noverifyssl': 'flag',
    },
    args: [0, 0],
  },
  rootpw: {
    options: { '--iscrypted': 'flag', '--plaintext': 'flag', '--lock': 'flag', '--allow-ssh': 'flag' },
    args: [0, 1],
  },
  user: {
    options: {
      '--name': 'value',
      '--password': 'value',
      '--iscrypted': 'flag',
      '--plaintext': 'flag',
      '--lock': 'flag',
      '--groups': 'value',
      '--homedir': 'value',
      '--shell': 'value',
      '--uid': 'value',
      '--gid': 'value',
      '--gecos': 'value',
    },
    args: [0, 0],
    required: ['--name'],
    repeat: true,
  },
  sshkey: { options: { '--username': 'value' }, args: [1, 1], required: ['--username'], repeat: true },
  firstboot: {
    options: {
      '--enable': 'flag',
      '--enabled': 'flag',
      '--disable': 'flag',
      '--disabled': 'flag',
      '--reconfig': 'flag',
    },
    args: [0, 0],
  },
  zerombr: { options: {}, args: [0, 0] },
  ignoredisk: { options: { '--drives': 'value', '--only-use': 'value', '--interactive': 'flag' }, args: [0, 0] },
  clearpart: {
    options: {
      '--all': 'flag',
      '--drives': 'value',
      '--initlabel': 'flag',
      '--linux': 'flag',
      '--none': 'flag',
      '--list': 'value',
      '--disklabel': 'value',
    },
    args: [0, 0],
  },
  bootloader: {
    options: {
      '--append': 'value',
      '--location': ['mbr', 'partition', 'none', 'boot'],
      '--password': 'value',
      '--iscrypted': 'flag',
      '--timeout': 'value',
      '--boot-drive': 'value',
      '--driveorder': 'value',
      '--leavebootorder': 'flag',
      '--disabled': 'flag',
      '--nombr': 'flag',
    },
    args: [0, 0],
  },
  autopart: {
    options: {
      '--type': ['lvm', 'btrfs', 'partition', 'plain', 'thinp'],
      '--fstype': 'value',
      '--nolvm': 'flag',
      '--encrypted': 'flag',
      '--passphrase': 'value',
      '--cipher': 'value',
      '--nohome': 'flag',
      '--noboot': 'flag',
      '--noswap': 'flag',
    },
    args: [0, 0],
  },
  reboot: { options: { '--eject': 'flag', '--kexec': 'flag' }, args: [0, 0] },
  '%include': { options: {}, args: [1, 1], repeat: true },
};

/** Sections: header options, and what their body holds. */
const SECTIONS: Record<string, { options: Record<string, Option>; body: 'packages' | 'script' }> = {
  '%packages': {
    options: {
      '--ignoremissing': 'flag',
      '--excludedocs': 'flag',
      '--nocore': 'flag',
      '--multilib': 'flag',
      '--inst-langs': 'value',
      '--excludeWeakdeps': 'flag',
      '--default': 'flag',
    },
    body: 'packages',
  },
  '%pre': { options: script, body: 'script' },
  '%pre-install': { options: script, body: 'script' },
  '%post': { options: { ...script, '--nochroot': 'flag' }, body: 'script' },
  '%onerror': { options: script, body: 'script' },
  '%traceback': { options: script, body: 'script' },
};

/** What an unattended install cannot do without. */
const REQUIRED = ['text', 'lang', 'keyboard', 'timezone', 'rootpw', 'autopart', 'reboot', '%packages'];

/** Python's shlex, exactly as pykickstart splits command lines. */
function shlexSplit(lines: readonly string[]): string[][] {
  const out = python(
    'import json, shlex, sys\nprint(json.dumps([shlex.split(line, comments=True) for line in json.load(sys.stdin)]))',
    [],
    JSON.stringify(lines),
  );
  return JSON.parse(out) as string[][];
}

interface Kickstart {
  /** Command (or section header) name to its token lists, in order. */
  commands: Map<string, string[][]>;
  /** Sections in order: header tokens and body lines. */
  sections: { header: string[]; body: string[] }[];
}

/** Reads a kickstart and checks each line against the tables; fails on anything unknown. */
function validate(text: string): Kickstart {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  // First pass: which lines are commands or section headers, and which belong to a section body.
  const heads: { line: number; text: string }[] = [];
  const bodies: string[][] = [];
  let inSection = false;
  for (const [index, line] of lines.entries()) {
    if (inSection) {
      if (line.trim() === '%end') inSection = false;
      else if (line.trim().startsWith('%')) assert.fail(`line ${index + 1}: ${line} inside a section (missing %end?)`);
      else bodies.at(-1)?.push(line);
      continue;
    }
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    heads.push({ line: index + 1, text: line });
    const word = line.trim().split(/\s/)[0] ?? '';
    if (word in SECTIONS) {
      inSection = true;
      bodies.push([]);
    }
  }
  assert.ok(!inSection, 'the last section has no %end');

  const tokens = shlexSplit(heads.map((head) => head.text));
  const commands = new Map<string, string[][]>();
  const sections: Kickstart['sections'] = [];
  heads.forEach((head, i) => {
    const [name = '', ...args] = tokens[i] ?? [];
    const where = `line ${head.line} (${name})`;
    const section = SECTIONS[name];
    const syntax: Syntax | undefined = section ? { options: section.options, args: [0, 0] } : COMMANDS[name];
    assert.ok(syntax, `${where}: unknown command`);
    checkOptions(where, syntax, args);
    const seen = commands.get(name) ?? [];
    if (!section) assert.ok(syntax.repeat === true || seen.length === 0, `${where}: given twice`);
    commands.set(name, [...seen, args]);
    if (section) sections.push({ header: [name, ...args], body: bodies[sections.length] ?? [] });
  });
  for (const name of REQUIRED) assert.ok(commands.has(name), `missing ${name}`);

  for (const { header, body } of sections) {
    if (SECTIONS[header[0] ?? '']?.body === 'script') assertShellSyntax(body.join('\n'), header.join(' '));
    else {
      for (const line of body) assert.match(line, /^-?@?\^?[A-Za-z0-9][A-Za-z0-9@._+:~=-]*$/, 'a %packages entry');
    }
  }
  return { commands, sections };
}

function checkOptions(where: string, syntax: Syntax, args: readonly string[]): void {
  const positional: string[] = [];
  const given = new Set<string>();
  for (const arg of args) {
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    const option = syntax.options[name];
    assert.ok(option, `${where}: unknown option ${name}`);
    if (option === 'flag') assert.equal(value, undefined, `${where}: ${name} takes no value`);
    else {
      assert.ok(value !== undefined && value !== '', `${where}: ${name} needs a value (written --opt=value)`);
      if (option !== 'value')
        assert.ok(option.includes(value), `${where}: ${name}=${value} not one of ${option.join(', ')}`);
    }
    given.add(name);
  }
  const [least, most] = syntax.args;
  assert.ok(positional.length >= least && positional.length <= most, `${where}: ${positional.length} arguments`);
  for (const name of syntax.required ?? []) assert.ok(given.has(name), `${where}: ${name} is required`);
}

/** The value of `--name=` in a command's tokens. */
function option(tokens: readonly string[] | undefined, name: string): string | undefined {
  const prefix = `${name}=`;
  return tokens?.find((token) => token.startsWith(prefix))?.slice(prefix.length);
}

function sectionBody(kickstart: Kickstart, ...header: string[]): string {
  const section = kickstart.sections.find((s) => s.header.join(' ').startsWith(header.join(' ')));
  assert.ok(section, `no ${header.join(' ')} section`);
  return section.body.join('\n');
}

const rockyMirror = 'http://mirror.example.com/rocky/9/BaseOS/$basearch/os/';
const cases: [string, RenderContext][] = [
  ['kickstart-static.ks', fullContext(rockyMirror)],
  ['kickstart-dhcp.ks', minimalContext()],
  ['kickstart-hostile.ks', hostileContext()],
];

describe('kickstart', () => {
  for (const [golden, context] of cases) {
    test(`${golden}: matches the golden, every line known to the kickstart reference`, () => {
      const text = renderKickstart(context);
      assertGolden(golden, text);
      validate(text);
    });
  }

  test('says what the deployment says', () => {
    const ks = validate(renderKickstart(fullContext(rockyMirror)));
    const network = ks.commands.get('network')?.[0];
    assert.equal(option(network, '--device'), '52:54:00:12:34:56');
    assert.equal(option(network, '--bootproto'), 'static');
    assert.equal(option(network, '--ip'), '10.0.0.50');
    assert.equal(option(network, '--gateway'), '10.0.0.1');
    assert.equal(option(network, '--nameserver'), '10.0.0.1,1.1.1.1');
    assert.equal(option(network, '--hostname'), 'web1.example.com');
    assert.equal(option(ks.commands.get('url')?.[0], '--url'), rockyMirror);
    assert.equal(option(ks.commands.get('url')?.[0], '--proxy'), 'http://proxy.example.com:3128');
    assert.deepEqual(
      ks.commands.get('timesource')?.map((t) => option(t, '--ntp-server')),
      ['0.pool.ntp.org', '10.0.0.1'],
    );
    assert.equal(option(ks.commands.get('user')?.[0], '--password'), fullContext('').deployment.passwordHash);
    assert.deepEqual(
      ks.commands.get('sshkey')?.map((t) => t.at(-1)),
      fullContext('').deployment.sshKeys,
    );
    assert.equal(option(ks.commands.get('clearpart')?.[0], '--drives'), 'sda');
    assert.equal(option(ks.commands.get('bootloader')?.[0], '--boot-drive'), 'sda');
    assert.equal(sectionBody(ks, '%packages'), '@^minimal-environment\ncurl\nvim');
    assert.ok(!ks.commands.has('%include'));
  });

  test('no disk: %pre picks the first disk and %include reads what it wrote', () => {
    const ks = validate(renderKickstart(minimalContext()));
    assert.deepEqual(ks.commands.get('%include'), [['/tmp/smelt-disk.ks']]);
    assert.match(sectionBody(ks, '%pre'), /> \/tmp\/smelt-disk\.ks$/);
    assert.deepEqual(ks.commands.get('user'), [['--name=smelt', '--groups=wheel', '--lock']]);
    assert.equal(option(ks.commands.get('network')?.[0], '--bootproto'), 'dhcp');
  });

  test('hostile values come back from shlex exactly as given', () => {
    const ks = validate(renderKickstart(hostileContext()));
    assert.equal(option(ks.commands.get('network')?.[0], '--hostname'), `${hostile.hostname}.${hostile.domain}`);
    assert.equal(option(ks.commands.get('user')?.[0], '--password'), hostile.passwordHash);
    assert.equal(option(ks.commands.get('url')?.[0], '--url'), hostile.mirror);
    assert.equal(option(ks.commands.get('url')?.[0], '--proxy'), hostile.proxy);
    assert.deepEqual(
      ks.commands.get('sshkey')?.map((t) => t.at(-1)),
      hostile.sshKeys,
    );
  });

  test('the hostile %post and %onerror, run: smelt called with the exact URLs, nothing else', () => {
    const ks = validate(renderKickstart(hostileContext()));
    const post = sandbox(['sh', '-c', sectionBody(ks, '%post', '--nochroot')]);
    assert.equal(post.status, 0, post.stderr);
    assertNothingPwned(post, '%post');
    const curl = ['curl', '-fsS', '--noproxy', '*', '--retry', '5', '-o', '/dev/null'];
    assert.deepEqual(post.calls, [[...curl, '-d', '', hostile.phoneHome]]);
    const failed = sandbox(['sh', '-c', sectionBody(ks, '%onerror')]);
    assert.equal(failed.status, 0, failed.stderr);
    assertNothingPwned(failed, '%onerror');
    assert.deepEqual(failed.calls, [
      [...curl, '-H', 'Content-Type: text/plain', '--data-binary', '@-', hostile.failed],
    ]);
  });

  test('keys-only users get passwordless sudo; the chroot %post, run, writes it', () => {
    const ks = validate(renderKickstart(minimalContext()));
    const post = sandbox(['sh', '-c', sectionBody(ks, '%post', '--log=/root/smelt-post.log')]);
    assert.equal(post.status, 0, post.stderr);
    assert.equal(post.files.get('etc/sudoers.d/90-smelt'), 'smelt ALL=(ALL) NOPASSWD:ALL\n');
  });

  test('line breaks are refused: a value can never close a section or start a command', () => {
    for (const hostname of ['web\n%end\nrootpw x', 'web\r1', 'web\u20281', 'web\u000b1', 'web\u001c1']) {
      assert.throws(
        () => renderKickstart(withDeployment(minimalContext(), { hostname })),
        (error: unknown) => error instanceof UnsafeValueError && error.what === 'hostname',
        JSON.stringify(hostname),
      );
    }
    assert.throws(
      () => renderKickstart(withDeployment(minimalContext(), { sshKeys: ['ssh-rsa A\n%end'] })),
      UnsafeValueError,
    );
  });

  test('the checker itself rejects what anaconda would', () => {
    const good = renderKickstart(minimalContext());
    const bad: [string, string][] = [
      [good.replace('text\n', 'txet\n'), 'unknown command'],
      [good.replace('--bootproto=dhcp', '--bootproto=dhcp4'), 'not one of'],
      [good.replace('autopart --type=lvm', 'autopart --type=lvm --wipe'), 'unknown option --wipe'],
      [good.replace('zerombr', 'zerombr --all'), 'unknown option --all'],
      [good.replace('firstboot --disable', 'firstboot --disable=yes'), 'takes no value'],
      [good.replace('%end\n', ''), 'inside a section'],
      [good.replace('rootpw --lock\n', ''), 'missing rootpw'],
      [good.replace('reboot', 'reboot\nreboot'), 'given twice'],
      [good.replace('"$disk" > /tmp', '"$disk > /tmp'), 'dash -n'],
    ];
    for (const [text, message] of bad) assert.throws(() => validate(text), new RegExp(message), message);
  });

  test('an operator template renders to a valid kickstart', () => {
    const source = readFileSync(join(testdata, 'operator.ks.tmpl'), 'utf8');
    const text = compileTemplate(source, 'operator.ks.tmpl', 'kickstart').render(hostileContext());
    assertGolden('operator.ks', text);
    const ks = validate(text);
    assert.equal(option(ks.commands.get('network')?.[0], '--hostname'), hostile.hostname);
    assert.deepEqual(
      ks.commands.get('sshkey')?.map((t) => t.at(-1)),
      hostile.sshKeys,
    );
    const post = sandbox(['sh', '-c', sectionBody(ks, '%post')]);
    assertNothingPwned(post, 'operator %post');
    assert.deepEqual(post.calls, [['curl', '-fsS', '-d', '', hostile.phoneHome]]);
  });
});
