import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv4Text, parseIpv4Number } from './header.ts';

test('parseIpv4Number: strict dotted quads only', () => {
  assert.equal(parseIpv4Number('0.0.0.0'), 0);
  assert.equal(parseIpv4Number('10.64.1.2'), 0x0a400102);
  assert.equal(parseIpv4Number('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4Number('192.168.100.9'), 0xc0a86409);
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '256.0.0.1',
    '1.2.3.256',
    '01.2.3.4',
    '1.2.3.00',
    '1234.1.1.1',
    '1..2.3',
    '1.2.3.',
    '+1.2.3.4',
    '1.2.3.-4',
    '1.2.3.4/24',
    '١.2.3.4', // an Arabic-Indic digit: only ASCII digits count
    '0x1.2.3.4',
  ]) {
    assert.equal(parseIpv4Number(bad), undefined, JSON.stringify(bad));
  }
});

test('parseIpv4Number agrees with a regular expression of the same grammar on random strings, and with ipv4Text', () => {
  const grammar = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
  const expected = (text: string): number | undefined => {
    const match = grammar.exec(text);
    if (!match) return undefined;
    const octets = match.slice(1).map(Number);
    return octets.some((octet) => octet > 255) ? undefined : octets.reduce((value, octet) => value * 256 + octet, 0);
  };
  const alphabet = '0123456789.. 0a';
  let seed = 7;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let valid = 0;
  for (let i = 0; i < 20_000; i++) {
    let text = '';
    if (random(2) === 0) {
      // Three to five groups of up to four digits: near misses of the grammar as well as hits.
      const groups = Array.from({ length: 3 + random(3) }, () =>
        Array.from({ length: random(4) === 0 ? random(5) : 1 + random(3) }, () => String(random(10))).join(''),
      );
      text = groups.join('.');
    } else {
      const length = random(17);
      for (let j = 0; j < length; j++) text += alphabet.charAt(random(alphabet.length));
    }
    const want = expected(text);
    if (want !== undefined) valid++;
    assert.equal(parseIpv4Number(text), want, JSON.stringify(text));
  }
  assert.ok(valid > 20, `only ${valid} valid addresses among the random strings`);
  for (let i = 0; i < 2_000; i++) {
    const value = (random(0x10000) * 0x10000 + random(0x10000)) >>> 0;
    assert.equal(parseIpv4Number(ipv4Text(value)), value);
  }
});
