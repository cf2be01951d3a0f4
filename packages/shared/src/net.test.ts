import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cidrContains,
  cidrSchema,
  formatCidr,
  hostnameSchema,
  httpUrlSchema,
  ipv4Schema,
  ipv4ToNumber,
  netmaskSchema,
  netmaskToPrefix,
  numberToIpv4,
  parseCidr,
  prefixToMask,
} from './net.ts';

describe('ipv4ToNumber / numberToIpv4', () => {
  const known: [string, number][] = [
    ['0.0.0.0', 0],
    ['0.0.0.1', 1],
    ['0.0.1.0', 256],
    ['10.0.0.1', 0x0a000001],
    ['127.0.0.1', 0x7f000001],
    ['192.168.1.1', 0xc0a80101],
    ['255.255.255.255', 0xffffffff],
  ];
  for (const [text, value] of known) {
    test(`${text} is ${value} and back`, () => {
      assert.equal(ipv4ToNumber(text), value);
      assert.equal(numberToIpv4(value), text);
    });
  }

  test('addresses with the high bit set stay positive', () => {
    const value = ipv4ToNumber('200.1.2.3');
    assert.equal(value, 3355509251);
    assert.equal(numberToIpv4(3355509251), '200.1.2.3');
  });

  test('round trip over a spread of addresses', () => {
    for (let value = 0; value <= 0xffffffff; value += 0x01010101 * 7 + 13) {
      const text = numberToIpv4(value);
      assert.equal(ipv4ToNumber(text), value, text);
    }
  });

  const refused: [string, string][] = [
    ['a leading zero', '010.0.0.1'],
    ['a leading zero in the last part', '10.0.0.01'],
    ['double zero', '10.00.0.1'],
    ['256', '256.0.0.1'],
    ['999', '10.0.0.999'],
    ['3 parts', '10.0.1'],
    ['5 parts', '10.0.0.1.5'],
    ['an empty part', '10..0.1'],
    ['a trailing dot', '10.0.0.1.'],
    ['empty', ''],
    ['a sign', '+10.0.0.1'],
    ['a negative part', '10.0.-1.1'],
    ['spaces', ' 10.0.0.1'],
    ['hex', '0x0a.0.0.1'],
    ['a CIDR', '10.0.0.1/24'],
    ['a hostname', 'example.com'],
  ];
  for (const [what, text] of refused) {
    test(`refuses ${what}: ${JSON.stringify(text)}`, () => {
      assert.equal(ipv4ToNumber(text), undefined);
      assert.equal(ipv4Schema.safeParse(text).success, false);
    });
  }

  test('ipv4Schema quotes the input in its message', () => {
    const result = ipv4Schema.safeParse('010.0.0.1');
    assert.equal(result.success, false);
    assert.equal(
      result.error.issues[0]?.message,
      '"010.0.0.1" is not an IPv4 address (dotted quad, e.g. 192.168.0.10)',
    );
    assert.equal(ipv4Schema.parse('10.0.0.1'), '10.0.0.1');
  });
});

describe('netmaskToPrefix', () => {
  const known: [string, number][] = [
    ['255.255.255.0', 24],
    ['24', 24],
    ['/24', 24],
    ['0', 0],
    ['/0', 0],
    ['32', 32],
    ['255.255.255.255', 32],
    ['0.0.0.0', 0],
    ['255.255.255.252', 30],
    ['255.255.240.0', 20],
    ['128.0.0.0', 1],
    ['8', 8],
  ];
  for (const [text, prefix] of known) {
    test(`${text} is /${prefix}`, () => {
      assert.equal(netmaskToPrefix(text), prefix);
    });
  }

  const refused = [
    '255.0.255.0',
    '255.255.255.1',
    '0.255.255.255',
    '33',
    '/33',
    '024',
    '',
    '/',
    '24.5',
    '255.255.256.0',
  ];
  for (const text of refused) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.equal(netmaskToPrefix(text), undefined);
    });
  }

  test('prefixToMask gives the mask of each prefix', () => {
    assert.equal(prefixToMask(0), 0);
    assert.equal(prefixToMask(1), 0x80000000);
    assert.equal(prefixToMask(24), 0xffffff00);
    assert.equal(prefixToMask(31), 0xfffffffe);
    assert.equal(prefixToMask(32), 0xffffffff);
  });

  test('netmaskSchema stores the dotted-quad form whatever was given', () => {
    assert.equal(netmaskSchema.parse('24'), '255.255.255.0');
    assert.equal(netmaskSchema.parse('/20'), '255.255.240.0');
    assert.equal(netmaskSchema.parse('255.255.255.128'), '255.255.255.128');
    const result = netmaskSchema.safeParse('255.0.255.0');
    assert.equal(result.success, false);
    assert.equal(result.error.issues[0]?.message, '"255.0.255.0" is not a netmask (e.g. 255.255.255.0 or 24)');
  });
});

describe('parseCidr / cidrContains', () => {
  test('parses a subnet', () => {
    assert.deepEqual(parseCidr('10.0.0.0/24'), { network: 0x0a000000, prefix: 24 });
    assert.deepEqual(parseCidr('192.168.0.0/16'), { network: 0xc0a80000, prefix: 16 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { network: 0, prefix: 0 });
    assert.deepEqual(parseCidr('10.1.2.3/32'), { network: 0x0a010203, prefix: 32 });
  });

  test('clears host bits to find the network', () => {
    assert.deepEqual(parseCidr('10.0.0.5/24'), { network: 0x0a000000, prefix: 24 });
    assert.deepEqual(parseCidr('192.168.1.200/28'), { network: 0xc0a801c0, prefix: 28 });
    assert.deepEqual(parseCidr('255.255.255.255/1'), { network: 0x80000000, prefix: 1 });
  });

  const refused = ['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/024', '10.0.0.0/24/8', '10.0.0/24', '/24', ''];
  for (const text of refused) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.equal(parseCidr(text), undefined);
    });
  }

  test('formatCidr writes it back', () => {
    assert.equal(formatCidr({ network: 0x0a000000, prefix: 24 }), '10.0.0.0/24');
  });

  test('cidrContains tells inside from outside', () => {
    const subnet = parseCidr('10.0.0.0/24');
    assert.ok(subnet);
    const at = (text: string) => ipv4ToNumber(text) ?? assert.fail(text);
    assert.equal(cidrContains(subnet, at('10.0.0.0')), true);
    assert.equal(cidrContains(subnet, at('10.0.0.1')), true);
    assert.equal(cidrContains(subnet, at('10.0.0.255')), true);
    assert.equal(cidrContains(subnet, at('10.0.1.0')), false);
    assert.equal(cidrContains(subnet, at('9.255.255.255')), false);
    assert.equal(cidrContains(subnet, at('138.0.0.1')), false);
  });

  test('cidrContains for high networks, /0 and /32', () => {
    const at = (text: string) => ipv4ToNumber(text) ?? assert.fail(text);
    const high = parseCidr('192.168.0.0/16');
    assert.ok(high);
    assert.equal(cidrContains(high, at('192.168.255.254')), true);
    assert.equal(cidrContains(high, at('192.169.0.0')), false);
    const all = parseCidr('0.0.0.0/0');
    assert.ok(all);
    assert.equal(cidrContains(all, at('255.255.255.255')), true);
    assert.equal(cidrContains(all, at('0.0.0.0')), true);
    const one = parseCidr('10.1.2.3/32');
    assert.ok(one);
    assert.equal(cidrContains(one, at('10.1.2.3')), true);
    assert.equal(cidrContains(one, at('10.1.2.4')), false);
  });
});

describe('cidrSchema', () => {
  test('accepts a subnet with its host bits clear', () => {
    assert.equal(cidrSchema.parse('10.0.0.0/24'), '10.0.0.0/24');
    assert.equal(cidrSchema.parse('0.0.0.0/0'), '0.0.0.0/0');
    assert.equal(cidrSchema.parse('10.0.0.5/32'), '10.0.0.5/32');
  });

  test('refuses host bits and suggests the network', () => {
    const result = cidrSchema.safeParse('10.0.0.5/24');
    assert.equal(result.success, false);
    assert.equal(result.error.issues.length, 1);
    assert.equal(result.error.issues[0]?.message, '"10.0.0.5/24" has host bits set: did you mean 10.0.0.0/24?');
  });

  test('refuses what is not CIDR', () => {
    const result = cidrSchema.safeParse('10.0.0.0');
    assert.equal(result.success, false);
    assert.equal(result.error.issues[0]?.message, '"10.0.0.0" is not a subnet in CIDR form (e.g. 10.0.0.0/24)');
    assert.equal(cidrSchema.safeParse('10.0.0.0/33').success, false);
  });
});

describe('hostnameSchema', () => {
  const accepted = [
    'web01',
    'web-01',
    'web01.example.com',
    'WEB01.Example.COM',
    '1host',
    'a',
    'x'.repeat(63),
    `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, // 253 characters
  ];
  for (const name of accepted) {
    test(`accepts ${name.length > 20 ? `${name.length} characters` : name}`, () => {
      assert.equal(hostnameSchema.parse(name), name);
    });
  }

  const refused: [string, string][] = [
    ['a leading hyphen', '-web'],
    ['a trailing hyphen', 'web-'],
    ['a label ending in a hyphen', 'web-.example.com'],
    ['an empty label', 'web..example.com'],
    ['a trailing dot', 'web.example.com.'],
    ['a leading dot', '.example.com'],
    ['an underscore', 'web_01'],
    ['a space', 'web 01'],
    ['empty', ''],
    ['a 64-character label', 'x'.repeat(64)],
    ['254 characters', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`],
  ];
  for (const [what, name] of refused) {
    test(`refuses ${what}`, () => {
      assert.equal(hostnameSchema.safeParse(name).success, false);
    });
  }

  test('explains what a hostname is', () => {
    const result = hostnameSchema.safeParse('web_01');
    assert.equal(result.success, false);
    assert.equal(
      result.error.issues[0]?.message,
      'not a hostname: letters, digits and hyphens in dot-separated labels of at most 63 characters',
    );
  });
});

describe('httpUrlSchema', () => {
  test('accepts http and https, refuses other schemes', () => {
    assert.equal(httpUrlSchema.parse('http://10.0.0.2/debian'), 'http://10.0.0.2/debian');
    assert.equal(httpUrlSchema.parse('https://deb.debian.org/debian'), 'https://deb.debian.org/debian');
    assert.equal(httpUrlSchema.safeParse('ftp://example.com/x').success, false);
    assert.equal(httpUrlSchema.safeParse('/srv/debian').success, false);
  });
});
