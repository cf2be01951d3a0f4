import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { defaultOuiTablePath, loadOuiTable } from './oui.ts';

describe('OUI vendor table (shipped)', () => {
  const started = performance.now();
  const lookup = loadOuiTable();
  const loadMs = performance.now() - started;

  test('names the makers of well-known MA-L prefixes, short', () => {
    assert.equal(lookup('00:50:56:01:02:03'), 'VMware');
    assert.equal(lookup('00:0c:29:aa:bb:cc'), 'VMware');
    assert.equal(lookup('3c:ec:ef:12:34:56'), 'Super Micro Computer');
    assert.equal(lookup('b8:ca:3a:00:00:01'), 'Dell');
    assert.equal(lookup('00:1b:21:00:00:01'), 'Intel Corporate');
    assert.equal(lookup('00:25:b5:00:00:01'), 'Cisco Systems');
  });

  test('MA-M (28-bit), MA-S and IAB (36-bit) assignments inside IEEE-owned blocks', () => {
    assert.equal(lookup('20:85:93:b0:00:01'), 'IOG Products'); // MA-M 20-85-93-B
    assert.equal(lookup('20:85:93:30:00:01'), 'UNILUMIN GROUP'); // MA-M 20-85-93-3
    assert.equal(lookup('70:b3:d5:f2:f0:01'), 'TELEPLATFORMS'); // MA-S 70-B3-D5-F2-F
    assert.equal(lookup('00:50:c2:7d:50:01'), 'DEUTA-WERKE'); // IAB 00-50-C2-7D-5
    // The IEEE's own block, outside any sub-assignment: no vendor rather than "IEEE Registration Authority".
    assert.equal(lookup('70:b3:d5:00:00:01'), undefined);
  });

  test('accepts every MAC spelling, not only the canonical one', () => {
    assert.equal(lookup('00-50-56-01-02-03'), 'VMware');
    assert.equal(lookup('3CEC.EF12.3456'), 'Super Micro Computer');
    assert.equal(lookup('B8CA3A000001'), 'Dell');
  });

  test('locally administered and group addresses name no maker', () => {
    assert.equal(lookup('52:54:00:12:34:56'), undefined); // QEMU's default: locally administered
    assert.equal(lookup('02:00:00:00:00:01'), undefined);
    assert.equal(lookup('01:00:5e:00:00:01'), undefined); // IPv4 multicast
    assert.equal(lookup('ff:ff:ff:ff:ff:ff'), undefined);
  });

  test('unknown prefixes and malformed input give undefined', () => {
    assert.equal(lookup('ac:de:48:00:00:01'), undefined); // "Private" assignment
    assert.equal(lookup('fc:ff:ff:00:00:01'), undefined);
    for (const bad of ['', 'garbage', '00:50:56', '00:50:56:01:02', '00:50:56:01:02:03:04', 'zz:50:56:01:02:03']) {
      assert.equal(lookup(bad), undefined, bad);
    }
  });

  test('records its ieee-data version on its first line, and loads quickly', () => {
    const first = gunzipSync(readFileSync(defaultOuiTablePath)).toString('utf8').split('\n', 1)[0] ?? '';
    assert.match(first, /^# smelt OUI table: ieee-data \S+/);
    // Generous for a shared CI machine: ~30 ms here.
    assert.ok(loadMs < 500, `loading took ${loadMs.toFixed(0)} ms`);
  });
});

describe('OUI vendor table (format)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-oui-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const table = (lines: string[]) => {
    const path = join(dir, `t${Math.random().toString(36).slice(2)}.txt.gz`);
    writeFileSync(path, gzipSync(`${lines.join('\n')}\n`));
    return loadOuiTable(path);
  };

  test('the longest matching prefix wins', () => {
    const universal = table(['A8BBCC\tWhole block', 'A8BBCC1\tMedium block', 'A8BBCC123\tSmall block']);
    assert.equal(universal('a8:bb:cc:00:00:00'), 'Whole block');
    assert.equal(universal('a8:bb:cc:1f:ff:ff'), 'Medium block');
    assert.equal(universal('a8:bb:cc:12:3f:ff'), 'Small block');
    assert.equal(universal('a8:bb:cc:12:40:00'), 'Medium block');
    // The same prefixes with the locally administered bit set (aa = a8 | 0x02) are not looked up at all.
    const local = table(['AABBCC\tWhole block']);
    assert.equal(local('aa:bb:cc:00:00:00'), undefined);
  });

  test('ignores comments, blank and broken lines', () => {
    const lookup = table(['# a comment', '', 'no tab here', 'XYZXYZ\tNot hex', '00AA00\tOne', '00AA0\tFive digits']);
    assert.equal(lookup('00:aa:00:00:00:00'), 'One');
    assert.equal(lookup('00:aa:01:00:00:00'), undefined);
  });
});
