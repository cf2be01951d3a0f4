import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionList } from './option-list.ts';

const value = (n: number): Buffer => Buffer.from([n]);

test('OptionList keeps insertion order; set replaces a value in place, delete and set again appends', () => {
  const options = new OptionList().set(53, value(1)).set(54, value(2)).set(1, value(3));
  assert.equal(options.size, 3);
  options.set(54, value(9));
  assert.deepEqual([...options.keys()], [53, 54, 1]);
  assert.deepEqual(options.get(54), value(9));
  assert.equal(options.delete(54), true);
  assert.equal(options.delete(54), false);
  assert.equal(options.has(54), false);
  assert.equal(options.get(54), undefined);
  options.set(54, value(4));
  assert.deepEqual(
    [...options],
    [
      [53, value(1)],
      [1, value(3)],
      [54, value(4)],
    ],
  );
});

test('OptionList behaves as a Map<number, Buffer> over random operations', () => {
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 200; round++) {
    const list = new OptionList();
    const map = new Map<number, Buffer>();
    for (let step = 0; step < 60; step++) {
      const code = 1 + random(12);
      const operation = random(3);
      if (operation === 0) assert.equal(list.delete(code), map.delete(code));
      else {
        const v = value(random(256));
        list.set(code, v);
        map.set(code, v);
      }
      assert.equal(list.size, map.size);
      assert.equal(list.has(code), map.has(code));
      assert.deepEqual(list.get(code), map.get(code));
    }
    assert.deepEqual([...list.keys()], [...map.keys()]);
    assert.deepEqual([...list], [...map]);
  }
});
