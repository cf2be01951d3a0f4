import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ipv4ToNumber, numberToIpv4 } from '@smelt/shared/net';
import { createLeaseTable, type Reservations } from './lease-table.ts';
import { subnetsFromConfig } from './subnets.ts';
import { configSchema } from '../config/schema.ts';

const ip = (text: string): number => ipv4ToNumber(text) ?? Number.NaN;

function setup(options: { start?: string; end?: string; reservations?: Record<string, string> } = {}) {
  let clock = 1_000_000;
  const config = configSchema.parse({
    address: '10.0.0.2',
    interface: 'eth0',
    dhcp: {
      mode: 'server',
      subnet: '10.0.0.0/24',
      pool: { start: options.start ?? '10.0.0.100', end: options.end ?? '10.0.0.103' },
      gateway: '10.0.0.1',
      subnets: [{ subnet: '10.9.0.0/24', pool: { start: '10.9.0.10', end: '10.9.0.20' } }],
    },
  });
  const subnets = subnetsFromConfig(config.dhcp);
  const reserved = new Map(Object.entries(options.reservations ?? {}).map(([mac, a]) => [mac, ip(a)]));
  const reservations: Reservations = {
    addressFor: (mac) => reserved.get(mac),
    macFor: (address) => [...reserved].find(([, a]) => a === address)?.[0],
  };
  const table = createLeaseTable(subnets, {
    now: () => clock,
    offerTimeoutMs: 60_000,
    declineTimeoutMs: 3_600_000,
    excluded: new Set([ip('10.0.0.2'), ip('10.0.0.1')]),
    reservations,
  });
  const [lan, remote] = subnets;
  assert.ok(lan && remote);
  return {
    table,
    lan,
    remote,
    advance: (ms: number) => {
      clock += ms;
    },
    offer: (mac: string, requested?: string) => {
      const result = table.offer(mac, lan, requested === undefined ? undefined : ip(requested));
      return 'address' in result ? numberToIpv4(result.address) : 'full';
    },
  };
}

describe('lease table', () => {
  test('hands out the pool in order and holds each offer for its client', () => {
    const { offer } = setup();
    assert.equal(offer('m1'), '10.0.0.100');
    assert.equal(offer('m2'), '10.0.0.101');
    assert.equal(offer('m1'), '10.0.0.100', 'a repeated DISCOVER gets the same address');
  });

  test('a full pool says so, and recovers when an offer times out', () => {
    const { offer, advance } = setup();
    for (const mac of ['a', 'b', 'c', 'd']) assert.notEqual(offer(mac), 'full');
    assert.equal(offer('e'), 'full');
    assert.equal(offer('f'), 'full');
    advance(61_000);
    assert.equal(offer('e'), '10.0.0.100', 'the oldest expired hold is reclaimed');
  });

  test('a bound lease is kept for its client, refused to others, and returned after release', () => {
    const { table, lan, offer } = setup();
    offer('m1');
    const changed = table.bind('m1', lan, ip('10.0.0.100'), 3600, 'web1');
    assert.deepEqual(
      changed.map((e) => [numberToIpv4(e.address), e.state, e.hostname]),
      [['10.0.0.100', 'bound', 'web1']],
    );
    assert.equal(table.available('m2', lan, ip('10.0.0.100')), false);
    assert.equal(offer('m2', '10.0.0.100'), '10.0.0.101', 'a requested address in use is not given');
    assert.equal(table.release('m2', ip('10.0.0.100')), undefined, 'only the holder releases');
    assert.equal(table.release('m1', ip('10.0.0.100'))?.state, 'released');
    assert.equal(offer('m1'), '10.0.0.100', 'the same client gets its released address back');
  });

  test('a requested address is honoured when free, and never outside the pool', () => {
    const { offer } = setup();
    assert.equal(offer('m1', '10.0.0.103'), '10.0.0.103');
    assert.equal(offer('m2', '10.0.0.50'), '10.0.0.100');
    assert.equal(offer('m3', '10.0.0.1'), '10.0.0.101', 'the gateway is excluded');
  });

  test('reservations: the reserved client gets its address even outside the pool, nobody else gets it', () => {
    const { table, lan, offer } = setup({ reservations: { r1: '10.0.0.50', r2: '10.0.0.100' } });
    assert.equal(offer('r1'), '10.0.0.50');
    assert.equal(offer('m1'), '10.0.0.101', "the pool skips another machine's reservation");
    assert.equal(table.available('m1', lan, ip('10.0.0.50')), false);
    assert.equal(offer('r2', '10.0.0.102'), '10.0.0.100', 'the reservation wins over a requested address');
  });

  test('a declined address stays out of the pool until its quarantine ends', () => {
    const { table, lan, offer, advance } = setup({ end: '10.0.0.100' });
    assert.equal(offer('m1'), '10.0.0.100');
    assert.equal(table.decline('m1', ip('10.0.0.100'))?.state, 'declined');
    assert.equal(offer('m2'), 'full');
    assert.equal(offer('m1'), 'full', 'not even for the client that declined it');
    advance(3_600_001);
    assert.equal(offer('m2'), '10.0.0.100');
    assert.equal(table.stats(lan).offered, 1);
  });

  test('binding a new address releases the client’s previous one in that subnet', () => {
    const { table, lan } = setup();
    table.bind('m1', lan, ip('10.0.0.100'), 3600);
    const changed = table.bind('m1', lan, ip('10.0.0.102'), 3600);
    assert.deepEqual(
      changed.map((e) => [numberToIpv4(e.address), e.state]),
      [
        ['10.0.0.100', 'released'],
        ['10.0.0.102', 'bound'],
      ],
    );
  });

  test('each subnet has its own pool; a client may hold one lease per subnet', () => {
    const { table, lan, remote } = setup();
    const a = table.offer('m1', remote);
    assert.deepEqual(a, { address: ip('10.9.0.10') });
    table.bind('m1', remote, ip('10.9.0.10'), 3600);
    table.bind('m1', lan, ip('10.0.0.100'), 3600);
    assert.equal(table.entryOf('m1', remote)?.state, 'bound');
    assert.equal(table.entryOf('m1', lan)?.state, 'bound');
    assert.equal(table.subnetFor(ip('10.9.0.1'))?.name, '10.9.0.0/24');
  });

  test('forgetOffer frees a hold when the client chose another server', () => {
    const { table, offer } = setup({ end: '10.0.0.100' });
    offer('m1');
    assert.equal(offer('m2'), 'full');
    table.forgetOffer('m1');
    assert.equal(offer('m2'), '10.0.0.100');
  });

  test('leases loaded at start-up are honoured', () => {
    const { table, offer } = setup();
    table.load([{ address: ip('10.0.0.100'), mac: 'old', state: 'bound', grantedAt: 0, expiresAt: 10_000_000 }]);
    assert.equal(offer('new'), '10.0.0.101');
    assert.equal(offer('old'), '10.0.0.100');
  });
});
