import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { InvalidMacError, macSchema, macToDashes, parseMac, tryParseMac } from './mac.ts';

const CANONICAL = 'aa:bb:cc:dd:ee:ff';

describe('parseMac', () => {
  const accepted: [string, string][] = [
    ['colons, upper case', 'AA:BB:CC:DD:EE:FF'],
    ['colons, lower case', 'aa:bb:cc:dd:ee:ff'],
    ['colons, mixed case', 'aA:Bb:cC:dD:Ee:fF'],
    ['dashes, lower case', 'aa-bb-cc-dd-ee-ff'],
    ['dashes, upper case', 'AA-BB-CC-DD-EE-FF'],
    ['Cisco dots', 'aabb.ccdd.eeff'],
    ['Cisco dots, upper case', 'AABB.CCDD.EEFF'],
    ['bare hex, upper case', 'AABBCCDDEEFF'],
    ['bare hex, lower case', 'aabbccddeeff'],
    ['surrounding spaces', '  AA:BB:CC:DD:EE:FF  '],
    ['surrounding tab and newline', '\taa-bb-cc-dd-ee-ff\n'],
  ];
  for (const [what, input] of accepted) {
    test(`accepts ${what}: ${JSON.stringify(input)}`, () => {
      assert.equal(parseMac(input), CANONICAL);
      assert.equal(tryParseMac(input), CANONICAL);
    });
  }

  test('keeps digits and leading zeros in each octet', () => {
    assert.equal(parseMac('00-1B-21-0A-09-F0'), '00:1b:21:0a:09:f0');
    assert.equal(parseMac('001b.210a.09f0'), '00:1b:21:0a:09:f0');
    assert.equal(parseMac('525400123456'), '52:54:00:12:34:56');
  });

  const rejected: [string, string][] = [
    ['mixed separators', 'aa:bb-cc:dd:ee:ff'],
    ['5 octets', 'aa:bb:cc:dd:ee'],
    ['7 octets', 'aa:bb:cc:dd:ee:ff:00'],
    ['single-digit octets', 'a:b:c:d:e:f'],
    ['non-hex digits', 'gg:bb:cc:dd:ee:ff'],
    ['empty', ''],
    ['only spaces', '   '],
    ['short Cisco group', 'aabb.ccdd.eef'],
    ['11 bare hex digits', 'aabbccddeef'],
    ['13 bare hex digits', 'aabbccddeeff0'],
    ['trailing separator', 'aa:bb:cc:dd:ee:ff:'],
    ['space inside', 'aa:bb:cc dd:ee:ff'],
    ['Cisco with colons', 'aabb:ccdd:eeff'],
  ];
  for (const [what, input] of rejected) {
    test(`refuses ${what}: ${JSON.stringify(input)}`, () => {
      assert.equal(tryParseMac(input), undefined);
      assert.throws(
        () => parseMac(input),
        (error: unknown) => {
          assert.ok(error instanceof InvalidMacError);
          assert.equal(error.name, 'InvalidMacError');
          assert.equal(error.input, input);
          assert.ok(error.message.startsWith(`"${input}" is not a MAC address`), error.message);
          return true;
        },
      );
    });
  }

  test('the error names the accepted spellings', () => {
    assert.equal(
      new InvalidMacError('nope').message,
      '"nope" is not a MAC address: use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff',
    );
  });
});

describe('macSchema', () => {
  test('yields the canonical form of every spelling', () => {
    assert.equal(macSchema.parse('AA-BB-CC-DD-EE-FF'), CANONICAL);
    assert.equal(macSchema.parse('aabb.ccdd.eeff'), CANONICAL);
    assert.equal(macSchema.parse(' AABBCCDDEEFF '), CANONICAL);
  });

  test('reports one issue quoting the input', () => {
    const result = macSchema.safeParse('aa:bb-cc:dd:ee:ff');
    assert.equal(result.success, false);
    assert.equal(result.error.issues.length, 1);
    assert.equal(result.error.issues[0]?.message, new InvalidMacError('aa:bb-cc:dd:ee:ff').message);
    assert.ok(result.error.issues[0].message.startsWith('"aa:bb-cc:dd:ee:ff" is not a MAC address'));
    assert.deepEqual(result.error.issues[0].path, []);
  });

  test('refuses what is not a string', () => {
    assert.equal(macSchema.safeParse(0xaabbccddeeff).success, false);
    assert.equal(macSchema.safeParse(undefined).success, false);
  });

  test('reports the issue at the field path inside an object', () => {
    const result = z.object({ mac: macSchema }).safeParse({ mac: 'aabb.ccdd.eef' });
    assert.equal(result.success, false);
    assert.deepEqual(result.error.issues[0]?.path, ['mac']);
    assert.ok(result.error.issues[0].message.startsWith('"aabb.ccdd.eef" is not a MAC address'));
  });
});

describe('macToDashes', () => {
  test('turns the canonical form into the PXELINUX dash form', () => {
    assert.equal(macToDashes('aa:bb:cc:dd:ee:ff'), 'aa-bb-cc-dd-ee-ff');
    assert.equal(macToDashes('52:54:00:12:34:56'), '52-54-00-12-34-56');
  });

  test('round-trips through parseMac', () => {
    assert.equal(parseMac(macToDashes('00:1b:21:0a:09:f0')), '00:1b:21:0a:09:f0');
  });
});
