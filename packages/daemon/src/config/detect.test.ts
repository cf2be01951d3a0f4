import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, test } from 'node:test';
import { ipv4ToNumber, numberToIpv4 } from '@smelt/shared/net';
import { choosePool, DetectError, detectConfig } from './detect.ts';
import type { HostFacts } from './detect.ts';
import { configSchema } from './schema.ts';

const HEADER =
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';

/** A /proc/net/route row; addresses are little-endian hex as the kernel writes them on x86. */
function route(iface: string, destination: string, gateway: string, flags: string, metric: number, mask: string) {
  return `${iface}\t${destination}\t${gateway}\t${flags}\t0\t0\t${metric}\t${mask}\t0\t0\t0                                                                               `;
}

/** eth0 192.168.1.10/24 with the default route via 192.168.1.1, plus docker0 172.17.0.0/16. */
const ROUTES = [
  HEADER,
  route('eth0', '00000000', '0101A8C0', '0003', 100, '00000000'),
  route('docker0', '000011AC', '00000000', '0001', 0, '0000FFFF'),
  route('eth0', '0001A8C0', '00000000', '0001', 100, '00FFFFFF'),
  '',
].join('\n');

function v4(address: string, netmask: string, prefix: number, mac: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac, internal, cidr: `${address}/${prefix}` };
}
function v6(address: string, prefix: number, mac: string, internal = false): NetworkInterfaceInfo {
  return {
    address,
    netmask: 'ffff:ffff:ffff:ffff::',
    family: 'IPv6',
    mac,
    internal,
    cidr: `${address}/${prefix}`,
    scopeid: 0,
  };
}

function interfaces(
  eth0Address = '192.168.1.10',
  eth0Mask = '255.255.255.0',
  eth0Prefix = 24,
): HostFacts['interfaces'] {
  return {
    lo: [v4('127.0.0.1', '255.0.0.0', 8, '00:00:00:00:00:00', true), v6('::1', 128, '00:00:00:00:00:00', true)],
    eth0: [
      v4(eth0Address, eth0Mask, eth0Prefix, '52:54:00:12:34:56'),
      v6('fe80::5054:ff:fe12:3456', 64, '52:54:00:12:34:56'),
    ],
    docker0: [v4('172.17.0.1', '255.255.0.0', 16, '02:42:ac:11:00:01')],
    wg0: [v6('fd00::1', 64, '00:00:00:00:00:00')],
  };
}

const RESOLV = [
  '# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).',
  'nameserver 127.0.0.53',
  'nameserver 192.168.1.53',
  '# nameserver 9.9.9.9',
  'nameserver 2001:4860:4860::8888',
  'nameserver 1.1.1.1',
  'options edns0 trust-ad',
  'search lan',
  '',
].join('\n');

function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  const links = ['lo', 'eth0', 'docker0', 'wg0', 'eth1'];
  return { interfaces: interfaces(), links, routeTable: ROUTES, resolvConf: RESOLV, ...overrides };
}

const n = (text: string) => ipv4ToNumber(text) ?? assert.fail(`not an address: ${text}`);

describe('detectConfig', () => {
  test('an interface that exists but is down is called down, not missing', () => {
    assert.throws(
      () => detectConfig(facts(), 'eth1'),
      (error: unknown) =>
        error instanceof DetectError &&
        error.message.startsWith('interface "eth1" is down or has no address (ip link set eth1 up)'),
    );
  });

  test('picks the default-route interface when none is given', () => {
    const config = detectConfig(facts());
    assert.equal(config.interface, 'eth0');
    assert.equal(config.address, '192.168.1.10');
  });

  test('reads the gateway, the subnet and a pool from .100 to .199', () => {
    const { dhcp } = detectConfig(facts());
    assert.equal(dhcp?.subnet, '192.168.1.0/24');
    assert.equal(dhcp.gateway, '192.168.1.1');
    assert.deepEqual(dhcp.pool, { start: '192.168.1.100', end: '192.168.1.199' });
    assert.equal(dhcp.mode, 'proxy');
    assert.equal(dhcp.leaseTime, 3600);
  });

  test('takes the nameservers from resolv.conf, skipping loopback, IPv6 and comments', () => {
    assert.deepEqual(detectConfig(facts()).dhcp?.dns, ['192.168.1.53', '1.1.1.1']);
  });

  test('falls back to the gateway for DNS when resolv.conf has only a loopback resolver', () => {
    const config = detectConfig(facts({ resolvConf: 'nameserver 127.0.0.53\noptions edns0\n' }));
    assert.deepEqual(config.dhcp?.dns, ['192.168.1.1']);
  });

  test('the whole detected config', () => {
    assert.deepEqual(detectConfig(facts()), {
      interface: 'eth0',
      address: '192.168.1.10',
      dataDir: '/var/lib/smelt',
      api: { listen: '0.0.0.0:7480' },
      http: { listen: '0.0.0.0:80' },
      tftp: { listen: '192.168.1.10:69' },
      dhcp: {
        mode: 'proxy',
        subnet: '192.168.1.0/24',
        pool: { start: '192.168.1.100', end: '192.168.1.199' },
        gateway: '192.168.1.1',
        dns: ['192.168.1.53', '1.1.1.1'],
        leaseTime: 3600,
      },
      ipxe: { dir: '/usr/lib/ipxe' },
      store: { kind: 'sqlite' },
      log: { level: 'info' },
    });
  });

  test('a server at .150 in a /24: the pool stops before it', () => {
    const config = detectConfig(facts({ interfaces: interfaces('192.168.1.150') }));
    assert.equal(config.address, '192.168.1.150');
    assert.deepEqual(config.dhcp?.pool, { start: '192.168.1.100', end: '192.168.1.149' });
    assert.equal(configSchema.safeParse(config).success, true);
  });

  test('a server at .100 in a /24: the pool starts after it', () => {
    const config = detectConfig(facts({ interfaces: interfaces('192.168.1.100') }));
    assert.deepEqual(config.dhcp?.pool, { start: '192.168.1.101', end: '192.168.1.199' });
  });

  test('a /28: the pool is in the upper half, without the server and the gateway', () => {
    const routeTable = [
      HEADER,
      route('eth0', '00000000', '0102010A', '0003', 100, '00000000'), // via 10.1.2.1
      route('eth0', '0002010A', '00000000', '0001', 100, 'F0FFFFFF'), // 10.1.2.0/28
      '',
    ].join('\n');
    const config = detectConfig(
      facts({ routeTable, interfaces: interfaces('10.1.2.10', '255.255.255.240', 28), resolvConf: '' }),
    );
    assert.equal(config.dhcp?.subnet, '10.1.2.0/28');
    assert.equal(config.dhcp.gateway, '10.1.2.1');
    // Upper half is .8-.14; the server at .10 splits it and the larger side, .11-.14, is kept.
    assert.deepEqual(config.dhcp.pool, { start: '10.1.2.11', end: '10.1.2.14' });
    assert.deepEqual(config.dhcp.dns, ['10.1.2.1']);
    assert.equal(configSchema.safeParse(config).success, true);
  });

  test('a /30 has no room for a pool', () => {
    const routeTable = [
      HEADER,
      route('eth0', '00000000', '0100A8C0', '0003', 0, '00000000'), // via 192.168.0.1
      route('eth0', '0000A8C0', '00000000', '0001', 0, 'FCFFFFFF'), // 192.168.0.0/30
      '',
    ].join('\n');
    const config = detectConfig(facts({ routeTable, interfaces: interfaces('192.168.0.2', '255.255.255.252', 30) }));
    assert.equal(config.dhcp?.subnet, '192.168.0.0/30');
    assert.equal(config.dhcp.gateway, '192.168.0.1');
    assert.equal(config.dhcp.pool, undefined);
    assert.equal(Object.hasOwn(config.dhcp, 'pool'), false);
    assert.equal(configSchema.safeParse(config).success, true);
  });

  test('a named interface without a default route has no gateway', () => {
    const config = detectConfig(facts(), 'docker0');
    assert.equal(config.interface, 'docker0');
    assert.equal(config.address, '172.17.0.1');
    assert.equal(config.dhcp?.subnet, '172.17.0.0/16');
    assert.equal(config.dhcp.gateway, undefined);
    assert.deepEqual(config.dhcp.pool, { start: '172.17.0.100', end: '172.17.0.199' });
    // No gateway offered: the host's resolvers on another network are out of the booted machines' reach.
    assert.deepEqual(config.dhcp.dns, []);
    assert.equal(config.tftp?.listen, '172.17.0.1:69');
  });

  test('without a gateway, only resolvers on the served subnet are offered', () => {
    const resolvConf = 'nameserver 192.168.1.53\nnameserver 172.17.0.53\nnameserver 1.1.1.1\n';
    assert.deepEqual(detectConfig(facts({ resolvConf }), 'docker0').dhcp?.dns, ['172.17.0.53']);
    // With a gateway all of them are reachable through it.
    assert.deepEqual(detectConfig(facts({ resolvConf }), 'eth0').dhcp?.dns, ['192.168.1.53', '172.17.0.53', '1.1.1.1']);
  });

  test('a named interface wins over the default route', () => {
    assert.equal(detectConfig(facts(), 'eth0').interface, 'eth0');
    assert.equal(detectConfig(facts(), 'lo').address, '127.0.0.1');
  });

  test('an unknown interface: the error lists the interfaces that exist', () => {
    assert.throws(
      () => detectConfig(facts(), 'eth9'),
      (error: unknown) => {
        assert.ok(error instanceof DetectError);
        assert.equal(error.name, 'DetectError');
        assert.equal(
          error.message,
          'no interface named "eth9"; interfaces: lo (127.0.0.1/8), eth0 (192.168.1.10/24), docker0 (172.17.0.1/16), wg0 (no IPv4), eth1 (down or no address)',
        );
        return true;
      },
    );
  });

  test('an interface without IPv4', () => {
    assert.throws(
      () => detectConfig(facts(), 'wg0'),
      (error: unknown) => {
        assert.ok(error instanceof DetectError);
        assert.match(error.message, /^interface "wg0" has no IPv4 address; interfaces: lo \(127\.0\.0\.1\/8\), /);
        return true;
      },
    );
  });

  test('no default route and no interface given', () => {
    const routeTable = [HEADER, route('eth0', '0001A8C0', '00000000', '0001', 100, '00FFFFFF'), ''].join('\n');
    assert.throws(
      () => detectConfig(facts({ routeTable })),
      (error: unknown) => {
        assert.ok(error instanceof DetectError);
        assert.match(error.message, /^no default route, so no interface to detect; pass --interface \(interfaces: lo /);
        assert.ok(error.message.includes('eth0 (192.168.1.10/24)'), error.message);
        return true;
      },
    );
  });

  test('an empty route table (no /proc) is no default route', () => {
    assert.throws(() => detectConfig(facts({ routeTable: '' })), DetectError);
  });

  test('the detected config passes configSchema, in proxy and in server mode', () => {
    const detected = detectConfig(facts());
    const parsed = configSchema.parse(detected);
    assert.equal(parsed.dhcp.mode, 'proxy');
    assert.equal(parsed.address, '192.168.1.10');
    const server = configSchema.parse({ ...detected, dhcp: { ...detected.dhcp, mode: 'server' } });
    assert.deepEqual(server.dhcp.pool, { start: '192.168.1.100', end: '192.168.1.199' });
  });
});

describe('choosePool', () => {
  const pool = (network: string, prefix: number, exclude: string[]) => {
    const result = choosePool(n(network), prefix, exclude.map(n));
    return result && { start: numberToIpv4(result.start), end: numberToIpv4(result.end) };
  };

  test('a /24: .100 to .199', () => {
    assert.deepEqual(pool('10.0.0.0', 24, []), { start: '10.0.0.100', end: '10.0.0.199' });
  });

  test('a /16: 100 addresses from host 100', () => {
    assert.deepEqual(pool('172.16.0.0', 16, []), { start: '172.16.0.100', end: '172.16.0.199' });
  });

  test('addresses outside the pool change nothing', () => {
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.1', '10.0.0.2', '10.0.0.254']), {
      start: '10.0.0.100',
      end: '10.0.0.199',
    });
  });

  test('an excluded address keeps the larger side', () => {
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.150']), { start: '10.0.0.100', end: '10.0.0.149' });
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.120']), { start: '10.0.0.121', end: '10.0.0.199' });
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.199']), { start: '10.0.0.100', end: '10.0.0.198' });
  });

  test('several excluded addresses, in any order', () => {
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.180', '10.0.0.110']), { start: '10.0.0.111', end: '10.0.0.179' });
    assert.deepEqual(pool('10.0.0.0', 24, ['10.0.0.101', '10.0.0.100']), { start: '10.0.0.102', end: '10.0.0.199' });
  });

  test('a /25: the upper half, without network and broadcast', () => {
    assert.deepEqual(pool('10.0.0.0', 25, []), { start: '10.0.0.64', end: '10.0.0.126' });
  });

  test('a /28 and a /29', () => {
    assert.deepEqual(pool('10.1.2.0', 28, ['10.1.2.1']), { start: '10.1.2.8', end: '10.1.2.14' });
    assert.deepEqual(pool('10.1.2.0', 29, []), { start: '10.1.2.4', end: '10.1.2.6' });
    // .5 splits .4-.6 into two equal sides; either is one address.
    const split = pool('10.1.2.0', 29, ['10.1.2.5']);
    assert.ok(
      split && split.start === split.end && ['10.1.2.4', '10.1.2.6'].includes(split.start),
      JSON.stringify(split),
    );
  });

  test('a /30, /31 and /32 have no pool', () => {
    assert.equal(pool('10.0.0.0', 30, []), undefined);
    assert.equal(pool('10.0.0.0', 31, []), undefined);
    assert.equal(pool('10.0.0.1', 32, []), undefined);
  });

  test('a /29 whose only addresses are excluded has no pool', () => {
    assert.equal(pool('10.1.2.0', 29, ['10.1.2.4', '10.1.2.5', '10.1.2.6']), undefined);
  });

  test('never contains an excluded address, for every prefix and position', () => {
    for (let prefix = 16; prefix <= 29; prefix++) {
      const network = n('10.20.0.0');
      const size = 2 ** (32 - prefix);
      for (const offset of [1, 2, size / 2, size / 2 + 1, 100, 150, size - 2]) {
        if (offset >= size - 1) continue;
        const excluded = network + offset;
        const result = choosePool(network, prefix, [excluded, network + 1]);
        if (!result) continue;
        assert.ok(result.start > network && result.end < network + size - 1, `/${prefix} inside`);
        assert.ok(result.start <= result.end);
        assert.ok(excluded < result.start || excluded > result.end, `/${prefix} excludes +${offset}`);
        assert.ok(network + 1 < result.start || network + 1 > result.end, `/${prefix} excludes the gateway`);
      }
    }
  });
});
