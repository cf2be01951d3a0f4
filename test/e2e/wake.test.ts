/**
 * Wake-on-LAN through smeltctl: the magic packet reaches the machine's segment as a broadcast (the directed
 * broadcast of its subnet, from its deployment's address), on ports 9 and 7, with a SecureOn password when given;
 * `deploy --wake` deploys and wakes in one step. A listener in the "machine's" namespace receives what the wire
 * carries.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createLab, PYTHON, smeltctlIn, type Background, type Lab } from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

let lab: Lab | undefined;
let server: Netns | undefined;
let machine: Netns | undefined;
let daemon: RunningSmeltd | undefined;

function ready(): { lab: Lab; server: Netns; machine: Netns; daemon: RunningSmeltd } {
  if (!lab || !server || !machine || !daemon) throw new Error('the lab did not come up');
  return { lab, server, machine, daemon };
}

/** Listens on the machine's side for broadcasts to ports 9 and 7 and prints each as "port hex". */
function listen(): Background {
  const { lab, machine } = ready();
  const script = join(lab.dir, 'wol_listen.py');
  writeFileSync(
    script,
    [
      'import select, socket, sys',
      'socks = []',
      'for port in (9, 7):',
      '    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "    s.bind(('0.0.0.0', port))",
      '    socks.append(s)',
      "print('listening', flush=True)",
      'while True:',
      '    ready, _, _ = select.select(socks, [], [], 20)',
      '    if not ready: sys.exit(1)',
      '    for s in ready:',
      '        data, (host, _) = s.recvfrom(2048)',
      '        print(s.getsockname()[1], data.hex(), flush=True)',
    ].join('\n'),
  );
  return lab.spawn(machine, [PYTHON, script]);
}

before(async () => {
  lab = createLab('wol');
  server = await lab.netns('wls');
  machine = await lab.netns('wlm');
  await lab.link(
    { ns: server, name: 'wl0', address: '10.73.0.1/24' },
    { ns: machine, name: 'wl1', address: '10.73.0.50/24' },
  );
  daemon = await lab.smeltd(server, {
    address: '10.73.0.1',
    interface: 'wl0',
    dhcp: { mode: 'off', subnet: '10.73.0.0/24' },
  });
  const boot = await smeltctlIn(lab, server, daemon, [
    'create',
    'boot',
    '--name',
    'b',
    '--kernel',
    'http://10.73.0.1/k',
    '--initrd',
    'http://10.73.0.1/i',
  ]);
  assert.equal(boot.code, 0, boot.stderr);
});
after(async () => {
  await lab?.close();
});

test('smeltctl wake: the magic packet, on ports 9 and 7, at the subnet broadcast', async () => {
  const { lab, server, daemon } = ready();
  const listener = listen();
  await listener.waitFor(/listening/, 10_000);
  const deployed = await smeltctlIn(lab, server, daemon, [
    'deploy',
    '--MAC',
    '52:54:00:77:00:01',
    '--boot',
    'b',
    '--address',
    '10.73.0.50',
    '--wake',
  ]);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.match(deployed.stdout, /deployed as .*; woken \(magic packet to 10\.73\.0\.255:9, 10\.73\.0\.255:7\)/);
  const out = await listener.waitFor(/^7 /m, 10_000);
  const expected = `ffffffffffff${'525400770001'.repeat(16)}`;
  assert.match(out, new RegExp(`^9 ${expected}$`, 'm'));
  assert.match(out, new RegExp(`^7 ${expected}$`, 'm'));
  await listener.stop();
});

test('several machines at once, a SecureOn password, and bad input', async () => {
  const { lab, server, daemon } = ready();
  const listener = listen();
  await listener.waitFor(/listening/, 10_000);
  const woken = await smeltctlIn(lab, server, daemon, [
    'wake',
    '52:54:00:77:00:02',
    '52:54:00:77:00:03',
    '--broadcast',
    '10.73.0.255',
    '--password',
    '01:02:03:04:05:06',
  ]);
  assert.equal(woken.code, 0, woken.stderr);
  assert.match(
    woken.stdout,
    /52:54:00:77:00:02: magic packet sent to 10\.73\.0\.255:9, 10\.73\.0\.255:7\n52:54:00:77:00:03:/,
  );
  const out = await listener.waitFor(/525400770003\S*010203040506$/m, 10_000);
  assert.match(out, new RegExp(`^9 ffffffffffff(525400770002){16}010203040506$`, 'm'));
  await listener.stop();
  const bad = await smeltctlIn(lab, server, daemon, ['wake', '52:54:00:77:00:02', '--password', '0102']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /SecureOn password is 4 or 6 bytes/);
  const events = await smeltctlIn(lab, server, daemon, ['get', 'events', '--type', 'machine.woken', '-o', 'json']);
  assert.equal((JSON.parse(events.stdout) as unknown[]).length, 3);
});
