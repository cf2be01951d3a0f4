/**
 * DHCP beyond the directly attached segment, end to end:
 *
 * (a) through a relay: client namespace —veth— router namespace (ISC dhcrelay, IP forwarding) —veth— server
 *     namespace with smeltd, which picks the subnet by giaddr and answers the relay;
 * (b) on two interfaces at once: one server namespace with a veth to each of two client namespaces; each client
 *     gets an address of its own segment from smeltd's address on that segment, without a 255.255.255.255
 *     route (the device-bound sockets send out of the interface a request came in by), with or without a default
 *     route pointing out of the other interface.
 *
 * Network safety: everything runs in namespaces this file makes and removes; nothing binds a real interface.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createLab,
  logLines,
  opt,
  optIps,
  optText,
  scapy,
  smeltctlJson,
  udhcpc,
  waitUntil,
  type Lab,
} from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

let lab: Lab;

before(() => {
  lab = createLab('dhcp-relay');
});

after(async () => {
  await lab.close();
});

function between(address: string | undefined, prefix: string, low: number, high: number): boolean {
  const last = Number(address?.split('.')[3]);
  return address?.startsWith(prefix) === true && last >= low && last <= high;
}

describe('through a DHCP relay (dhcrelay)', () => {
  const SERVER = '10.93.0.2';
  const ROUTER_UP = '10.93.0.1';
  const ROUTER_DOWN = '10.93.1.1'; // giaddr
  const CLIENT_MAC = '02:93:00:00:00:01';
  let client: Netns;
  let router: Netns;
  let server: Netns;
  let daemon: RunningSmeltd;

  before(async () => {
    client = await lab.netns('rcl');
    router = await lab.netns('rrt');
    server = await lab.netns('rsv');
    await lab.link(
      { ns: client, name: 'c0', mac: CLIENT_MAC },
      { ns: router, name: 'r0', address: `${ROUTER_DOWN}/24` },
    );
    await lab.link(
      { ns: router, name: 'r1', address: `${ROUTER_UP}/24` },
      { ns: server, name: 's0', address: `${SERVER}/24` },
    );
    await router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await server.exec(['ip', 'route', 'add', '10.93.1.0/24', 'via', ROUTER_UP]);
    daemon = await lab.smeltd(server, {
      interface: 's0',
      address: SERVER,
      dhcp: {
        mode: 'server',
        // The server's own segment (nobody to serve there) and the relayed one, chosen by giaddr.
        subnet: '10.93.0.0/24',
        pool: { start: '10.93.0.100', end: '10.93.0.120' },
        gateway: ROUTER_UP,
        subnets: [
          {
            subnet: '10.93.1.0/24',
            pool: { start: '10.93.1.100', end: '10.93.1.120' },
            gateway: ROUTER_DOWN,
            dns: ['10.93.1.53'],
            leaseTime: 900,
          },
        ],
      },
    });
    // -id: the clients' side (its address becomes giaddr), -iu: the server's side.
    const relay = lab.spawn(router, ['dhcrelay', '-4', '-d', '--no-pid', '-id', 'r0', '-iu', 'r1', SERVER]);
    await relay.waitFor(/Sending on +Socket/, 10_000);
  });

  test("udhcpc behind the relay gets an address of the relay's subnet, with that subnet's router", async () => {
    const result = await udhcpc(lab, client, 'c0');
    assert.equal(result.code, 0, result.output);
    const env = result.bound;
    assert.ok(env, result.output);
    assert.ok(between(env.ip, '10.93.1.', 100, 120), `address ${env.ip}`);
    assert.equal(env.router, ROUTER_DOWN);
    assert.equal(env.dns?.trim(), '10.93.1.53');
    assert.equal(env.lease, '900');
    assert.equal(env.subnet, '255.255.255.0');
    assert.equal(env.serverid, SERVER, 'the server id is the address the relay reached');

    const machine = await waitUntil('the machine, with its relay', async () =>
      (
        await smeltctlJson<{ mac: string; relay?: string; lastLease?: string }[]>(lab, server, daemon, [
          'get',
          'machines',
        ])
      ).find((m) => m.mac === CLIENT_MAC && m.lastLease !== undefined),
    );
    assert.equal(machine.relay, ROUTER_DOWN);
    assert.equal(machine.lastLease, env.ip);
  });

  test('a PXE client behind the relay gets siaddr = the server address and its boot file', async () => {
    const result = await scapy(client, 'c0', [
      'exchange',
      '--mac',
      '02:93:00:00:00:02',
      '--vendor-class',
      'PXEClient:Arch:00007:UNDI:003000',
      '--arch',
      '7',
    ]);
    const offer = result.replies[0];
    assert.equal(offer?.type, 'offer', JSON.stringify(result));
    assert.ok(between(offer.yiaddr, '10.93.1.', 100, 120));
    assert.equal(offer.siaddr, SERVER);
    assert.equal(offer.file, 'ipxe.efi');
    assert.equal(offer.giaddr, ROUTER_DOWN);
    assert.deepEqual(optIps(offer, 3), [ROUTER_DOWN]);
  });

  test('a NAK through the relay carries the broadcast bit (RFC 2131 §4.3.2)', async () => {
    const result = await scapy(client, 'c0', [
      'exchange',
      '--mac',
      '02:93:00:00:00:03',
      '--type',
      'request',
      '--requested',
      '10.93.0.150',
    ]);
    const nak = result.replies[0];
    assert.equal(nak?.type, 'nak', JSON.stringify(result));
    assert.equal(nak.flags & 0x8000, 0x8000);
    assert.equal(nak.yiaddr, '0.0.0.0');
  });

  test('as a relay agent: the reply goes to giaddr port 67 and echoes option 82 unchanged, last', async () => {
    // scapy plays the relay from the router's client-side address (a socket more specific than dhcrelay's).
    // Sub-option 1 (circuit id) "r0", sub-option 2 (remote id) six octets (RFC 3046 §3).
    const info = '01027230' + '0206020000000004';
    const result = await scapy(router, 'r1', [
      'exchange',
      '--mac',
      '02:93:00:00:00:04',
      '--giaddr',
      ROUTER_DOWN,
      '--option',
      `82:${info}`,
      '--unicast',
      `${SERVER}:67`,
      '--bind',
      ROUTER_DOWN,
      '--sport',
      '67',
      '--timeout',
      '3',
    ]);
    const offer = result.replies[0];
    assert.equal(offer?.type, 'offer', JSON.stringify(result));
    assert.equal(offer.src, SERVER);
    assert.equal(offer.sport, 67);
    assert.equal(offer.giaddr, ROUTER_DOWN);
    assert.ok(between(offer.yiaddr, '10.93.1.', 100, 120));
    assert.equal(opt(offer, 82)?.toString('hex'), info);
    assert.equal(offer.order.at(-1), 82, `option order ${offer.order.join(',')}`);
  });
});

describe('two served interfaces, two segments', () => {
  const A = '10.94.1.2';
  const B = '10.94.2.2';
  let server: Netns;
  let clientA: Netns;
  let clientB: Netns;
  let daemon: RunningSmeltd;

  before(async () => {
    server = await lab.netns('tsv');
    clientA = await lab.netns('tca');
    clientB = await lab.netns('tcb');
    await lab.link(
      { ns: server, name: 'a0', address: `${A}/24` },
      { ns: clientA, name: 'c0', mac: '02:94:01:00:00:01' },
    );
    await lab.link(
      { ns: server, name: 'b0', address: `${B}/24` },
      { ns: clientB, name: 'c0', mac: '02:94:02:00:00:01' },
    );
    daemon = await lab.smeltd(server, {
      address: A,
      dhcp: {
        mode: 'server',
        interfaces: ['a0', 'b0'],
        subnet: '10.94.1.0/24',
        pool: { start: '10.94.1.100', end: '10.94.1.120' },
        gateway: '10.94.1.1',
        subnets: [{ subnet: '10.94.2.0/24', pool: { start: '10.94.2.100', end: '10.94.2.120' }, gateway: '10.94.2.1' }],
      },
    });
  });

  async function both(): Promise<void> {
    const [a, b] = await Promise.all([udhcpc(lab, clientA, 'c0'), udhcpc(lab, clientB, 'c0')]);
    assert.ok(between(a.bound?.ip, '10.94.1.', 100, 120), `A: ${a.output}`);
    assert.equal(a.bound?.serverid, A);
    assert.equal(a.bound.router, '10.94.1.1');
    assert.ok(between(b.bound?.ip, '10.94.2.', 100, 120), `B: ${b.output}`);
    assert.equal(b.bound?.serverid, B);
    assert.equal(b.bound.router, '10.94.2.1');
  }

  test('smeltd listens on both interfaces, and there is no 255.255.255.255 route', async () => {
    const line = logLines(daemon).find((l) => l.msg === 'dhcp listening');
    assert.deepEqual(line?.interfaces, [
      { name: 'a0', addresses: [A] },
      { name: 'b0', addresses: [B] },
    ]);
    const routes = await server.exec(['ip', 'route', 'show', 'table', 'all']);
    assert.doesNotMatch(routes, /255\.255\.255\.255/);
    assert.doesNotMatch(routes, /^default/m);
  });

  test('each client gets an address of its own segment, from our address on that segment', async () => {
    await both();
  });

  test('still so with a default route out of either interface', async () => {
    for (const via of [
      ['10.94.1.1', 'a0'],
      ['10.94.2.1', 'b0'],
    ] as const) {
      await server.exec(['ip', 'route', 'replace', 'default', 'via', via[0], 'dev', via[1]]);
      await both();
    }
    // A PXE client on B is sent to B's address for its boot file, whatever the default route says.
    const offer = (
      await scapy(clientB, 'c0', [
        'exchange',
        '--mac',
        '02:94:02:00:00:02',
        '--vendor-class',
        'PXEClient:Arch:00000:UNDI:002001',
        '--arch',
        '0',
      ])
    ).replies[0];
    assert.equal(offer?.siaddr, B, JSON.stringify(offer));
    assert.equal(optText(offer, 66), B);
    assert.deepEqual(optIps(offer, 54), [B]);
  });
});
