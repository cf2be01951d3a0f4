import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TreeFile } from '../tree/tree.ts';
import { netasciiLength, netasciiSource, toNetascii } from './netascii.ts';

function memoryFile(content: Buffer, maxRead = Infinity): TreeFile & { reads: number } {
  const file = {
    size: content.length,
    reads: 0,
    read(offset: number, length: number) {
      file.reads++;
      return Promise.resolve(Buffer.from(content.subarray(offset, offset + Math.min(length, maxRead))));
    },
    readInto(target: Uint8Array, offset: number) {
      file.reads++;
      const piece = content.subarray(offset, offset + Math.min(target.length, maxRead));
      target.set(piece);
      return Promise.resolve(piece.length);
    },
    close: () => Promise.resolve(),
  };
  return file;
}

describe('netascii', () => {
  test('LF becomes CR LF, CR becomes CR NUL, everything else is unchanged', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['plain', 'plain'],
      ['a\nb', 'a\r\nb'],
      ['a\rb', 'a\r\0b'],
      ['a\r\nb', 'a\r\0\r\nb'],
      ['\n\n', '\r\n\r\n'],
      ['\r', '\r\0'],
      ['nul\0byte', 'nul\0byte'],
    ];
    for (const [input, output] of cases) {
      const bytes = Buffer.from(input, 'latin1');
      assert.equal(toNetascii(bytes).toString('latin1'), output, JSON.stringify(input));
      assert.equal(netasciiLength(bytes), output.length, JSON.stringify(input));
    }
  });

  test('a source has the converted size and reads the converted bytes in order, across chunk boundaries', async () => {
    const text = Buffer.from('line one\nline two\r\n'.repeat(30_000) + 'tail\r', 'latin1');
    const expected = toNetascii(text);
    const file = memoryFile(text, 100_003);
    const source = await netasciiSource(file);
    assert.equal(source.size, expected.length);
    const parts: Buffer[] = [];
    for (let offset = 0; offset < source.size;) {
      const part = await source.read(offset, 1468 * 7);
      assert.ok(part.length > 0);
      parts.push(part);
      offset += part.length;
    }
    assert.deepEqual(Buffer.concat(parts), expected);
    assert.equal((await source.read(source.size, 512)).length, 0);
  });

  test('reads out of order are refused', async () => {
    const source = await netasciiSource(memoryFile(Buffer.from('a\nb\nc\n')));
    await assert.rejects(source.read(3, 3), /sequential/);
  });
});
