import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { summarise } from './profile.ts';
import { placeReport } from './report.ts';
import { percentile } from './transfers.ts';
import { parseWrk } from './wrk.ts';

describe('bench http: the pure parts', () => {
  test('parseWrk reads the line wrk-report.lua prints', () => {
    const stdout = [
      'Running 5s test @ http://127.0.0.1:8081/boot/x.ipxe',
      '  56892 requests in 8.06s, 38.63MB read',
      'WRK_JSON {"requests":56892,"duration_us":8060000,"bytes":40505088,"connect":0,"read":1,"write":0,' +
        '"status":3,"timeout":60,"p50":27550,"p90":62890,"p99":1010000,"max":1990000,"mean":58420.0}',
    ].join('\n');
    const result = parseWrk(stdout);
    assert.ok(result);
    assert.equal(result.requests, 56892);
    assert.ok(Math.abs(result.rps - 56892 / 8.06) < 1e-6);
    assert.equal(result.p50, 27.55);
    assert.equal(result.p99, 1010);
    assert.equal(result.errors, 1);
    assert.equal(result.non2xx, 3);
    assert.equal(result.timeouts, 60);
    assert.equal(parseWrk('no summary'), undefined);
  });

  test('percentile is nearest-rank and ignores NaN', () => {
    assert.equal(percentile([3, 1, 2, Number.NaN], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
    assert.equal(percentile([5], 1), 5);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  test('placeReport makes the section at the end, then adds runs inside it', () => {
    const start = '# Benchmarks\n\n## TFTP\n\ntftp text\n';
    const once = placeReport(start, '### HTTP run of A\n\nfirst');
    assert.match(once, /## TFTP\n\ntftp text\n\n## HTTP\n[\s\S]*### HTTP run of A\n\nfirst\n$/);
    const later = `${once}\n## Boot storm\n\nstorm text\n`;
    const twice = placeReport(later, '### HTTP run of B\n\nsecond\n');
    assert.match(twice, /first\n\n### HTTP run of B\n\nsecond\n\n## Boot storm\n\nstorm text\n$/);
    assert.equal(twice.match(/^## HTTP$/gm)?.length, 1);
    assert.ok(twice.startsWith(start.trimEnd()));
  });

  test('summarise charges each sample to its function, and inclusive time once per stack', () => {
    const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 4] },
        { id: 2, callFrame: frame('outer', 'node:internal/fs/promises'), children: [3] },
        { id: 3, callFrame: frame('read'), children: [] },
        { id: 4, callFrame: frame('(idle)'), children: [] },
      ],
      startTime: 0,
      endTime: 10_000,
      samples: [3, 3, 2, 4],
      timeDeltas: [1000, 1000, 2000, 6000],
    };
    const summary = summarise(profile);
    assert.equal(summary.totalMs, 10);
    assert.equal(summary.busyMs, 4);
    assert.ok(summary.selfByFunction.every((e) => e.name !== '(idle)'));
    assert.ok(summary.selfByFunction.some((e) => e.name === 'read' && e.ms === 2));
    assert.ok(summary.inclusiveByFunction.some((e) => e.name === 'outer node:internal/fs/promises:1' && e.ms === 4));
    assert.ok(summary.selfByModule.some((e) => e.name === '(native/builtin)' && e.ms === 2));
  });
});
