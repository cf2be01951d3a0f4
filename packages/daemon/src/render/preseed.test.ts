/**
 * Preseed: goldens, checked by Debian's own `debconf-set-selections --checkonly` (package debconf), every line
 * against the d-i questions this renderer may answer (bookworm example-preseed), hostile values read back
 * exactly, and the late_command run in a sandbox.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RenderContext } from './context.ts';
import { UnsafeValueError, shQuote } from './escape.ts';
import { renderPreseed } from './preseed.ts';
import { compileTemplate } from './template.ts';
import {
  assertGolden,
  assertNothingPwned,
  assertShellSyntax,
  fullContext,
  hostile,
  hostileContext,
  minimalContext,
  run,
  sandbox,
  tempFile,
  testdata,
  tool,
  withDeployment,
} from './testdata/support.ts';

/**
 * Every question the built-in preseed answers, with its owner and debconf type, as the bookworm example-preseed
 * and the d-i templates declare them; `select` questions list the choices used here.
 */
const QUESTIONS: Record<string, { owner: string; type: string; choices?: readonly string[] }> = {
  'debian-installer/locale': { owner: 'd-i', type: 'string' },
  'keyboard-configuration/xkb-keymap': { owner: 'd-i', type: 'select', choices: ['us'] },
  'netcfg/choose_interface': { owner: 'd-i', type: 'select' },
  'netcfg/disable_autoconfig': { owner: 'd-i', type: 'boolean' },
  'netcfg/get_ipaddress': { owner: 'd-i', type: 'string' },
  'netcfg/get_netmask': { owner: 'd-i', type: 'string' },
  'netcfg/get_gateway': { owner: 'd-i', type: 'string' },
  'netcfg/no_default_route': { owner: 'd-i', type: 'boolean' },
  'netcfg/get_nameservers': { owner: 'd-i', type: 'string' },
  'netcfg/confirm_static': { owner: 'd-i', type: 'boolean' },
  'netcfg/get_hostname': { owner: 'd-i', type: 'string' },
  'netcfg/get_domain': { owner: 'd-i', type: 'string' },
  'netcfg/hostname': { owner: 'd-i', type: 'string' },
  'netcfg/wireless_wep': { owner: 'd-i', type: 'string' },
  'hw-detect/load_firmware': { owner: 'd-i', type: 'boolean' },
  'preseed/early_command': { owner: 'd-i', type: 'string' },
  'mirror/country': { owner: 'd-i', type: 'string' },
  'mirror/protocol': { owner: 'd-i', type: 'string' },
  'mirror/http/hostname': { owner: 'd-i', type: 'string' },
  'mirror/http/directory': { owner: 'd-i', type: 'string' },
  'mirror/http/proxy': { owner: 'd-i', type: 'string' },
  'mirror/https/hostname': { owner: 'd-i', type: 'string' },
  'mirror/https/directory': { owner: 'd-i', type: 'string' },
  'mirror/https/proxy': { owner: 'd-i', type: 'string' },
  'passwd/root-login': { owner: 'd-i', type: 'boolean' },
  'passwd/make-user': { owner: 'd-i', type: 'boolean' },
  'passwd/user-fullname': { owner: 'd-i', type: 'string' },
  'passwd/username': { owner: 'd-i', type: 'string' },
  'passwd/user-password-crypted': { owner: 'd-i', type: 'password' },
  'clock-setup/utc': { owner: 'd-i', type: 'boolean' },
  'time/zone': { owner: 'd-i', type: 'string' },
  'clock-setup/ntp': { owner: 'd-i', type: 'boolean' },
  'clock-setup/ntp-server': { owner: 'd-i', type: 'string' },
  'partman/early_command': { owner: 'd-i', type: 'string' },
  'partman-auto/disk': { owner: 'd-i', type: 'string' },
  'partman-auto/method': { owner: 'd-i', type: 'string' },
  'partman-auto-lvm/guided_size': { owner: 'd-i', type: 'string' },
  'partman-lvm/device_remove_lvm': { owner: 'd-i', type: 'boolean' },
  'partman-md/device_remove_md': { owner: 'd-i', type: 'boolean' },
  'partman-lvm/confirm': { owner: 'd-i', type: 'boolean' },
  'partman-lvm/confirm_nooverwrite': { owner: 'd-i', type: 'boolean' },
  'partman-auto/choose_recipe': { owner: 'd-i', type: 'select', choices: ['atomic', 'home', 'multi'] },
  'partman-efi/non_efi_system': { owner: 'd-i', type: 'boolean' },
  'partman-partitioning/choose_label': { owner: 'd-i', type: 'select', choices: ['gpt', 'msdos'] },
  'partman-partitioning/default_label': { owner: 'd-i', type: 'string' },
  'partman-partitioning/confirm_write_new_label': { owner: 'd-i', type: 'boolean' },
  'partman/choose_partition': { owner: 'd-i', type: 'select', choices: ['finish'] },
  'partman/confirm': { owner: 'd-i', type: 'boolean' },
  'partman/confirm_nooverwrite': { owner: 'd-i', type: 'boolean' },
  'tasksel/first': { owner: 'tasksel', type: 'multiselect' },
  'pkgsel/include': { owner: 'd-i', type: 'string' },
  'pkgsel/upgrade': { owner: 'd-i', type: 'select', choices: ['none', 'safe-upgrade', 'full-upgrade'] },
  'popularity-contest/participate': { owner: 'popularity-contest', type: 'boolean' },
  'grub-installer/only_debian': { owner: 'd-i', type: 'boolean' },
  'grub-installer/with_other_os': { owner: 'd-i', type: 'boolean' },
  'grub-installer/bootdev': { owner: 'd-i', type: 'string' },
  'grub-installer/force-efi-extra-removable': { owner: 'd-i', type: 'boolean' },
  'preseed/late_command': { owner: 'd-i', type: 'string' },
  'finish-install/reboot_in_progress': { owner: 'd-i', type: 'note' },
};

interface Answer {
  owner: string;
  type: string;
  value: string;
}

/**
 * Reads a preseed file the way debconf-set-selections does: a trailing backslash joins the next line, blank and
 * `#` lines are skipped, then `owner question type` and one separator before the value, which runs to the end.
 */
function parsePreseed(text: string): Map<string, Answer> {
  const answers = new Map<string, Answer>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] ?? '';
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + (lines[++i] ?? '');
    if (/^[ \t]*(#|$)/.test(line)) continue;
    const match = /^[ \t]*(\S+)[ \t]+(\S+)[ \t]+(\S+)(?:[ \t](.*))?$/.exec(line);
    assert.ok(match, `not a preseed line: ${JSON.stringify(line)}`);
    const [, owner = '', question = '', type = '', value = ''] = match;
    assert.ok(!answers.has(question), `${question} answered twice`);
    answers.set(question, { owner, type, value });
  }
  return answers;
}

/** debconf-set-selections --checkonly accepts it, and every answer is one this renderer is meant to give. */
function validate(text: string): Map<string, Answer> {
  const file = tempFile('preseed.cfg', text);
  try {
    const result = run(tool('debconf-set-selections', 'debconf'), ['--checkonly', file.path]);
    assert.equal(result.status, 0, `debconf-set-selections --checkonly failed:\n${result.stderr}`);
    assert.equal(result.stderr, '', `debconf-set-selections warned:\n${result.stderr}`);
  } finally {
    file.remove();
  }
  assert.ok(text.startsWith('#_preseed_V1\n'), 'the preseed format marker comes first');
  const answers = parsePreseed(text);
  for (const [question, answer] of answers) {
    const known = QUESTIONS[question];
    assert.ok(known, `unknown question ${question}`);
    assert.equal(answer.owner, known.owner, `${question}: owner`);
    assert.equal(answer.type, known.type, `${question}: type`);
    if (answer.type === 'boolean') assert.match(answer.value, /^(true|false)$/, `${question}: boolean`);
    if (known.choices) assert.ok(known.choices.includes(answer.value), `${question}: ${answer.value} not a choice`);
  }
  for (const command of ['preseed/early_command', 'partman/early_command', 'preseed/late_command']) {
    const answer = answers.get(command);
    if (answer) assertShellSyntax(answer.value, command);
  }
  return answers;
}

const debianMirror = 'http://mirror.example.com/debian';
const cases: [string, RenderContext][] = [
  ['preseed-static.cfg', fullContext(debianMirror)],
  ['preseed-dhcp.cfg', minimalContext()],
  ['preseed-hostile.cfg', hostileContext()],
];

describe('preseed', () => {
  for (const [golden, context] of cases) {
    test(`${golden}: matches the golden and passes debconf-set-selections --checkonly`, () => {
      const text = renderPreseed(context);
      assertGolden(golden, text);
      validate(text);
    });
  }

  test('answers what the deployment says', () => {
    const answers = validate(renderPreseed(fullContext('https://mirror.example.com/debian/')));
    const value = (question: string): string | undefined => answers.get(question)?.value;
    assert.equal(value('netcfg/choose_interface'), '52:54:00:12:34:56');
    assert.equal(value('netcfg/get_ipaddress'), '10.0.0.50');
    assert.equal(value('netcfg/get_nameservers'), '10.0.0.1 1.1.1.1');
    assert.equal(value('netcfg/hostname'), 'web1');
    assert.equal(value('netcfg/get_domain'), 'example.com');
    assert.equal(value('mirror/protocol'), 'https');
    assert.equal(value('mirror/https/hostname'), 'mirror.example.com');
    assert.equal(value('mirror/https/directory'), '/debian');
    assert.equal(value('mirror/https/proxy'), 'http://proxy.example.com:3128');
    assert.equal(value('passwd/username'), 'ops');
    assert.equal(value('passwd/user-password-crypted'), fullContext('').deployment.passwordHash);
    assert.equal(value('clock-setup/ntp-server'), '0.pool.ntp.org');
    assert.equal(value('partman-auto/disk'), '/dev/sda');
    assert.equal(value('grub-installer/bootdev'), '/dev/sda');
    assert.equal(value('pkgsel/include'), 'curl vim systemd-timesyncd');
    assert.equal(value('grub-installer/force-efi-extra-removable'), 'true');
  });

  test('defaults: deb.debian.org, DHCP, the first disk, a locked password', () => {
    const answers = validate(renderPreseed(minimalContext()));
    assert.equal(answers.get('mirror/http/hostname')?.value, 'deb.debian.org');
    assert.equal(answers.get('mirror/http/directory')?.value, '/debian');
    assert.equal(answers.get('netcfg/disable_autoconfig'), undefined);
    assert.equal(answers.get('partman-auto/disk'), undefined);
    assert.match(answers.get('partman/early_command')?.value ?? '', /list-devices disk/);
    assert.equal(answers.get('passwd/user-password-crypted')?.value, '*');
  });

  test('hostile values stay inert: verbatim answers, single-quoted shell words', () => {
    const text = renderPreseed(hostileContext());
    const answers = validate(text);
    assert.equal(answers.get('netcfg/hostname')?.value, hostile.hostname);
    assert.equal(answers.get('netcfg/get_hostname')?.value, hostile.hostname);
    assert.equal(answers.get('netcfg/get_domain')?.value, hostile.domain);
    assert.equal(answers.get('passwd/user-password-crypted')?.value, hostile.passwordHash);
    assert.equal(answers.get('mirror/http/proxy')?.value, hostile.proxy);
    const late = answers.get('preseed/late_command')?.value ?? '';
    for (const value of [...hostile.sshKeys, hostile.phoneHome, hostile.failed]) {
      assert.ok(late.includes(shQuote(value)), `single-quoted in late_command: ${value}`);
    }
  });

  test('the hostile late_command, run: keys written verbatim, smelt called with the exact URL, nothing else', () => {
    const late = parsePreseed(renderPreseed(hostileContext())).get('preseed/late_command')?.value ?? '';
    const result = sandbox(['sh', '-c', late]);
    assert.equal(result.status, 0, result.stderr);
    assertNothingPwned(result, 'late_command');
    assert.equal(result.files.get('target/home/ops/.ssh/authorized_keys'), `${hostile.sshKeys.join('\n')}\n`);
    assert.equal(
      result.files.get('target/etc/systemd/timesyncd.conf.d/smelt.conf'),
      '[Time]\nNTP=0.pool.ntp.org 10.0.0.1\n',
    );
    assert.deepEqual(result.calls, [
      ['in-target', 'chown', '-R', 'ops:', '/home/ops/.ssh'],
      ['wget', '-Y', 'off', '-q', '-O', '/dev/null', '--post-data', '', hostile.phoneHome],
    ]);
  });

  test('keys-only users get passwordless sudo; the run writes the sudoers line', () => {
    const late = parsePreseed(renderPreseed(minimalContext())).get('preseed/late_command')?.value ?? '';
    const result = sandbox(['sh', '-c', late]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.files.get('target/etc/sudoers.d/90-smelt'), 'smelt ALL=(ALL) NOPASSWD:ALL\n');
  });

  test('line breaks, control characters and a trailing backslash are refused, naming the field', () => {
    for (const hostname of ['web\n1', 'web\r1', 'web\u00851', 'web1\\', 'web\u00001']) {
      assert.throws(
        () => renderPreseed(withDeployment(minimalContext(), { hostname })),
        (error: unknown) => error instanceof UnsafeValueError && error.what === 'netcfg/get_hostname',
        JSON.stringify(hostname),
      );
    }
    assert.throws(
      () => renderPreseed(withDeployment(minimalContext(), { sshKeys: ['ssh-ed25519 AAAA a\nssh-rsa BBBB evil'] })),
      UnsafeValueError,
    );
  });

  test('an operator template renders to a valid preseed', () => {
    const source = readFileSync(join(testdata, 'operator.preseed.tmpl'), 'utf8');
    const text = compileTemplate(source, 'operator.preseed.tmpl', 'preseed').render(hostileContext());
    assertGolden('operator.preseed.cfg', text);
    const answers = validate(text);
    assert.equal(answers.get('netcfg/hostname')?.value, hostile.hostname);
    const late = answers.get('preseed/late_command')?.value ?? '';
    const result = sandbox(['sh', '-c', late]);
    assert.equal(result.status, 0, result.stderr);
    assertNothingPwned(result, 'operator late_command');
    assert.equal(result.files.get('target/home/ops/.ssh/authorized_keys'), `${hostile.sshKeys.join('\n')}\n`);
    assert.deepEqual(result.calls.at(-1), ['wget', '-q', '-O', '/dev/null', '--post-data', '', hostile.phoneHome]);
  });
});
