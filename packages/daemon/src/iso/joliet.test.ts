import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jolietLevel, jolietName } from './joliet.ts';

function ucs2be(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

describe('Joliet', () => {
  test('escape sequences', () => {
    assert.equal(jolietLevel(Buffer.from('%/@'.padEnd(32, '\0'))), 1);
    assert.equal(jolietLevel(Buffer.from('%/C'.padEnd(32, '\0'))), 2);
    assert.equal(jolietLevel(Buffer.from('%/E'.padEnd(32, '\0'))), 3);
    assert.equal(jolietLevel(Buffer.alloc(32)), undefined);
  });

  test('UCS-2 big-endian names, ;1 and trailing dots stripped, case kept', () => {
    assert.equal(jolietName(ucs2be('Mixed Case.TXT;1')), 'Mixed Case.TXT');
    assert.equal(jolietName(ucs2be('vmlinuz.;1')), 'vmlinuz');
    assert.equal(jolietName(ucs2be('über-ñ 日本')), 'über-ñ 日本');
    assert.equal(jolietName(Buffer.concat([ucs2be('ab'), Buffer.from([0x41])])), 'ab'); // odd byte dropped
  });
});
