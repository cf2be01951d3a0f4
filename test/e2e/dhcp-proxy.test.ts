/**
 * ProxyDHCP end to end: a site network with its own DHCP server (dnsmasq, no PXE configuration) and smeltd in
 * proxy mode on the same segment. A switch namespace holds the bridge and dnsmasq (the site's router); smeltd
 * and the clients each sit in a namespace of their own, plugged into the bridge. A PXE client sees two offers —
 * the site's address and smeltd's boot file — and then asks smeltd on port 4011; a plain client hears nothing
 * from smeltd at all. A scapy watcher on the segment records every packet smeltd sends, to check that none of
 * them carries an address.
 *
 * Network safety: everything runs in namespaces this file makes and removes; nothing binds a real interface.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiIn,
  createLab,
  DHCP_CLIENT,
  logLines,
  metric,
  metricsIn,
  opt,
  optIps,
  optText,
  PYTHON,
  scapy,
  udhcpc,
  type Background,
  type Exchange,
  type Lab,
  type Reply,
} from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

const SITE = '10.95.0.1'; // dnsmasq, on the bridge
const SMELT = '10.95.0.2';
const BIOS_PXE = 'PXEClient:Arch:00000:UNDI:002001';
const PXE_MAC = '02:95:00:00:00:01';
const PLAIN_MAC = '02:95:00:00:00:02';
const IPXE_MAC = '02:95:00:00:00:03';
const UUID = '8c1d2f3e4a5b6c7d8e9fa0b1c2d3e4f5';

let lab: Lab;
let site: Netns;
let smeltNs: Netns;
let clients: Netns;
let daemon: RunningSmeltd;
let dnsmasq: Background;
let watcher: Background;

function inSiteRange(address: string | undefined): boolean {
  const last = Number(address?.split('.')[3]);
  return address?.startsWith('10.95.0.') === true && last >= 100 && last <= 150;
}

/** What the watcher on the segment has seen smeltd send so far. */
function fromSmelt(): Reply[] {
  return watcher
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{"src"'))
    .map((line) => JSON.parse(line) as Reply)
    .filter((reply) => reply.src === SMELT);
}

function bySource(result: Exchange): Map<string, Reply> {
  return new Map(result.replies.map((r) => [r.src, r]));
}

before(async () => {
  lab = createLab('dhcp-proxy');
  const sw = await lab.switch('pst');
  site = sw.ns;
  await site.exec(['ip', 'addr', 'add', `${SITE}/24`, 'dev', 'br0']);
  smeltNs = await lab.netns('psm');
  clients = await lab.netns('pcl');
  await sw.attach({ ns: smeltNs, name: 'eth0', address: `${SMELT}/24` });
  await sw.attach({ ns: clients, name: 'c1', mac: PXE_MAC });
  await sw.attach({ ns: clients, name: 'c2', mac: PLAIN_MAC });
  await sw.attach({ ns: clients, name: 'c3', mac: IPXE_MAC });
  dnsmasq = lab.spawn(site, [
    'dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--bind-interfaces',
    '--interface=br0',
    '--port=0',
    '--dhcp-range=10.95.0.100,10.95.0.150,255.255.255.0,10m',
    '--dhcp-option=option:router,10.95.0.1',
    `--dhcp-leasefile=${lab.dir}/dnsmasq.leases`,
    `--pid-file=${lab.dir}/dnsmasq.pid`,
    '--user=root',
    '--no-ping',
    '--log-dhcp',
    '--log-facility=-',
  ]);
  await dnsmasq.waitFor(/DHCP, IP range/, 10_000);
  daemon = await lab.smeltd(smeltNs, {
    interface: 'eth0',
    address: SMELT,
    dhcp: { mode: 'proxy' },
    http: { listen: `${SMELT}:80` },
  });
  watcher = lab.spawn(clients, [PYTHON, DHCP_CLIENT, 'c1', 'watch', '--seconds', '55']);
  await watcher.waitFor(/"watching"/, 10_000);
});

after(async () => {
  await lab.close();
});

describe('ProxyDHCP beside a site DHCP server', () => {
  test('smeltd listens on 67 and 4011 in proxy mode', () => {
    const line = logLines(daemon).find((l) => l.msg === 'dhcp listening');
    assert.equal(line?.mode, 'proxy', daemon.output());
    assert.deepEqual(line.interfaces, [{ name: 'eth0', addresses: [SMELT] }]);
  });

  let leased = '';

  test('a PXE DISCOVER gets two offers: the address from dnsmasq, the boot file from smeltd', async () => {
    const pxe = ['--mac', PXE_MAC, '--vendor-class', BIOS_PXE, '--arch', '0', '--uuid', UUID];
    const result = await scapy(clients, 'c1', ['exchange', ...pxe, '--count', '2', '--timeout', '4']);
    const offers = bySource(result);
    assert.deepEqual([...offers.keys()].sort(), [SITE, SMELT], JSON.stringify(result.replies));

    const site = offers.get(SITE);
    assert.equal(site?.type, 'offer');
    assert.ok(inSiteRange(site.yiaddr), site.yiaddr);
    assert.deepEqual(optIps(site, 54), [SITE]);
    assert.equal(site.file, '', 'dnsmasq has no PXE configuration here');

    const proxy = offers.get(SMELT);
    assert.equal(proxy?.type, 'offer');
    assert.equal(proxy.yiaddr, '0.0.0.0', 'a ProxyDHCP offer carries no address');
    assert.equal(proxy.siaddr, SMELT);
    assert.equal(proxy.file, 'undionly.kpxe');
    assert.equal(optText(proxy, 60), 'PXEClient');
    assert.equal(opt(proxy, 43)?.toString('hex'), '060108ff');
    assert.deepEqual(optIps(proxy, 54), [SMELT]);
    assert.equal(opt(proxy, 97)?.toString('hex'), `00${UUID}`);
    for (const code of [1, 3, 6, 51, 58, 59]) assert.equal(opt(proxy, code), undefined, `option ${code}`);
    assert.equal(proxy.dst, '255.255.255.255');
    assert.equal(proxy.dport, 68);

    // The client takes the site's address: a REQUEST naming dnsmasq, which smeltd must leave alone.
    const before = await metricsIn(smeltNs, daemon);
    const ack = await scapy(clients, 'c1', [
      'exchange',
      ...pxe,
      '--type',
      'request',
      '--server-id',
      SITE,
      '--requested',
      site.yiaddr,
      '--count',
      '2',
      '--timeout',
      '1.5',
    ]);
    assert.deepEqual(
      ack.replies.map((r) => [r.src, r.type]),
      [[SITE, 'ack']],
    );
    const afterwards = await metricsIn(smeltNs, daemon);
    assert.equal(
      metric(afterwards, 'smelt_dhcp_ignored_total', { reason: 'other-server' }) -
        metric(before, 'smelt_dhcp_ignored_total', { reason: 'other-server' }),
      1,
    );
    leased = site.yiaddr;
  });

  test('the boot-server REQUEST to port 4011, from the leased address, gets an ACK with the boot file', async () => {
    assert.ok(leased, 'the previous test leased an address');
    await clients.exec(['ip', 'addr', 'add', `${leased}/24`, 'dev', 'c1']);
    const result = await scapy(clients, 'c1', [
      'exchange',
      '--mac',
      PXE_MAC,
      '--type',
      'request',
      '--ciaddr',
      leased,
      '--vendor-class',
      BIOS_PXE,
      '--arch',
      '0',
      '--uuid',
      UUID,
      '--unicast',
      `${SMELT}:4011`,
      '--timeout',
      '3',
    ]);
    assert.equal(result.replies.length, 1, JSON.stringify(result));
    const ack = result.replies[0];
    assert.ok(ack);
    assert.equal(ack.type, 'ack');
    assert.equal(ack.src, SMELT);
    assert.equal(ack.sport, 4011, 'answered from the port asked');
    assert.equal(ack.yiaddr, '0.0.0.0');
    assert.equal(ack.ciaddr, leased);
    assert.equal(ack.siaddr, SMELT);
    assert.equal(ack.file, 'undionly.kpxe');
    assert.equal(optText(ack, 60), 'PXEClient');
    assert.deepEqual(optIps(ack, 54), [SMELT]);
    assert.equal(opt(ack, 51), undefined);

    // Some PXE ROMs ask the proxy on port 67 instead, naming it: a broadcast REQUEST with its server id.
    const on67 = await scapy(clients, 'c1', [
      'exchange',
      '--mac',
      PXE_MAC,
      '--type',
      'request',
      '--server-id',
      SMELT,
      '--vendor-class',
      BIOS_PXE,
      '--arch',
      '0',
    ]);
    const broadcastAck = on67.replies[0];
    assert.equal(broadcastAck?.type, 'ack', JSON.stringify(on67));
    assert.equal(broadcastAck.src, SMELT);
    assert.equal(broadcastAck.yiaddr, '0.0.0.0');
    assert.equal(broadcastAck.file, 'undionly.kpxe');
  });

  test('iPXE in proxy mode: the offer names its script and says "no ProxyDHCP wait" (175.176 = 1)', async () => {
    const result = await scapy(clients, 'c3', [
      'exchange',
      '--mac',
      IPXE_MAC,
      '--vendor-class',
      BIOS_PXE,
      '--arch',
      '0',
      '--user-class',
      'iPXE',
      '--ipxe',
      '--count',
      '2',
      '--timeout',
      '4',
    ]);
    const proxy = bySource(result).get(SMELT);
    assert.ok(proxy, JSON.stringify(result.replies));
    assert.equal(proxy.yiaddr, '0.0.0.0');
    assert.equal(proxy.file, `http://${SMELT}/boot/${IPXE_MAC.replaceAll(':', '-')}.ipxe`);
    assert.equal(opt(proxy, 175)?.toString('hex'), 'b00101');
    assert.ok(inSiteRange(bySource(result).get(SITE)?.yiaddr));
  });

  test('a plain client (udhcpc) gets its lease from dnsmasq and not one packet from smeltd', async () => {
    const before = await metricsIn(smeltNs, daemon);
    const seenBefore = fromSmelt().length;
    const result = await udhcpc(lab, clients, 'c2');
    assert.equal(result.code, 0, result.output);
    assert.equal(result.bound?.serverid, SITE);
    assert.ok(inSiteRange(result.bound.ip));
    assert.equal(result.bound.router, SITE);
    // A second's grace for anything smeltd might still send.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const afterwards = await metricsIn(smeltNs, daemon);
    const ignored =
      metric(afterwards, 'smelt_dhcp_ignored_total', { reason: 'not-network-boot' }) -
      metric(before, 'smelt_dhcp_ignored_total', { reason: 'not-network-boot' });
    assert.ok(ignored >= 2, `ignored{not-network-boot} rose by ${ignored} (a DISCOVER and a REQUEST)`);
    assert.equal(metric(afterwards, 'smelt_dhcp_sent_total') - metric(before, 'smelt_dhcp_sent_total'), 0);
    assert.equal(fromSmelt().length, seenBefore, 'the watcher saw smeltd send something');
    // Proxy mode records only network-booting machines: the PXE client is known, this one is not.
    assert.equal((await apiIn(smeltNs, daemon, 'GET', `/api/v1/machines/${PLAIN_MAC}`)).status, 404);
    const pxe = await apiIn(smeltNs, daemon, 'GET', `/api/v1/machines/${PXE_MAC}`);
    assert.equal(pxe.status, 200);
    assert.equal((pxe.json as { arch?: string }).arch, 'x86');
  });

  test('smeltd never sent an address: every packet the watcher saw from it has yiaddr 0.0.0.0', async () => {
    const sent = fromSmelt();
    // Two broadcast offers (PXE and iPXE), the 4011 ACK to the leased address and the ACK on 67, broadcast.
    assert.deepEqual(
      sent.map((r) => `${r.type ?? ''} ${r.dst}:${r.dport}`).sort(),
      [`ack ${leased}:68`, 'ack 255.255.255.255:68', 'offer 255.255.255.255:68', 'offer 255.255.255.255:68'].sort(),
      watcher.output(),
    );
    for (const reply of sent) {
      assert.equal(reply.yiaddr, '0.0.0.0', JSON.stringify(reply));
      assert.equal(opt(reply, 51), undefined, JSON.stringify(reply));
    }
    const series = await metricsIn(smeltNs, daemon);
    assert.equal(metric(series, 'smelt_dhcp_sent_total', { type: 'offer' }), 2);
    assert.equal(metric(series, 'smelt_dhcp_sent_total', { type: 'ack' }), 2);
    assert.ok(dnsmasq.child.exitCode === null, `dnsmasq exited:\n${dnsmasq.output()}`);
  });
});

describe('ProxyDHCP on the same host as the site DHCP server', () => {
  // One box is the site's DHCP server (dnsmasq, on the bridge's first address) and the PXE server (smeltd,
  // address: the bridge's second address), as on a small lab router. Both bind 0.0.0.0:67 on br0.
  const HOST_SITE = '10.96.0.1';
  const HOST_SMELT = '10.96.0.2';
  const CLIENT_MAC = '02:96:00:00:00:01';
  let host: Netns;
  let client: Netns;
  let proxy: RunningSmeltd;

  before(async () => {
    const sw = await lab.switch('pco');
    host = sw.ns;
    await host.exec(['ip', 'addr', 'add', `${HOST_SITE}/24`, 'dev', 'br0']);
    await host.exec(['ip', 'addr', 'add', `${HOST_SMELT}/24`, 'dev', 'br0']);
    client = await lab.netns('pcc');
    await sw.attach({ ns: client, name: 'c1', mac: CLIENT_MAC });
    const site = lab.spawn(host, [
      'dnsmasq',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--bind-interfaces',
      '--interface=br0',
      '--port=0',
      '--dhcp-range=10.96.0.100,10.96.0.150,255.255.255.0,10m',
      `--dhcp-leasefile=${lab.dir}/dnsmasq-host.leases`,
      `--pid-file=${lab.dir}/dnsmasq-host.pid`,
      '--user=root',
      '--no-ping',
      '--log-facility=-',
    ]);
    await site.waitFor(/DHCP, IP range/, 10_000);
    proxy = await lab.smeltd(host, {
      interface: 'br0',
      address: HOST_SMELT,
      dhcp: { mode: 'proxy' },
      http: { listen: `${HOST_SMELT}:80` },
    });
  });

  test("the proxy offer names smeltd's configured address (siaddr, 54, 66), not the interface's first", async () => {
    const result = await scapy(client, 'c1', [
      'exchange',
      '--mac',
      CLIENT_MAC,
      '--vendor-class',
      BIOS_PXE,
      '--arch',
      '0',
      '--count',
      '2',
      '--timeout',
      '3',
    ]);
    const offers = result.replies.filter((r) => r.type === 'offer');
    assert.equal(offers.length, 2, JSON.stringify(result.replies));
    const boot = offers.find((r) => r.yiaddr === '0.0.0.0');
    assert.ok(boot, 'a ProxyDHCP offer');
    assert.equal(boot.file, 'undionly.kpxe');
    // config.address is where TFTP and the 4011 boot server are; the bridge's first address is dnsmasq's.
    assert.deepEqual(
      { siaddr: boot.siaddr, serverId: optIps(boot, 54)?.[0], tftpServer: optText(boot, 66) },
      { siaddr: HOST_SMELT, serverId: HOST_SMELT, tftpServer: HOST_SMELT },
    );
  });

  test("a renewal unicast to dnsmasq's address still reaches dnsmasq", async () => {
    const offer = (
      await scapy(client, 'c1', ['exchange', '--mac', CLIENT_MAC, '--count', '1', '--timeout', '3'])
    ).replies.find((r) => r.src === HOST_SITE || optIps(r, 54)?.[0] === HOST_SITE);
    assert.ok(offer && offer.yiaddr !== '0.0.0.0', 'an offer from dnsmasq');
    const ack = await scapy(client, 'c1', [
      'exchange',
      '--mac',
      CLIENT_MAC,
      '--type',
      'request',
      '--server-id',
      HOST_SITE,
      '--requested',
      offer.yiaddr,
      '--timeout',
      '3',
    ]);
    assert.equal(ack.replies[0]?.type, 'ack', JSON.stringify(ack.replies));
    await client.exec(['ip', 'addr', 'add', `${offer.yiaddr}/24`, 'dev', 'c1']);
    const before = await metricsIn(host, proxy);
    // RENEWING (RFC 2131 §4.3.2): unicast to the server that leased it, ciaddr set, no server id, no option 50.
    const renewal = await scapy(client, 'c1', [
      'exchange',
      '--mac',
      CLIENT_MAC,
      '--type',
      'request',
      '--ciaddr',
      offer.yiaddr,
      '--unicast',
      `${HOST_SITE}:67`,
      '--timeout',
      '3',
    ]);
    const afterwards = await metricsIn(host, proxy);
    const stolen =
      metric(afterwards, 'smelt_dhcp_received_total', { type: 'request' }) -
      metric(before, 'smelt_dhcp_received_total', { type: 'request' });
    assert.equal(
      renewal.replies[0]?.type,
      'ack',
      `dnsmasq did not answer the renewal; smeltd received ${stolen} unicast REQUEST(s) meant for dnsmasq`,
    );
  });
});
