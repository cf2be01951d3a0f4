/**
 * The machine lifecycle end to end, driven only through the real smeltctl, with curl as the machine: a free
 * machine is held by its iPXE script, `smeltctl deploy` turns the same URL into the installer, the installer's
 * phone-home (token from the script) makes it deployed, and its next boot is told to boot the local disk;
 * release, reinstall, a wrong token, events and --watch along the way.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { smeltctlBin } from '../harness/paths.ts';
import { runOk } from '../harness/process.ts';
import { smeltctl } from '../harness/smeltctl.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const dir = tempDir('smelt-lifecycle-');
const mac = '52:54:00:5e:00:01';
const script = () => `http://${http().host}:${String(http().port)}/boot/52-54-00-5e-00-01.ipxe`;
let daemon: RunningSmeltd | undefined;
let env: Record<string, string> = {};

function running(): RunningSmeltd {
  if (!daemon) throw new Error('smeltd did not start');
  return daemon;
}
function http(): { host: string; port: number } {
  const address = running().http;
  if (!address) throw new Error('no "http listening" line');
  return address;
}

async function ok(args: string[]): Promise<string> {
  const result = await smeltctl(args, env);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}`);
  return result.stdout;
}

/** What the machine's firmware would fetch: curl, like iPXE, with no token. */
async function curl(url: string, ...args: string[]): Promise<string> {
  return runOk('curl', ['-sS', '--fail-with-body', ...args, url]);
}

before(async () => {
  writeFileSync(join(dir, 'vmlinuz'), 'kernel image bytes');
  writeFileSync(join(dir, 'initrd.gz'), 'initrd image bytes');
  daemon = await startSmeltd({ dataDir: join(dir, 'data'), config: { lifecycle: { pollSeconds: 3 } } });
  env = { SMELT_SERVER: running().url, SMELT_TOKEN: running().token, SMELTCTL_CONFIG: join(dir, 'ctl.json') };
  await ok([
    'create',
    'boot',
    '--name',
    'debian12',
    '--kernel',
    join(dir, 'vmlinuz'),
    '--initrd',
    join(dir, 'initrd.gz'),
    '--cmdline',
    'console=ttyS0',
  ]);
});
after(async () => {
  await daemon?.stop();
  removeDir(dir);
});

test('free → held → deploy → installer → phone-home → local disk → reinstall → release', async () => {
  // An unknown machine is held: the script polls itself every pollSeconds.
  const held = await curl(script());
  assert.match(held, /^#!ipxe\n/);
  assert.match(held, /is free; it boots as soon as it is deployed/);
  assert.match(held, /sleep 3\nchain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\/52-54-00-5e-00-01\.ipxe/);

  // A watcher started now sees the transitions as they happen.
  const watcher = spawn(smeltctlBin, ['get', 'events', '--watch', '--MAC', mac], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let watched = '';
  watcher.stdout.on('data', (chunk: Buffer) => (watched += chunk.toString()));

  try {
    const deployed = await ok([
      'deploy',
      '--MAC',
      mac,
      '--boot',
      'debian12',
      '--deploymentType',
      'preseed',
      '--hostname',
      'web1',
      '--address',
      '10.0.0.50',
    ]);
    assert.match(deployed, /52:54:00:5e:00:01 deployed as "web1"/);

    // The same URL now installs: kernel and initrd from the daemon, the answer file and phone-home carry a token.
    const installer = await curl(script());
    const kernelUrl = /^kernel (\S+)/m.exec(installer)?.[1];
    const initrdUrl = /^initrd (\S+)/m.exec(installer)?.[1];
    const answerUrl = / url=(\S+)/.exec(installer)?.[1];
    assert.ok(kernelUrl && initrdUrl && answerUrl, installer);
    assert.match(installer, / initrd=initrd\.gz console=ttyS0 auto=true priority=critical /);
    assert.equal(await curl(kernelUrl), 'kernel image bytes');
    assert.equal(await curl(initrdUrl, '-r', '7-11'), 'image');
    // Sites that chain to PXELINUX or GRUB get the same decision from the same tree, over TFTP.
    const tftp = running().tftp;
    assert.ok(tftp);
    const tftpBase = `tftp://${tftp.host}:${String(tftp.port)}`;
    const pxelinux = await curl(`${tftpBase}/pxelinux.cfg/01-52-54-00-5e-00-01`);
    assert.match(pxelinux, /^\s+KERNEL \/boots\/debian12\/kernel\/vmlinuz$/m);
    assert.match(
      pxelinux,
      /^\s+APPEND console=ttyS0 auto=true priority=critical url=http:\/\/127\.0\.0\.1:\d+\/answers\//m,
    );
    assert.equal(await curl(`${tftpBase}/boots/debian12/kernel/vmlinuz`), 'kernel image bytes');
    assert.match(
      await curl(`${tftpBase}/grub/grub.cfg-01-52-54-00-5e-00-01`),
      /linux '\/boots\/debian12\/kernel\/vmlinuz'/,
    );
    const token = /\/answers\/52-54-00-5e-00-01\/([^/]+)\/preseed\.cfg$/.exec(answerUrl)?.[1];
    assert.ok(token, answerUrl);
    const base = `http://${http().host}:${String(http().port)}`;
    // The answer file the installer fetches carries its phone-home; a wrong token gets nothing.
    const preseed = await curl(answerUrl);
    assert.match(preseed, /^d-i netcfg\/get_hostname string web1$/m);
    assert.ok(
      preseed.includes(`${base}/hooks/52-54-00-5e-00-01/${token}/installed`),
      'the phone-home URL is in the preseed',
    );
    const noToken = await runOk('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      answerUrl.replace(token, 'guess'),
    ]);
    assert.equal(noToken, '404');

    // A wrong token is refused and changes nothing.
    const wrong = await runOk('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      `${base}/hooks/52-54-00-5e-00-01/not-the-token/installed`,
    ]);
    assert.equal(wrong, '403');
    assert.match(await ok(['get', 'machines', mac]), /provisioning/);

    // The installer phones home: deployed; a second phone-home is harmless.
    assert.equal(await curl(`${base}/hooks/52-54-00-5e-00-01/${token}/installed`, '-X', 'POST'), 'deployed\n');
    assert.equal(await curl(`${base}/hooks/52-54-00-5e-00-01/${token}/installed`, '-X', 'POST'), 'deployed\n');
    assert.match(await ok(['get', 'deployments', 'web1']), /deployed/);

    // Every later boot: the local disk, never the installer again.
    const local = await curl(script());
    assert.match(local, /booting from the local disk/);
    assert.match(local, /iseq \$\{platform\} efi && exit \|\|\nsanboot --no-describe --drive 0x80 \|\| exit/);
    assert.match(await curl(`${tftpBase}/pxelinux.cfg/01-52-54-00-5e-00-01`), /LOCALBOOT 0/);

    // Reinstall: provisioning again with a new token; the old one no longer reports.
    assert.match(await ok(['reinstall', mac]), /provisioning/);
    const again = await curl(script());
    const newToken = /\/answers\/52-54-00-5e-00-01\/([^/]+)\/preseed\.cfg/.exec(again)?.[1];
    assert.ok(newToken && newToken !== token, 'the token changes on reinstall');
    const stale = await runOk('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      `${base}/hooks/52-54-00-5e-00-01/${token}/installed`,
    ]);
    assert.equal(stale, '403');
    // A failure report: failed, and the machine is held rather than reinstalled in a loop.
    assert.equal(
      await curl(`${base}/hooks/52-54-00-5e-00-01/${newToken}/failed`, '-X', 'POST', '--data', 'disk not found'),
      'failed\n',
    );
    assert.match(await curl(script()), /installation of this machine \(52:54:00:5e:00:01\) failed/);

    // Release: the deployment is gone and the machine is free (held) again.
    assert.match(await ok(['release', mac]), /released; it is free/);
    assert.match(await curl(script()), /is free/);
    const releaseAgain = await smeltctl(['release', mac], env);
    assert.equal(releaseAgain.code, 4, 'releasing a free machine is a conflict');
    assert.match(releaseAgain.stderr, /is free: nothing to release/);

    // The history, in order, through get events.
    const events = JSON.parse(await ok(['get', 'events', '--MAC', mac, '-o', 'json'])) as {
      type: string;
      message: string;
    }[];
    const lifecycle = [
      'deployment.created',
      'file.served',
      'machine.installed',
      'file.served',
      'machine.reinstalling',
      'file.served',
      'machine.failed',
      'machine.released',
    ];
    assert.deepEqual(
      events.map((e) => e.type),
      lifecycle,
    );
    // What the machine was told: the installer, then its local disk, then the installer again.
    assert.deepEqual(
      events.filter((e) => e.type === 'file.served').map((e) => e.message.replace(/ \(http.*\)$/, '')),
      [
        'iPXE script: boot debian12 (preseed)',
        'iPXE script: boot from the local disk',
        'iPXE script: boot debian12 (preseed)',
      ],
    );
    assert.match(events[6]?.message ?? '', /disk not found/);
    const described = await ok(['describe', 'machine', mac]);
    assert.match(described, /Events:\n(.*\n)*.*deployment\.created: deployment "web1" created/);
    assert.match(described, /machine\.failed: provisioning → failed: disk not found/);
    const deadline = Date.now() + 10_000;
    while (!watched.includes('machine.released') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const watchedTypes = watched
      .trim()
      .split('\n')
      .map((line) => line.split('\t')[1]);
    assert.deepEqual(watchedTypes, lifecycle);
  } finally {
    watcher.kill('SIGTERM');
  }
});

test('deploy --any claims a free machine matching every selector, and says so when none is left', async () => {
  await ok(['create', 'machine', '--MAC', '52:54:00:5e:01:01', '--label', 'rack=r1']);
  await ok(['create', 'machine', '--MAC', '52:54:00:5e:01:02', '--label', 'rack=r2', '--label', 'role=db']);
  const claimed = await ok([
    'deploy',
    '--any',
    '--selector',
    'rack=r2',
    '--selector',
    'role=db',
    '--boot',
    'debian12',
    '--name',
    'db1',
  ]);
  assert.match(claimed, /^52:54:00:5e:01:02 deployed as "db1"/);
  const none = await smeltctl(['deploy', '--any', '--selector', 'rack=r2', '--boot', 'debian12'], env);
  assert.equal(none.code, 3, none.stderr);
  assert.match(none.stderr, /no free machine matches rack=r2/);
  const usage = await smeltctl(['deploy', '--boot', 'debian12'], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /give --MAC, or --any/);
  await ok(['delete', 'deployment', 'db1']);
});

test('diskless deployments: NFS root and iSCSI from smeltctl flags; live settings are checked', async () => {
  const nfs = await ok([
    'deploy',
    '--MAC',
    '52:54:00:5e:02:01',
    '--boot',
    'debian12',
    '--deploymentType',
    'live',
    '--nfsRoot',
    '10.0.0.9:/srv/roots/web',
    '--rw',
  ]);
  assert.match(nfs, /deployed as/);
  const nfsScript = await curl(`http://${http().host}:${String(http().port)}/boot/52-54-00-5e-02-01.ipxe`);
  assert.match(
    nfsScript,
    / boot=nfs root=\/dev\/nfs nfsroot=10\.0\.0\.9:\/srv\/roots\/web ip=dhcp rw smelt\.phonehome=http:\/\//,
  );
  await ok([
    'deploy',
    '--MAC',
    '52:54:00:5e:02:02',
    '--boot',
    'debian12',
    '--deploymentType',
    'live',
    '--iscsiServer',
    'san.example',
    '--iscsiTarget',
    'iqn.2026-11.example.san:db',
  ]);
  const iscsiScript = await curl(`http://${http().host}:${String(http().port)}/boot/52-54-00-5e-02-02.ipxe`);
  assert.match(iscsiScript, /^sanboot --keep iscsi:san\.example:::0:iqn\.2026-11\.example\.san:db /m);
  const twoRoots = await smeltctl(
    [
      'deploy',
      '--MAC',
      '52:54:00:5e:02:03',
      '--boot',
      'debian12',
      '--deploymentType',
      'live',
      '--nfsRoot',
      'a:/b',
      '--rootfs',
      'http://x/y',
    ],
    env,
  );
  assert.equal(twoRoots.code, 2, twoRoots.stderr);
  assert.match(twoRoots.stderr, /exactly one root/);
  const notLive = await smeltctl(
    ['deploy', '--MAC', '52:54:00:5e:02:03', '--boot', 'debian12', '--nfsRoot', 'a:/b'],
    env,
  );
  assert.equal(notLive.code, 2, notLive.stderr);
  assert.match(notLive.stderr, /need type "live"/);
  await ok(['delete', 'deployment', '52:54:00:5e:02:01']);
  await ok(['delete', 'deployment', '52:54:00:5e:02:02']);
});

test('an operator template that does not compile stops the daemon with its name and line (exit 2)', async () => {
  const template = join(dir, 'broken.tmpl');
  writeFileSync(template, 'd-i netcfg/get_hostname string {{ deployment.hostnme }}\n');
  await assert.rejects(
    startSmeltd({ dataDir: join(dir, 'data-broken'), config: { templates: { 'preseed.cfg': template } } }),
    (error: Error) => {
      assert.match(error.message, /exited 2/);
      assert.match(error.message, /broken\.tmpl line 1: .*deployment\.hostnme/);
      return true;
    },
  );
});

test('admission control: beyond http.maxInstalls machines are told to wait, in order, and shown queued', async () => {
  const paced = await startSmeltd({ dataDir: join(dir, 'data-paced'), config: { http: { maxInstalls: 1 } } });
  try {
    const penv = { SMELT_SERVER: paced.url, SMELT_TOKEN: paced.token, SMELTCTL_CONFIG: join(dir, 'ctl-paced.json') };
    const pok = async (args: string[]) => {
      const result = await smeltctl(args, penv);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    await pok(['create', 'boot', '--name', 'b', '--kernel', join(dir, 'vmlinuz'), '--initrd', join(dir, 'initrd.gz')]);
    await pok(['deploy', '--MAC', '52:54:00:5e:03:01', '--boot', 'b']);
    await pok(['deploy', '--MAC', '52:54:00:5e:03:02', '--boot', 'b']);
    const address = paced.http;
    assert.ok(address);
    const base = `http://${address.host}:${String(address.port)}`;
    const first = await curl(`${base}/boot/52-54-00-5e-03-01.ipxe`);
    assert.match(first, /^kernel /m, 'the first machine installs');
    const second = await curl(`${base}/boot/52-54-00-5e-03-02.ipxe`);
    assert.match(second, /busy installing other machines; 1 ahead of 52:54:00:5e:03:02, asking again in \d+ s/);
    assert.match(second, /chain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\/52-54-00-5e-03-02\.ipxe$/m);
    assert.match(await pok(['get', 'machines']), /52:54:00:5e:03:02\s+provisioning \(queue 1\)/);
    // The first machine fetches its kernel and its (last) initrd: its slot is free, the second goes.
    await curl(/^kernel (\S+)/m.exec(first)?.[1] ?? '');
    await curl(/^initrd (\S+)/m.exec(first)?.[1] ?? '');
    assert.match(await curl(`${base}/boot/52-54-00-5e-03-02.ipxe`), /^kernel /m);
    const metrics = await curl(`${paced.url}/metrics`);
    assert.match(metrics, /smelt_admission\{state="downloading"\} 1/);
  } finally {
    await paced.stop();
  }
});
