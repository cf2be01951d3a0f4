/**
 * Shared by the render tests: the deployments the goldens are made from, the golden-file check, the real tools
 * the outputs are validated with (each one fails the test, naming its Debian package, when missing), and a
 * throwaway root to run the generated shell in.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { RenderContext } from '../context.ts';

export const testdata = import.meta.dirname;

// ---- Deployments ------------------------------------------------------------------------------------------------

/** Everything set: static address, domain, two DNS and NTP servers, packages, keys, a password, a disk, UEFI. */
export function fullContext(mirror: string): RenderContext {
  return {
    baseUrl: 'http://10.0.0.2',
    machine: { mac: '52:54:00:12:34:56', arch: 'x86_64-efi', firmware: 'uefi' },
    deployment: {
      name: 'web1',
      type: 'preseed',
      hostname: 'web1',
      domain: 'example.com',
      network: {
        mode: 'static',
        address: '10.0.0.50',
        netmask: '255.255.255.0',
        prefix: 24,
        gateway: '10.0.0.1',
        dns: ['10.0.0.1', '1.1.1.1'],
      },
      ntp: ['0.pool.ntp.org', '10.0.0.1'],
      packages: ['curl', 'vim'],
      sshKeys: [
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk5cTBgMWRjbmFwdHJvb3RrZXkxMjM0NTY3ODkwYWJj ops@example.com',
        'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDsmeltTestKey ci',
      ],
      user: 'ops',
      passwordHash:
        '$6$rounds=4096$saltsalt$3MEaFzRlHxQ5cLcW2wp2QJ6c1c2hVgAGZJKWq3cM2J0dtVf0a8KvXgIhP6qqY2VpbQZ8.8sY7R9CTV5qJXk0G/',
      disk: '/dev/sda',
      mirror,
      proxy: 'http://proxy.example.com:3128',
      vars: { rack: 'r12' },
    },
    boot: {
      name: 'installer',
      kernelUrl: 'http://10.0.0.2/boot/installer/linux',
      initrdUrls: ['http://10.0.0.2/boot/installer/initrd.gz'],
      cmdline: 'auto=true priority=critical',
      isoUrl: undefined,
    },
    urls: {
      answerFile: 'http://10.0.0.2/answers/52-54-00-12-34-56/tok3n/',
      phoneHome: 'http://10.0.0.2/hooks/52-54-00-12-34-56/tok3n/installed',
      failed: 'http://10.0.0.2/hooks/52-54-00-12-34-56/tok3n/failed',
    },
  };
}

/** The least a deployment can say: DHCP, no disk, mirror, NTP, packages or password, one key, BIOS. */
export function minimalContext(): RenderContext {
  const context = fullContext('http://unused.example.com');
  return {
    ...context,
    machine: { mac: '52:54:00:ab:cd:ef', arch: undefined, firmware: 'bios' },
    deployment: {
      name: 'db2',
      type: 'preseed',
      hostname: 'db2',
      domain: undefined,
      network: { mode: 'dhcp', dns: [] },
      ntp: [],
      packages: [],
      sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMinimalKey smelt@ci'],
      user: 'smelt',
      passwordHash: undefined,
      disk: undefined,
      mirror: undefined,
      proxy: undefined,
      vars: {},
    },
    urls: {
      answerFile: 'http://10.0.0.2/answers/52-54-00-ab-cd-ef/t0/',
      phoneHome: 'http://10.0.0.2/hooks/52-54-00-ab-cd-ef/t0/installed',
      failed: 'http://10.0.0.2/hooks/52-54-00-ab-cd-ef/t0/failed',
    },
  };
}

/**
 * Values written to do harm: shell substitutions and separators, both quotes, a template tag, YAML indicators
 * (`- `, `: `, ` #`), YAML 1.1's `on`, a trailing backslash (a preseed continuation), non-ASCII. Every shell
 * payload creates a file whose name contains PWNED, which the sandboxed runs look for. No line breaks here:
 * the line formats refuse those (tested apart).
 */
export const hostile = {
  hostname: '- web 1: #; rm -rf / $(touch /PWNED-host) `touch /PWNED-tick` \'sq\' "dq" {{ urls.failed }} ü✓ 🚀',
  domain: 'on',
  passwordHash: '$6$x\'y$(touch /PWNED-hash)`id`"z',
  sshKeys: [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 hostile'; touch /PWNED-key; echo '",
    'ssh-rsa AAAAB3NzaC1yc2E $(touch /PWNED-key2) {{ deployment.user }} \\',
  ],
  mirror: 'http://mirror.example.com/os/$(touch /PWNED-mirror)',
  proxy: "http://proxy.example.com:3128/#'$(touch /PWNED-proxy)",
  phoneHome: "http://10.0.0.2/hooks/52-54-00-12-34-56/t'o`touch /PWNED-url`$(touch /PWNED-url2);k/installed",
  failed: 'http://10.0.0.2/hooks/52-54-00-12-34-56/t\'o"k $(touch /PWNED-fail) & /failed',
};

export function hostileContext(): RenderContext {
  const context = fullContext(hostile.mirror);
  return {
    ...context,
    deployment: {
      ...context.deployment,
      hostname: hostile.hostname,
      domain: hostile.domain,
      passwordHash: hostile.passwordHash,
      sshKeys: hostile.sshKeys,
      proxy: hostile.proxy,
      vars: { rack: 'r12', note: '{{ urls.phoneHome }}' },
    },
    urls: { ...context.urls, phoneHome: hostile.phoneHome, failed: hostile.failed },
  };
}

/** A copy of `context` with deployment fields replaced. */
export function withDeployment(context: RenderContext, fields: Partial<RenderContext['deployment']>): RenderContext {
  return { ...context, deployment: { ...context.deployment, ...fields } };
}

// ---- Goldens ----------------------------------------------------------------------------------------------------

/** Compares byte for byte with testdata/<file>; UPDATE_GOLDEN=1 rewrites the file instead. */
export function assertGolden(file: string, actual: string): void {
  const path = join(testdata, file);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) assert.fail(`${file} is missing: run the test with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${file} differs (UPDATE_GOLDEN=1 rewrites it after review)`);
}

// ---- Real tools -------------------------------------------------------------------------------------------------

/** The Debian system Python (a pyenv python3 earlier in PATH would lack the Debian modules). */
export const PYTHON = '/usr/bin/python3';

/** The absolute path of `command`, or a failure that names the Debian package to install. */
export function tool(command: string, debianPackage: string): string {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    const path = join(dir, command);
    if (existsSync(path)) return path;
  }
  return assert.fail(`${command} is not installed: apt-get install ${debianPackage}`);
}

export function run(
  command: string,
  args: readonly string[],
  options: { input?: string; cwd?: string } = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, ...options });
  if (result.error) throw result.error;
  return result;
}

let pythonChecked = false;

/** Python with the modules cloud-init itself uses (PyYAML, jsonschema); fails naming the packages if absent. */
export function python(script: string, args: readonly string[], input?: string): string {
  if (!pythonChecked) {
    tool('python3', 'python3');
    const check = run(PYTHON, ['-c', 'import yaml, jsonschema']);
    if (check.status !== 0) assert.fail('Python modules missing: apt-get install python3-yaml python3-jsonschema');
    pythonChecked = true;
  }
  const result = run(PYTHON, ['-c', script, ...args], input === undefined ? {} : { input });
  assert.equal(result.status, 0, `python failed: ${result.stderr}`);
  return result.stdout;
}

/** A file in a fresh temporary directory, removed by the returned function. */
export function tempFile(name: string, content: string): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-render-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return {
    path,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `sh -n` with both shells an installer may use: dash (Debian's /bin/sh, like d-i's ash) and bash (RHEL's). */
export function assertShellSyntax(script: string, what: string): void {
  for (const [shell, pkg] of [
    ['dash', 'dash'],
    ['bash', 'bash'],
  ] as const) {
    const result = run(tool(shell, pkg), ['-n'], { input: script });
    assert.equal(result.status, 0, `${what}: ${shell} -n: ${result.stderr}`);
  }
}

// ---- Sandbox ----------------------------------------------------------------------------------------------------

/** Stand-ins for the network and installer commands: they record their argv (and any `@-` stdin) and succeed. */
const STUB = `#!/bin/sh
{ printf '%s\\0' "\${0##*/}" "$@"; printf '\\036'; } >> /calls
for arg in "$@"; do if [ "$arg" = @- ]; then cat >> /stdin; fi; done
exit 0
`;
const STUBS = ['wget', 'curl', 'in-target'];

export interface SandboxRun {
  status: number | null;
  stderr: string;
  /** Each stub call: its name, then its arguments. */
  calls: string[][];
  /** Every regular file the run left, by path inside the sandbox. */
  files: Map<string, string>;
}

/**
 * Runs `argv` as root in a private mount namespace, chrooted into a fresh directory that sees the host's /usr
 * read-only, an empty /target and /etc, and stubs for wget, curl and in-target first in PATH. Nothing the
 * command does reaches the host; what it wrote is returned.
 */
export function sandbox(argv: readonly string[]): SandboxRun {
  const unshare = tool('unshare', 'util-linux');
  tool('chroot', 'coreutils');
  if (process.getuid?.() !== 0) assert.fail('the shell sandbox (unshare --mount, chroot) needs root');
  const root = mkdtempSync(join(tmpdir(), 'smelt-sandbox-'));
  try {
    for (const dir of ['usr', 'stub', 'tmp', 'dev', 'etc/sudoers.d', 'target/etc/sudoers.d']) {
      mkdirSync(join(root, dir), { recursive: true });
    }
    for (const link of ['bin', 'sbin', 'lib', 'lib64']) {
      if (existsSync(`/usr/${link}`)) symlinkSync(`usr/${link}`, join(root, link));
    }
    writeFileSync(join(root, 'dev/null'), '');
    for (const stub of STUBS) writeFileSync(join(root, 'stub', stub), STUB, { mode: 0o755 });
    const setup =
      'set -e; r=$1; shift; mount --bind /usr "$r/usr"; mount -o remount,bind,ro "$r/usr"; ' +
      'mount --bind /dev/null "$r/dev/null"; exec chroot "$r" /usr/bin/env -i PATH=/stub:/usr/bin:/usr/sbin "$@"';
    const result = run(unshare, [
      '--mount',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      setup,
      'sandbox',
      root,
      ...argv,
    ]);
    const files = new Map<string, string>();
    collect(root, root, files);
    const calls = (files.get('calls') ?? '')
      .split('\x1e')
      .filter((record) => record !== '')
      .map((record) => record.split('\0').slice(0, -1));
    files.delete('calls');
    return { status: result.status, stderr: result.stderr, calls, files };
  } finally {
    // The mounts ended with the namespace; never delete through one that somehow survived.
    if (readdirSync(join(root, 'usr')).length === 0) rmSync(root, { recursive: true, force: true });
  }
}

function collect(root: string, dir: string, files: Map<string, string>): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const rel = relative(root, path);
    if (['usr', 'dev', 'stub'].includes(rel)) continue;
    const stat = lstatSync(path);
    if (stat.isDirectory()) collect(root, path, files);
    else if (stat.isFile()) files.set(rel, readFileSync(path, 'utf8'));
  }
}

/** No file or directory anywhere in the sandbox was named by a payload. */
export function assertNothingPwned(runResult: SandboxRun, what: string): void {
  const pwned = [...runResult.files.keys()].filter((path) => path.includes('PWNED'));
  assert.deepEqual(pwned, [], `${what}: a hostile value was executed`);
}
