import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blksizeForMtu, checkOptions, negotiate, windowForReceiveBuffer } from './options.ts';
import type { OptionLimits } from './options.ts';

const limits: OptionLimits = { maxBlksize: 65464, maxWindowsize: 64 };
const options = (...pairs: [string, string][]) => new Map(pairs);

describe('tftp option negotiation', () => {
  test("OVMF's first request: tsize, blksize and windowsize all acknowledged, in the client's order", () => {
    const result = negotiate(
      options(['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']),
      { ...limits, mtuBlksize: 1468 },
      1_048_576,
    );
    assert.equal(result.blksize, 1468);
    assert.equal(result.windowsize, 4);
    assert.equal(result.timeout, undefined);
    assert.deepEqual(
      [...(result.oack ?? [])],
      [
        ['tsize', '1048576'],
        ['blksize', '1468'],
        ['windowsize', '4'],
      ],
    );
  });

  test('no options, or only unknown ones: no OACK, RFC 1350 defaults', () => {
    for (const requested of [options(), options(['multicast', ''], ['rollover', '0'])]) {
      assert.deepEqual(negotiate(requested, limits, 10), { blksize: 512, windowsize: 1 });
    }
  });

  test('unknown options are left out of an OACK that acknowledges known ones', () => {
    const result = negotiate(options(['multicast', ''], ['blksize', '1024']), limits, 10);
    assert.deepEqual([...(result.oack ?? [])], [['blksize', '1024']]);
  });

  test('blksize is capped by the configured maximum, the MTU and 65464, never raised', () => {
    const cases: [string, OptionLimits, number][] = [
      ['1468', limits, 1468],
      ['8', limits, 8],
      ['65464', limits, 65464],
      ['65535', limits, 65464],
      ['99999999999999999999999', limits, 65464],
      ['8192', { ...limits, maxBlksize: 4096 }, 4096],
      ['8192', { ...limits, mtuBlksize: 1468 }, 1468],
      ['1024', { ...limits, mtuBlksize: 1468 }, 1024],
      ['8192', { ...limits, maxBlksize: 1024, mtuBlksize: 1468 }, 1024],
      // An MTU that cannot carry even 8 bytes is not believed.
      ['8192', { ...limits, mtuBlksize: 4 }, 8192],
    ];
    for (const [requested, caps, expected] of cases) {
      const result = negotiate(options(['blksize', requested]), caps, 10);
      assert.equal(result.blksize, expected, `blksize=${requested}`);
      assert.equal(result.oack?.get('blksize'), String(expected));
    }
  });

  test('values below the valid range are declined: omitted from the OACK, defaults used', () => {
    for (const [name, value] of [
      ['blksize', '7'],
      ['blksize', '0'],
      ['windowsize', '0'],
      ['timeout', '0'],
    ] as const) {
      const result = negotiate(options([name, value], ['tsize', '0']), limits, 5);
      assert.deepEqual([...(result.oack ?? [])], [['tsize', '5']], `${name}=${value}`);
      assert.equal(result.blksize, 512);
      assert.equal(result.windowsize, 1);
      assert.equal(result.timeout, undefined);
    }
  });

  test('windowsize is capped by the configured maximum', () => {
    assert.equal(negotiate(options(['windowsize', '16']), limits, 1).windowsize, 16);
    assert.equal(negotiate(options(['windowsize', '65535']), limits, 1).windowsize, 64);
    const capped = negotiate(options(['windowsize', '16']), { ...limits, maxWindowsize: 4 }, 1);
    assert.equal(capped.windowsize, 4);
    assert.equal(capped.oack?.get('windowsize'), '4');
  });

  test("windowsize is capped so that a window fits a client's default receive buffer, in either option order", () => {
    for (const order of [
      options(['blksize', '65464'], ['windowsize', '64']),
      options(['windowsize', '64'], ['blksize', '65464']),
    ]) {
      const result = negotiate(order, limits, 1);
      assert.equal(result.windowsize, 2);
      assert.equal(result.oack?.get('windowsize'), '2');
    }
    assert.equal(negotiate(options(['blksize', '8192'], ['windowsize', '64']), limits, 1).windowsize, 11);
    assert.equal(negotiate(options(['blksize', '1468'], ['windowsize', '64']), limits, 1).windowsize, 64);
    assert.equal(negotiate(options(['windowsize', '64']), limits, 1).windowsize, 64, 'RFC 1350 512-byte blocks');
    assert.equal(windowForReceiveBuffer(65464), 2);
  });

  test('timeout is echoed exactly when within 1-255, declined otherwise', () => {
    assert.equal(negotiate(options(['timeout', '1']), limits, 1).timeout, 1);
    assert.equal(negotiate(options(['timeout', '255']), limits, 1).oack?.get('timeout'), '255');
    const above = negotiate(options(['timeout', '256']), limits, 1);
    assert.equal(above.timeout, undefined);
    assert.equal(above.oack, undefined);
  });

  test('tsize is answered with the size whatever the client sent', () => {
    assert.equal(negotiate(options(['tsize', '0']), limits, 0).oack?.get('tsize'), '0');
    assert.equal(negotiate(options(['tsize', '12345']), limits, 31457280).oack?.get('tsize'), '31457280');
  });

  test('values that are not decimal numbers make the request malformed', () => {
    for (const value of ['abc', '', ' 512', '512 ', '-1', '1e3', '0x200', '1.5', '５１２']) {
      const bad = checkOptions(options(['blksize', value]));
      assert.equal(bad?.reason, 'option-value', JSON.stringify(value));
      // negotiate alone declines what it cannot read rather than throw.
      assert.equal(negotiate(options(['blksize', value]), limits, 1).oack, undefined);
    }
    assert.equal(checkOptions(options(['tsize', '0'], ['blksize', '00512'], ['multicast', 'a,b,c'])), undefined);
  });

  test('the blksize that fits an MTU', () => {
    assert.equal(blksizeForMtu(1500, 4), 1468);
    assert.equal(blksizeForMtu(1500, 6), 1448);
    assert.equal(blksizeForMtu(9000, 4), 8968);
    assert.equal(blksizeForMtu(65536, 4), 65504);
  });
});
