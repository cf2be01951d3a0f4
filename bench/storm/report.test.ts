/** The storm report's placement in BENCHMARKS.md and its verdicts (node --test bench/storm/*.test.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StormResult } from './client.ts';
import type { Measurement } from './measure.ts';
import { placeReport, verdicts } from './report.ts';
import type { ServerId } from './servers.ts';

function measurement(server: ServerId, result: Partial<StormResult>): Measurement {
  const zero = { udpRcvbuf: 0, packetSocket: 0 };
  return {
    server,
    run: 0,
    result: { failed: 0, allBootedS: 10, retries: 0, ...result } as StormResult,
    serverCpuS: 1,
    serverRssPeak: 0,
    drops: { server: zero, client: zero },
    metrics: [],
    complaints: [],
    busyAtStart: 0,
    othersDuring: [],
    wallS: 1,
  };
}

describe('bench storm report', () => {
  test('makes the section at the end of the file, then adds each run at the end of it', () => {
    const first = placeReport('# Benchmarks\n\n## DHCP\n\ndhcp text\n', '### Boot storm run of A\n\nfigures A\n');
    assert.match(first, /## DHCP\n\ndhcp text\n\n## Boot storm\n/);
    assert.ok(first.trimEnd().endsWith('figures A'));
    const later = `${first}\n## Someone else's section\n\ntheirs\n`;
    const second = placeReport(later, '### Boot storm run of B\n\nfigures B\n');
    assert.ok(second.indexOf('figures A') < second.indexOf('figures B'));
    assert.ok(second.indexOf('figures B') < second.indexOf("## Someone else's section"));
    assert.ok(second.trimEnd().endsWith('theirs'));
    assert.equal(second.match(/^## Boot storm$/gm)?.length, 1);
  });

  test('targets: zero failures, no later than the reference, fewer retries', () => {
    const pass = verdicts(
      [measurement('smeltd', { allBootedS: 50, retries: 0 }), measurement('reference', { allBootedS: 70, retries: 9 })],
      1000,
    );
    assert.equal(pass.allPass, true);
    assert.deepEqual(
      pass.lines.map((line) => line[3]),
      ['PASS', 'PASS', 'PASS'],
    );
    const miss = verdicts(
      [
        measurement('smeltd', { allBootedS: Number.NaN, failed: 3, retries: 12 }),
        measurement('reference', { allBootedS: 70, retries: 9 }),
      ],
      1000,
    );
    assert.equal(miss.allPass, false);
    assert.deepEqual(
      miss.lines.map((line) => line[3]),
      ['MISS', 'MISS', 'MISS'],
    );
  });
});
