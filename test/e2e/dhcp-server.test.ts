/**
 * DHCP server mode end to end: the real smeltd in a namespace of its own, on one port of a switch (a bridge in a
 * third namespace), and real clients on other ports — busybox udhcpc, ISC dhclient, and scapy
 * (test/harness/dhcp_client.py) for what they cannot send: NAK cases, another server's id, DECLINE, INFORM and
 * the PXE, iPXE and HTTP Boot firmware flavours. Leases, reservations and discovered machines are read back with
 * the real smeltctl, and the pool-full case watches the daemon's CPU.
 *
 * Network safety: everything runs in namespaces this file makes and removes; nothing binds a real interface.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  alive,
  apiIn,
  cpuSeconds,
  createLab,
  dhclientScript,
  logLines,
  metric,
  metricsIn,
  opt,
  optIps,
  optText,
  optU32,
  scapy,
  smeltctlIn,
  smeltctlJson,
  udhcpc,
  waitUntil,
  type Exchange,
  type Lab,
} from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import { run } from '../harness/process.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.91.0.2';
const GATEWAY = '10.91.0.1';
const DNS = ['10.91.0.53', '10.91.0.54'];
const NTP = '10.91.0.123';
const RESERVED = '10.91.0.20';
const INFORM_CLIENT = '10.91.0.60';
const LEASE_TIME = 600;
const POOL = { start: '10.91.0.100', end: '10.91.0.149' };
const config = {
  interface: 'lan0',
  address: SERVER,
  dhcp: {
    mode: 'server',
    subnet: '10.91.0.0/24',
    pool: POOL,
    gateway: GATEWAY,
    dns: DNS,
    ntp: [NTP],
    domain: 'lab.test',
    leaseTime: LEASE_TIME,
  },
  ipxe: { dir: '/nonexistent-ipxe' },
  // The base of the URLs handed to iPXE and HTTP Boot clients: http://SERVER/... (port 80, inside the namespace).
  http: { listen: `${SERVER}:80` },
};
/** The client interfaces c0..c3 and their MACs; c0 also has a static address (the INFORM client). */
const mac = (n: number) => `02:91:00:00:00:0${n}`;

const BIOS_PXE = 'PXEClient:Arch:00000:UNDI:002001';
const UUID_WIRE = '00112233445566778899aabbccddeeff';
/** Option 97's first three fields are little-endian on the wire (SMBIOS), so the text form reorders them. */
const UUID_TEXT = '33221100-5544-7766-8899-aabbccddeeff';

interface Lease {
  address: string;
  mac: string;
  state: string;
  reserved: boolean;
  grantedAt: string;
  expiresAt: string;
}
interface Machine {
  mac: string;
  arch?: string;
  vendorClass?: string;
  userClass?: string;
  uuid?: string;
  relay?: string;
  lastLease?: string;
  vendor?: string;
  firstSeen?: string;
  lastSeen?: string;
}

let lab: Lab;
let serverNs: Netns;
let clientNs: Netns;
let daemon: RunningSmeltd;

function inPool(address: string | undefined): boolean {
  const last = Number(address?.split('.')[3]);
  return address?.startsWith('10.91.0.') === true && last >= 100 && last <= 149;
}

/** One scapy exchange from c0 (any MAC), `count` replies awaited. */
function exchange(args: string[], count = 1, timeout = 2): Promise<Exchange> {
  return scapy(clientNs, 'c0', ['exchange', ...args, '--count', String(count), '--timeout', String(timeout)]);
}

/** The only reply of an exchange, of the given type. */
function only(result: Exchange, type: string) {
  assert.equal(result.replies.length, 1, `one reply expected: ${JSON.stringify(result)}`);
  const reply = result.replies[0];
  assert.ok(reply);
  assert.equal(reply.type, type, JSON.stringify(reply));
  assert.equal(reply.chaddr, result.mac);
  return reply;
}

/** DISCOVER + REQUEST from scapy: the bound address. */
async function dora(clientMac: string, extra: string[] = []): Promise<string> {
  const offer = only(await exchange(['--mac', clientMac, ...extra]), 'offer');
  const ack = only(
    await exchange([
      '--mac',
      clientMac,
      '--type',
      'request',
      '--server-id',
      SERVER,
      '--requested',
      offer.yiaddr,
      ...extra,
    ]),
    'ack',
  );
  assert.equal(ack.yiaddr, offer.yiaddr);
  return ack.yiaddr;
}

function leases(args: string[] = []): Promise<Lease[]> {
  return smeltctlJson<Lease[]>(lab, serverNs, daemon, ['get', 'leases', ...args]);
}

async function ctl(args: string[]): Promise<string> {
  const result = await smeltctlIn(lab, serverNs, daemon, args);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

before(async () => {
  lab = createLab('dhcp-server');
  const sw = await lab.switch('ssw');
  serverNs = await lab.netns('ssv');
  clientNs = await lab.netns('scl');
  await sw.attach({ ns: serverNs, name: 'lan0', address: `${SERVER}/24` });
  await sw.attach({ ns: clientNs, name: 'c0', mac: mac(0), address: `${INFORM_CLIENT}/24` });
  for (let n = 1; n <= 3; n++) await sw.attach({ ns: clientNs, name: `c${n}`, mac: mac(n) });
  daemon = await lab.smeltd(serverNs, config);
});

after(async () => {
  await lab.close();
});

describe('DHCP server mode', () => {
  let firstAddress = '';

  test('smeltd logs "dhcp listening" on its interface and address', () => {
    const line = logLines(daemon).find((l) => l.msg === 'dhcp listening');
    assert.ok(line, daemon.output());
    assert.equal(line.mode, 'server');
    assert.deepEqual(line.interfaces, [{ name: 'lan0', addresses: [SERVER] }]);
    assert.equal(line.port, 67);
  });

  test('udhcpc: DORA gets a pool address, with router, DNS, NTP, domain and lease time as configured', async () => {
    const result = await udhcpc(lab, clientNs, 'c1');
    assert.equal(result.code, 0, result.output);
    const env = result.bound;
    assert.ok(env, `udhcpc did not bind: ${result.output}`);
    assert.ok(inPool(env.ip), `address ${env.ip} is not from the pool`);
    assert.equal(env.serverid, SERVER);
    assert.equal(env.router, GATEWAY);
    assert.equal(env.dns?.trim(), DNS.join(' '));
    assert.equal(env.ntpsrv?.trim(), NTP);
    assert.equal(env.domain, 'lab.test');
    assert.equal(env.lease, String(LEASE_TIME));
    assert.equal(env.subnet, '255.255.255.0');
    assert.equal(env.broadcast, '10.91.0.255');
    // T1 and T2 at 0.5 and 0.875 of the lease (RFC 2131 §4.4.5), as udhcpc shows unknown options: hex.
    assert.equal(env.opt58, (LEASE_TIME / 2).toString(16).padStart(8, '0'));
    assert.equal(
      env.opt59,
      Math.floor((LEASE_TIME * 7) / 8)
        .toString(16)
        .padStart(8, '0'),
    );
    firstAddress = env.ip ?? '';
    const mine = await leases(['--MAC', mac(1)]);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    const lease = mine[0];
    assert.ok(lease);
    assert.equal(lease.address, firstAddress);
    assert.equal(lease.state, 'bound');
    assert.equal(lease.reserved, false);
    const seconds = (Date.parse(lease.expiresAt) - Date.parse(lease.grantedAt)) / 1000;
    assert.ok(Math.abs(seconds - LEASE_TIME) < 2, `lease of ${seconds} s`);
  });

  test('dhclient: DORA, a second run keeps the address (INIT-REBOOT), and -r releases it', async () => {
    const script = dhclientScript(lab);
    const leaseFile = `${lab.dir}/dhclient.c2.leases`;
    const args = (pid: string) => ['-v', '-lf', leaseFile, '-pf', `${lab.dir}/${pid}`, '-sf', script.path, 'c2'];
    const bound = (reasons: string[]) =>
      waitUntil(
        `dhclient ${reasons.join('/')}`,
        () => script.records('c2').find((r) => reasons.includes(r.reason ?? '')),
        15_000,
      );

    const first = lab.spawn(clientNs, ['dhclient', '-d', '-1', ...args('d1.pid')]);
    const got = await bound(['BOUND']);
    await first.stop();
    const address = got.new_ip_address ?? '';
    assert.ok(inPool(address), `dhclient got ${address}`);
    assert.equal(got.new_routers, GATEWAY);
    assert.equal(got.new_domain_name_servers, DNS.join(' '));
    assert.equal(got.new_dhcp_server_identifier, SERVER);
    assert.equal(got.new_dhcp_lease_time, String(LEASE_TIME));
    assert.equal((await leases(['--MAC', mac(2)]))[0]?.state, 'bound');

    // The second run starts from its lease file: a REQUEST for that address without a server id.
    const second = lab.spawn(clientNs, ['dhclient', '-d', '-1', ...args('d2.pid')]);
    // On a failure, what dhclient said and which reasons its script saw (a CI run under load once timed out here).
    const again = await bound(['REBOOT']).catch((error: unknown) => {
      const reasons = script.records('c2').map((r) => r.reason ?? '?');
      throw new Error(`${String(error)}\nscript reasons: ${reasons.join(', ')}\ndhclient:\n${second.output()}`);
    });
    await second.stop();
    assert.equal(again.new_ip_address, address, second.output());
    const kept = await leases(['--MAC', mac(2)]);
    assert.deepEqual(
      kept.map((l) => [l.address, l.state]),
      [[address, 'bound']],
    );

    // -r: DHCPRELEASE, unicast to the server from the leased address (the script left it on c2).
    const release = await run('ip', ['netns', 'exec', clientNs.name, 'dhclient', '-r', ...args('d3.pid')], {
      timeoutMs: 20_000,
    });
    assert.equal(release.code, 0, release.stdout + release.stderr);
    assert.ok(
      script.records('c2').some((r) => r.reason === 'RELEASE'),
      'dhclient ran its script for RELEASE',
    );
    const released = await waitUntil('the lease to show released', async () => {
      const list = await leases(['--MAC', mac(2)]);
      return list.find((l) => l.address === address && l.state === 'released');
    });
    assert.equal(released.mac, mac(2));
    assert.equal((await leases(['--state', 'released'])).length, 1);
    // RFC 2131 §4.4.6 / §4.3.1: a released address is remembered, and its client gets it again first.
    const back = only(await exchange(['--mac', mac(2)]), 'offer');
    assert.equal(back.yiaddr, address);
  });

  test("a deployment's address is a reservation: its machine gets it, outside the pool", async () => {
    await ctl(['create', 'boot', '--name', 'disk', '--kind', 'local']);
    await ctl(['create', 'deployment', '--MAC', mac(3).toUpperCase(), '--boot', 'disk', '--address', RESERVED]);
    const result = await udhcpc(lab, clientNs, 'c3');
    assert.equal(result.bound?.ip, RESERVED, result.output);
    assert.equal(result.bound.router, GATEWAY);
    const mine = await leases(['--MAC', mac(3)]);
    assert.deepEqual(
      mine.map((l) => [l.address, l.state, l.reserved]),
      [[RESERVED, 'bound', true]],
    );
    // Nobody else may have it: an INIT-REBOOT REQUEST for it from another MAC is refused.
    const other = await exchange(['--mac', '02:91:00:00:01:01', '--type', 'request', '--requested', RESERVED]);
    only(other, 'nak');
  });

  test('a REQUEST for an address outside the subnet gets a NAK, broadcast, without address or lease time', async () => {
    for (const serverId of [[], ['--server-id', SERVER]]) {
      const result = await exchange([
        '--mac',
        '02:91:00:00:01:02',
        '--type',
        'request',
        '--requested',
        '192.168.77.5',
        ...serverId,
      ]);
      const nak = only(result, 'nak');
      assert.equal(nak.yiaddr, '0.0.0.0');
      assert.equal(nak.siaddr, '0.0.0.0');
      assert.equal(nak.file, '');
      assert.equal(nak.dst, '255.255.255.255');
      assert.deepEqual(optIps(nak, 54), [SERVER]);
      assert.equal(opt(nak, 51), undefined, 'RFC 2131 table 3: no lease time in a NAK');
      assert.equal(opt(nak, 3), undefined);
    }
  });

  test("a REQUEST naming another server's id gets no reply, and frees the address offered", async () => {
    const chooser = '02:91:00:00:01:03';
    const offer = only(await exchange(['--mac', chooser]), 'offer');
    // While the offer stands, the address is held: another client asking for it gets a different one.
    const held = only(await exchange(['--mac', '02:91:00:00:01:04', '--requested', offer.yiaddr]), 'offer');
    assert.notEqual(held.yiaddr, offer.yiaddr);
    const before = await metricsIn(serverNs, daemon);
    const silent = await exchange(
      ['--mac', chooser, '--type', 'request', '--server-id', '10.91.0.77', '--requested', offer.yiaddr],
      1,
      1.5,
    );
    assert.deepEqual(silent.replies, []);
    const afterwards = await metricsIn(serverNs, daemon);
    assert.equal(
      metric(afterwards, 'smelt_dhcp_ignored_total', { reason: 'other-server' }) -
        metric(before, 'smelt_dhcp_ignored_total', { reason: 'other-server' }),
      1,
    );
    // The client chose someone else: the address is free again for whoever asks for it.
    const freed = only(await exchange(['--mac', '02:91:00:00:01:05', '--requested', offer.yiaddr]), 'offer');
    assert.equal(freed.yiaddr, offer.yiaddr);
  });

  test('DECLINE: the address shows declined in get leases and is offered to nobody', async () => {
    const decliner = '02:91:00:00:01:06';
    const address = await dora(decliner);
    const result = await exchange(
      ['--mac', decliner, '--type', 'decline', '--server-id', SERVER, '--requested', address],
      1,
      1,
    );
    assert.deepEqual(result.replies, [], 'no reply to a DECLINE');
    const declined = await waitUntil('the declined lease', async () =>
      (await leases(['--state', 'declined'])).find((l) => l.address === address),
    );
    assert.equal(declined.mac, decliner);
    for (const client of ['02:91:00:00:01:07', decliner]) {
      const offer = only(await exchange(['--mac', client, '--requested', address]), 'offer');
      assert.notEqual(offer.yiaddr, address, `${client} was offered the declined ${address}`);
      assert.ok(inPool(offer.yiaddr));
    }
  });

  test('a declined address stays declined after its decliner is leased another one (the usual DECLINE flow)', async () => {
    // RFC 2131 §3.1.5 / §4.4.4: the client ARP-probes the address, finds it in use, DECLINEs it and starts over.
    const decliner = '02:91:00:00:01:11';
    const address = await dora(decliner);
    await exchange(['--mac', decliner, '--type', 'decline', '--server-id', SERVER, '--requested', address], 1, 0.5);
    const next = await dora(decliner);
    assert.notEqual(next, address);
    const mine = await leases(['--MAC', decliner]);
    assert.deepEqual(
      mine.map((l) => [l.address, l.state]).sort(),
      [
        [address, 'declined'],
        [next, 'bound'],
      ].sort(),
      'the declined address must stay out of the pool (RFC 2131 §4.3.3: "MUST mark the network address as not available")',
    );
    const other = only(await exchange(['--mac', '02:91:00:00:01:12', '--requested', address]), 'offer');
    assert.notEqual(other.yiaddr, address, `the declined ${address} was offered to another client`);
  });

  test('INFORM: an ACK to ciaddr with the configuration, no yiaddr and no lease time', async () => {
    const result = await exchange([
      '--mac',
      mac(0),
      '--type',
      'inform',
      '--ciaddr',
      INFORM_CLIENT,
      '--src',
      INFORM_CLIENT,
    ]);
    const ack = only(result, 'ack');
    assert.equal(ack.yiaddr, '0.0.0.0');
    assert.equal(ack.ciaddr, INFORM_CLIENT);
    assert.equal(ack.dst, INFORM_CLIENT, 'RFC 2131 §4.3.5: sent to the address in ciaddr');
    for (const code of [51, 58, 59]) assert.equal(opt(ack, code), undefined, `option ${code} in an INFORM ACK`);
    assert.deepEqual(optIps(ack, 3), [GATEWAY]);
    assert.deepEqual(optIps(ack, 6), DNS);
    assert.deepEqual(optIps(ack, 1), ['255.255.255.0']);
    assert.deepEqual(optIps(ack, 54), [SERVER]);
    // No lease was made for it.
    assert.deepEqual(await leases(['--MAC', mac(0)]), []);
  });

  test('RENEWING (unicast, ciaddr) and REBINDING (broadcast, ciaddr) extend the lease, answered to ciaddr', async () => {
    const renewer = mac(0); // c0's own MAC: the ACK to ciaddr must reach c0
    const address = await dora(renewer);
    await clientNs.exec(['ip', 'addr', 'add', `${address}/24`, 'dev', 'c0']);
    try {
      const [before] = await leases(['--MAC', renewer]);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // so that the new expiry differs
      // RFC 2131 §4.3.2: no server id, no option 50, ciaddr = the address; unicast to the server.
      const renewal = await scapy(clientNs, 'c0', [
        'exchange',
        '--mac',
        renewer,
        '--type',
        'request',
        '--ciaddr',
        address,
        '--unicast',
        `${SERVER}:67`,
      ]);
      const ack = only(renewal, 'ack');
      assert.equal(ack.yiaddr, address);
      assert.equal(ack.ciaddr, address);
      assert.equal(ack.dst, address);
      assert.equal(optU32(ack, 51), LEASE_TIME);
      const [renewed] = await leases(['--MAC', renewer]);
      assert.ok(before && renewed);
      assert.equal(renewed.address, address);
      assert.equal(renewed.grantedAt, before.grantedAt, 'a renewal keeps the grant time');
      assert.ok(Date.parse(renewed.expiresAt) > Date.parse(before.expiresAt), 'the lease was extended');
      // REBINDING: the same, broadcast from the address.
      const rebind = await exchange(['--mac', renewer, '--type', 'request', '--ciaddr', address, '--src', address]);
      assert.equal(only(rebind, 'ack').yiaddr, address);
    } finally {
      await clientNs.exec(['ip', 'addr', 'del', `${address}/24`, 'dev', 'c0']);
    }
  });

  const odd = '02:91:00:00:01:08';
  let oddAddress = '';

  test('a client whose hostname (option 12) is not a DNS name still gets its lease, and get leases works', async () => {
    // Windows and many appliances send names with underscores or spaces.
    const address = await dora(odd, ['--hostname', 'My_Laptop 2']);
    oddAddress = address;
    const mine = await leases(['--MAC', odd]);
    assert.deepEqual(
      mine.map((l) => [l.address, l.state]),
      [[address, 'bound']],
    );
  });

  test('a deployment made while its machine holds a pool lease moves it to the reserved address', async () => {
    const mover = '02:91:00:00:01:09';
    const pooled = await dora(mover);
    assert.ok(inPool(pooled));
    await ctl(['create', 'deployment', '--MAC', mover, '--boot', 'disk', '--address', '10.91.0.21']);
    // The daemon's view of deployments follows the store: the next DISCOVER already sees the reservation.
    assert.equal(await dora(mover), '10.91.0.21');
    const mine = await leases(['--MAC', mover]);
    assert.deepEqual(
      mine.map((l) => [l.address, l.state, l.reserved]),
      [
        ['10.91.0.21', 'bound', true],
        [pooled, 'released', false],
      ],
    );
  });

  const pxeMac = '02:91:00:00:02:01';
  let pxeAddress = '';

  test('PXE firmware: BIOS gets siaddr + undionly.kpxe, PXEClient, option 43 and its UUID back', async () => {
    const pxe = ['--vendor-class', BIOS_PXE, '--arch', '0', '--uuid', UUID_WIRE];
    const offer = only(await exchange(['--mac', pxeMac, ...pxe]), 'offer');
    assert.ok(inPool(offer.yiaddr));
    assert.equal(offer.siaddr, SERVER);
    assert.equal(offer.file, 'undionly.kpxe');
    assert.equal(optText(offer, 67), 'undionly.kpxe');
    assert.equal(optText(offer, 66), SERVER);
    assert.equal(optText(offer, 60), 'PXEClient');
    // 43: PXE_DISCOVERY_CONTROL (6) = 8, "the boot file is in this offer", then END.
    assert.equal(opt(offer, 43)?.toString('hex'), '060108ff');
    assert.equal(opt(offer, 97)?.toString('hex'), `00${UUID_WIRE}`);
    assert.equal(optU32(offer, 51), LEASE_TIME);
    const ack = only(
      await exchange([
        '--mac',
        pxeMac,
        '--type',
        'request',
        '--server-id',
        SERVER,
        '--requested',
        offer.yiaddr,
        ...pxe,
      ]),
      'ack',
    );
    assert.equal(ack.yiaddr, offer.yiaddr);
    assert.equal(ack.file, 'undionly.kpxe');
    assert.equal(ack.siaddr, SERVER);
    pxeAddress = ack.yiaddr;
  });

  test('UEFI x64 (arch 7) gets ipxe.efi; iPXE gets its script URL and 175.176 = 1; HTTP Boot gets a URL', async () => {
    const efiMac = '02:91:00:00:02:02';
    const ipxeMac = '02:91:00:00:02:03';
    const ipxe175Mac = '02:91:00:00:02:04';
    const httpMac = '02:91:00:00:02:05';
    const [efi, ipxe, ipxe175, http] = await Promise.all([
      exchange(['--mac', efiMac, '--vendor-class', 'PXEClient:Arch:00007:UNDI:003000', '--arch', '7']),
      exchange(['--mac', ipxeMac, '--vendor-class', BIOS_PXE, '--arch', '0', '--user-class', 'iPXE', '--ipxe']),
      exchange(['--mac', ipxe175Mac, '--arch', '7', '--ipxe']),
      exchange(['--mac', httpMac, '--vendor-class', 'HTTPClient:Arch:00016:UNDI:003000', '--arch', '16']),
    ]);

    const efiOffer = only(efi, 'offer');
    assert.equal(efiOffer.file, 'ipxe.efi');
    assert.equal(efiOffer.siaddr, SERVER);
    assert.equal(optText(efiOffer, 60), 'PXEClient');

    for (const [result, clientMac] of [
      [ipxe, ipxeMac],
      [ipxe175, ipxe175Mac],
    ] as const) {
      const offer = only(result, 'offer');
      // The MAC in dash form: iPXE would percent-encode colons.
      const url = `http://${SERVER}/boot/${clientMac.replaceAll(':', '-')}.ipxe`;
      assert.equal(offer.file, url);
      assert.equal(optText(offer, 67), url);
      // 175.176 ("no ProxyDHCP") = 1: iPXE does not wait for a ProxyDHCP offer.
      assert.equal(opt(offer, 175)?.toString('hex'), 'b00101');
      assert.ok(inPool(offer.yiaddr));
    }
    assert.equal(optText(only(ipxe, 'offer'), 60), 'PXEClient');

    const httpOffer = only(http, 'offer');
    assert.equal(httpOffer.file, `http://${SERVER}/ipxe.efi`);
    assert.equal(optText(httpOffer, 67), `http://${SERVER}/ipxe.efi`);
    assert.equal(optText(httpOffer, 60), 'HTTPClient');
  });

  test('an unknown architecture (4242) gets a lease but no boot file, and a warning naming 4242', async () => {
    const offer = only(
      await exchange([
        '--mac',
        '02:91:00:00:02:06',
        '--vendor-class',
        'PXEClient:Arch:04242:UNDI:003000',
        '--arch',
        '4242',
      ]),
      'offer',
    );
    assert.ok(inPool(offer.yiaddr));
    assert.equal(offer.file, '');
    assert.equal(offer.siaddr, '0.0.0.0');
    assert.equal(opt(offer, 67), undefined);
    assert.equal(opt(offer, 66), undefined);
    const warning = await waitUntil('the warning', () =>
      logLines(daemon).find((l) => l.level === 40 && String(l.msg).includes('4242')),
    );
    assert.equal(warning.arch, 4242);
    assert.equal(warning.mac, '02:91:00:00:02:06');
  });

  test('get machines shows what the firmware said: arch, UUID, vendor class, user class, last lease', async () => {
    const want = new Map<string, Partial<Machine>>([
      [pxeMac, { arch: 'x86', uuid: UUID_TEXT, vendorClass: BIOS_PXE, lastLease: pxeAddress }],
      ['02:91:00:00:02:02', { arch: 'x86_64-efi', vendorClass: 'PXEClient:Arch:00007:UNDI:003000' }],
      ['02:91:00:00:02:03', { arch: 'x86', userClass: 'iPXE' }],
      ['02:91:00:00:02:05', { arch: 'x86_64-efi-http', vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' }],
      ['02:91:00:00:02:06', { arch: 'arch-4242' }],
      [mac(1), { vendorClass: 'udhcp 1.35.0', lastLease: firstAddress }],
    ]);
    const machines = await waitUntil(
      'discovered machines',
      async () => {
        const list = await smeltctlJson<Machine[]>(lab, serverNs, daemon, ['get', 'machines']);
        const byMac = new Map(list.map((m) => [m.mac, m]));
        const complete = [...want].every(([m, fields]) =>
          Object.entries(fields).every(([k, v]) => byMac.get(m)?.[k as keyof Machine] === v),
        );
        return complete ? byMac : undefined;
      },
      10_000,
      300,
    ).catch(async (error: unknown) => {
      const list = await smeltctlJson<Machine[]>(lab, serverNs, daemon, ['get', 'machines']);
      throw new Error(`${String(error)}\n${JSON.stringify(list, null, 1)}`);
    });
    const pxe = machines.get(pxeMac);
    assert.ok(pxe?.firstSeen && pxe.lastSeen, JSON.stringify(pxe));
    assert.equal(pxe.relay, undefined);
  });

  test('leases survive a restart: get leases is identical, and the first client gets its address again', async () => {
    const before = await leases();
    assert.ok(before.length >= 5, JSON.stringify(before));
    const { code } = await daemon.stop();
    assert.equal(code, 0, daemon.output());
    daemon = await lab.smeltd(serverNs, config, daemon.dataDir);
    const loaded = logLines(daemon).find((l) => l.msg === 'dhcp leases loaded');
    assert.equal(loaded?.leases, before.length);
    assert.deepEqual(await leases(), before);
    const result = await udhcpc(lab, clientNs, 'c1');
    assert.equal(result.bound?.ip, firstAddress, result.output);
    // The reservation is still one.
    assert.equal((await udhcpc(lab, clientNs, 'c3')).bound?.ip, RESERVED);
    const status = await apiIn(serverNs, daemon, 'GET', `/api/v1/leases?mac=${mac(1)}`);
    assert.equal(status.status, 200);
  });

  test('after the restart, the lease of the client with an odd hostname is still held for it', async () => {
    assert.ok(oddAddress, 'the odd-hostname client was leased an address');
    const other = only(await exchange(['--mac', '02:91:00:00:01:10', '--requested', oddAddress]), 'offer');
    assert.notEqual(other.yiaddr, oddAddress, `${oddAddress} is bound to ${odd}, yet offered to another client`);
  });
});

describe('a full pool', () => {
  // Its own segment and daemon: a pool of two addresses and three clients.
  const FULL_SERVER = '10.92.0.2';
  let ns: Netns;
  let clients: Netns;
  let full: RunningSmeltd;

  before(async () => {
    const sw = await lab.switch('fsw');
    ns = await lab.netns('fsv');
    clients = await lab.netns('fcl');
    await sw.attach({ ns, name: 'lan0', address: `${FULL_SERVER}/24` });
    for (let n = 1; n <= 4; n++) await sw.attach({ ns: clients, name: `f${n}`, mac: `02:92:00:00:00:0${n}` });
    full = await lab.smeltd(ns, {
      interface: 'lan0',
      address: FULL_SERVER,
      dhcp: {
        mode: 'server',
        subnet: '10.92.0.0/24',
        pool: { start: '10.92.0.100', end: '10.92.0.101' },
        // The shortest hold of an offer, so that the expiry of one can be waited for.
        offerTimeout: 5,
      },
    });
  });

  let bound: string[] = [];

  test('the third client gets nothing; pool-full is counted, warned once, and costs no CPU', async () => {
    const one = await udhcpc(lab, clients, 'f1');
    const two = await udhcpc(lab, clients, 'f2');
    bound = [one.bound?.ip ?? '', two.bound?.ip ?? ''];
    assert.deepEqual([...bound].sort(), ['10.92.0.100', '10.92.0.101']);

    const pid = full.child.pid;
    assert.ok(pid !== undefined);
    const before = await metricsIn(ns, full);
    const cpuBefore = cpuSeconds(pid);
    // The third client retries for 3 s, and beside it a fourth MAC asks 15 times a second (under the rate limit).
    const [third, burst] = await Promise.all([
      udhcpc(lab, clients, 'f3', { tries: 3 }),
      scapy<{ sent: number }>(clients, 'f4', [
        'flood',
        '--mac',
        '02:92:00:00:00:04',
        '--count',
        '45',
        '--interval',
        '0.066',
      ]),
    ]);
    const cpu = cpuSeconds(pid) - cpuBefore;
    const afterwards = await metricsIn(ns, full);
    assert.equal(third.bound, undefined, third.output);
    assert.notEqual(third.code, 0);
    assert.ok(cpu < 0.5, `smeltd used ${cpu} s of CPU in ~3 s of a full pool`);
    const poolFull =
      metric(afterwards, 'smelt_dhcp_ignored_total', { reason: 'pool-full' }) -
      metric(before, 'smelt_dhcp_ignored_total', { reason: 'pool-full' });
    assert.ok(poolFull >= 3 + burst.sent, `ignored{pool-full} rose by ${poolFull}`);
    assert.equal(
      metric(afterwards, 'smelt_dhcp_sent_total') - metric(before, 'smelt_dhcp_sent_total'),
      0,
      'nothing was sent',
    );
    // And scapy sees no offer either.
    const none = await scapy(clients, 'f3', ['exchange', '--mac', '02:92:00:00:00:03', '--timeout', '1']);
    assert.deepEqual(none.replies, []);
    const warnings = logLines(full).filter((l) => l.msg === 'DHCP pool is full; not offering');
    assert.equal(warnings.length, 1, 'warned once, not per packet');
    assert.equal(warnings[0]?.level, 40);
    assert.equal(warnings[0].subnet, '10.92.0.0/24');
    assert.ok(alive(pid));
    console.log(`full pool: ${poolFull} DISCOVERs ignored, ${cpu.toFixed(2)} s of CPU`);
    // The gauge (counted when /metrics is read) agrees.
    await waitUntil(
      'smelt_dhcp_leases to show 2 bound of a pool of 2, smelt_discovery_pending 0',
      async () => {
        const series = await metricsIn(ns, full);
        const gauge = (state: string) => metric(series, 'smelt_dhcp_leases', { subnet: '10.92.0.0/24', state });
        // And discovery has written every machine that spoke (the gauge is there, at 0).
        const discovery = series.filter((s) => s.name === 'smelt_discovery_pending');
        return gauge('bound') === 2 && gauge('pool') === 2 && discovery.length === 1 && discovery[0]?.value === 0
          ? true
          : undefined;
      },
      7000,
      500,
    );
  });

  test('a RELEASE makes room at once; an offer nobody takes goes back to the pool when it times out', async () => {
    const [first] = bound;
    assert.ok(first);
    const exchange = (n: number, extra: string[] = [], timeout = 1.5) =>
      scapy(clients, `f${n}`, ['exchange', '--mac', `02:92:00:00:00:0${n}`, '--timeout', String(timeout), ...extra]);
    // f1 gives its address back (as `udhcpc -R` or `dhclient -r` would).
    const release = await exchange(1, ['--type', 'release', '--ciaddr', first, '--server-id', FULL_SERVER], 0.5);
    assert.deepEqual(release.replies, []);
    // f3 is offered it straight away and does not take it (no REQUEST): it is held for f3 for 5 s.
    const offered = await exchange(3);
    assert.equal(offered.replies[0]?.type, 'offer', JSON.stringify(offered));
    assert.equal(offered.replies[0].yiaddr, first);
    const heldAt = Date.now();
    assert.deepEqual((await exchange(4)).replies, [], 'the held offer was given to someone else');
    // Once f3's offer has timed out, the pool has room again for f4.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, heldAt + 5500 - Date.now())));
    const later = await exchange(4);
    assert.equal(later.replies[0]?.type, 'offer', 'the expired offer did not come back to the pool');
    assert.equal(later.replies[0].yiaddr, first);
  });
});
