/**
 * Hostile input for the DHCP server, end to end: scapy (test/harness/dhcp_client.py) sprays port 67 with garbage
 * — random bytes of many lengths, a real DISCOVER cut inside each of its options, a wrong magic cookie, options
 * that overrun the packet, option overload (52) pointing at garbage, hlen 200, bad op codes, 0- and 1-byte
 * datagrams, 1400-byte packets, replies (op 2), BOOTP without option 53 — and then floods one MAC. Each datagram
 * must be counted under the reason it deserves, nothing but the valid ones answered, the daemon must live on,
 * and real clients must still get their leases.
 *
 * Network safety: everything runs in namespaces this file makes and removes; nothing binds a real interface.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  alive,
  createLab,
  DHCP_CLIENT,
  logLines,
  metric,
  metricsIn,
  PYTHON,
  scapy,
  smeltctlJson,
  udhcpc,
  waitUntil,
  type Lab,
  type Series,
} from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.97.0.2';
const CLIENT_MAC = '02:97:00:00:00:01';
const SECOND_MAC = '02:97:00:00:00:02';
const FLOOD_MAC = '02:97:00:00:00:66';
const RATE_LIMIT = 20;

let lab: Lab;
let serverNs: Netns;
let clients: Netns;
let daemon: RunningSmeltd;

interface Garbage {
  sent: number;
  expect: Record<'malformed' | 'not-a-request' | 'not-dhcp' | 'valid', number>;
  validMacs: string[];
  lengths: number[];
}

const delta = (after: Series[], before: Series[], name: string, labels: Record<string, string> = {}) =>
  metric(after, name, labels) - metric(before, name, labels);

function daemonAlive(): boolean {
  const pid = daemon.child.pid;
  return pid !== undefined && alive(pid);
}

function leases(): Promise<{ address: string; mac: string; state: string }[]> {
  return smeltctlJson(lab, serverNs, daemon, ['get', 'leases']);
}

before(async () => {
  lab = createLab('dhcp-hostile');
  const sw = await lab.switch('hsw');
  serverNs = await lab.netns('hsv');
  clients = await lab.netns('hcl');
  await sw.attach({ ns: serverNs, name: 'lan0', address: `${SERVER}/24` });
  await sw.attach({ ns: clients, name: 'c0', mac: CLIENT_MAC });
  await sw.attach({ ns: clients, name: 'c1', mac: SECOND_MAC });
  daemon = await lab.smeltd(serverNs, {
    interface: 'lan0',
    address: SERVER,
    dhcp: {
      mode: 'server',
      subnet: '10.97.0.0/24',
      pool: { start: '10.97.0.100', end: '10.97.0.199' },
      rateLimit: RATE_LIMIT,
    },
  });
});

after(async () => {
  await lab.close();
});

describe('hostile DHCP traffic', () => {
  test('garbage at port 67: each datagram counted under its reason, only the valid one answered', async () => {
    const before = await metricsIn(serverNs, daemon);
    const garbage = await scapy<Garbage>(clients, 'c0', ['garbage']);
    const { expect } = garbage;
    assert.ok(expect.malformed >= 50, JSON.stringify(garbage));
    assert.ok(garbage.lengths.includes(0) && garbage.lengths.includes(1) && garbage.lengths.includes(1400));
    const counted = (series: Series[]) => ({
      malformed: delta(series, before, 'smelt_dhcp_dropped_total', { reason: 'malformed' }),
      'not-a-request': delta(series, before, 'smelt_dhcp_dropped_total', { reason: 'not-a-request' }),
      'not-dhcp': delta(series, before, 'smelt_dhcp_dropped_total', { reason: 'not-dhcp' }),
      valid: delta(series, before, 'smelt_dhcp_received_total'),
    });
    // Datagrams are handled as they arrive; wait until the counters have caught up (or stopped short).
    let afterwards: Series[] = before;
    await waitUntil(
      'the counters to reach what was sent',
      async () => {
        afterwards = await metricsIn(serverNs, daemon);
        const c = counted(afterwards);
        return c.malformed + c['not-a-request'] + c['not-dhcp'] + c.valid >= garbage.sent ? true : undefined;
      },
      5000,
      200,
    ).catch(() => undefined);
    // Every datagram is accounted for, exactly: the veth loses nothing and the sender is paced.
    assert.deepEqual(counted(afterwards), expect);
    assert.equal(delta(afterwards, before, 'smelt_dhcp_received_total', { type: 'discover' }), expect.valid);
    assert.equal(delta(afterwards, before, 'smelt_dhcp_sent_total', { type: 'offer' }), expect.valid);
    assert.equal(delta(afterwards, before, 'smelt_dhcp_sent_total'), expect.valid, 'only the valid one answered');
    assert.equal(metric(afterwards, 'smelt_dhcp_errors_total'), 0);
    assert.ok(daemonAlive(), 'smeltd is alive');
    assert.deepEqual(
      logLines(daemon).filter((l) => Number(l.level) >= 50),
      [],
      'nothing logged at error level',
    );
  });

  test('a normal udhcpc DORA still succeeds, and no lease exists but its own', async () => {
    const result = await udhcpc(lab, clients, 'c0');
    assert.equal(result.code, 0, result.output);
    assert.equal(result.bound?.serverid, SERVER);
    const list = await leases();
    assert.deepEqual(
      list.map((l) => [l.mac, l.address, l.state]),
      [[CLIENT_MAC, result.bound.ip, 'bound']],
    );
  });

  test('a flood of 500 DISCOVERs from one MAC is rate-limited while another MAC gets its lease', async () => {
    const before = await metricsIn(serverNs, daemon);
    // About 250 a second (12 times the limit) for about two seconds, so that the DORA below runs inside it.
    const flood = lab.spawn(clients, [
      PYTHON,
      DHCP_CLIENT,
      'c0',
      'flood',
      '--mac',
      FLOOD_MAC,
      '--count',
      '500',
      '--interval',
      '0.004',
    ]);
    await flood.waitFor(/"flooding"/, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await udhcpc(lab, clients, 'c1');
    const stillFlooding = flood.child.exitCode === null;
    const output = await flood.waitFor(/"sent"/, 30_000);
    assert.ok(stillFlooding, `the flood was over before the DORA finished:\n${output}`);
    assert.equal(second.code, 0, second.output);
    const secondIp = second.bound?.ip ?? '';
    assert.ok(secondIp.startsWith('10.97.0.'), second.output);

    const { sent, seconds } = JSON.parse(/^\{"sent".*$/m.exec(output)?.[0] ?? '{}') as {
      sent: number;
      seconds: number;
    };
    assert.equal(sent, 500);
    const afterwards = await waitUntil('the last of the flood to be counted', async () => {
      const series = await metricsIn(serverNs, daemon);
      const limited = delta(series, before, 'smelt_dhcp_dropped_total', { reason: 'rate-limited' });
      return limited > 0 ? series : undefined;
    });
    const limited = delta(afterwards, before, 'smelt_dhcp_dropped_total', { reason: 'rate-limited' });
    // A bucket of 20 that refills at 20/s lets through at most 20 + 20 per second of flood (+1 for rounding).
    // (A quarter of a second of slack for the time the datagrams spend between scapy and the daemon.)
    const allowed = RATE_LIMIT + RATE_LIMIT * (seconds + 0.25) + 1;
    assert.ok(limited >= sent - allowed, `rate-limited ${limited} of ${sent} in ${seconds} s`);
    assert.ok(limited <= sent - RATE_LIMIT, `rate-limited ${limited}: the first ${RATE_LIMIT} should pass`);
    assert.ok(daemonAlive());
    console.log(`flood: ${sent} DISCOVERs in ${seconds} s, ${limited} rate-limited`);

    // Then 500 more as fast as scapy can send them (~10 ms; some may overflow the socket buffer, uncounted).
    const burst = await scapy<{ sent: number; seconds: number }>(clients, 'c0', [
      'flood',
      '--mac',
      FLOOD_MAC,
      '--count',
      '500',
    ]);
    const burstCounted = await waitUntil('the burst to be counted', async () => {
      const series = await metricsIn(serverNs, daemon);
      return delta(series, afterwards, 'smelt_dhcp_dropped_total', { reason: 'rate-limited' }) > 0 ? series : undefined;
    });
    const burstLimited = delta(burstCounted, afterwards, 'smelt_dhcp_dropped_total', { reason: 'rate-limited' });
    console.log(`burst: ${burst.sent} DISCOVERs in ${burst.seconds} s, ${burstLimited} rate-limited`);
    assert.ok(daemonAlive());
    // The client that was leased during the flood renews as if nothing happened.
    const again = await udhcpc(lab, clients, 'c1');
    assert.equal(again.bound?.ip, secondIp, again.output);

    const list = await leases();
    assert.deepEqual(list.map((l) => l.mac).sort(), [CLIENT_MAC, SECOND_MAC], 'the flood made no lease');
  });

  test('a DECLINE of an address outside every subnet is ignored, not stored', async () => {
    // RFC 2131 §4.3.3: a DECLINE is about an address this server suggested; 203.0.113.7 was never ours.
    const before = await metricsIn(serverNs, daemon);
    const result = await scapy(clients, 'c0', [
      'exchange',
      '--mac',
      '02:97:00:00:00:03',
      '--type',
      'decline',
      '--server-id',
      SERVER,
      '--requested',
      '203.0.113.7',
      '--timeout',
      '0.5',
    ]);
    assert.deepEqual(result.replies, []);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the store's group commit
    const list = await leases();
    assert.deepEqual(
      list.filter((l) => !l.address.startsWith('10.97.0.')),
      [],
      'a DECLINE from anyone, for any address, became a stored lease',
    );
    const afterwards = await metricsIn(serverNs, daemon);
    assert.equal(delta(afterwards, before, 'smelt_dhcp_ignored_total', { reason: 'not-ours' }), 1);
  });
});
